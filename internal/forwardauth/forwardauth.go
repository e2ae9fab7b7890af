// Package forwardauth is kerbgate's forward-auth face: the endpoint a reverse proxy
// asks whether a request to an application behind it may go on — nginx's
// auth_request subrequest, Caddy's forward_auth, Traefik's forwardAuth — answered
// with 200 and the user's identity headers, or the Windows sign-in (a 401 Negotiate
// challenge, or a redirect to kerbgate's own sign-in page).
//
// It owns the per-host policy (allowed groups, how a browser without a session signs
// in, which identity headers and whether a signed assertion), the forward-auth
// session (one cookie, optionally for a parent domain, so that Negotiate runs once
// for every application under it; each node's short cache of opened sessions; the
// sign-out), the return-URL check of its sign-in and sign-out pages, and the
// reading of X-Forwarded-Host, -Proto, -Uri and -Method, believed only from
// listen.trusted_proxies (package frontend decides whom to believe). Its options are
// typed (package setup makes them from the configuration file).
//
// It must not verify Kerberos, speak LDAP or read configuration: it composes the
// sign-in core (signin's PreAuthenticator, Sessions, Groups and Admit), package
// idheaders for the headers, and package returnurl for return URLs.
package forwardauth

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/idheaders"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/returnurl"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// The endpoints. AuthPath is for proxies that pass kerbgate's answer to the browser
// (Caddy forward_auth, Traefik forwardAuth); AuthRequestPath is for nginx
// auth_request, which only understands 2xx, 401 and 403 (a redirect is a 401 with
// Location, which nginx's error_page turns into the redirect).
const (
	AuthPath        = "/forward-auth"
	AuthRequestPath = "/forward-auth/auth-request"
	SignInPath      = "/forward-auth/sign-in"
	SignOutPath     = "/forward-auth/sign-out"
)

// SignIn is how a browser without a session signs in.
type SignIn int

const (
	// SignInNegotiate answers 401 Negotiate: the browser signs in at the
	// application's own host, so kerbgate needs that host's SPN in its keytab.
	SignInNegotiate SignIn = iota
	// SignInRedirect sends the browser to kerbgate's sign-in page (SignInURL),
	// which signs it in under kerbgate's own SPN, sets the parent-domain cookie and
	// sends it back.
	SignInRedirect
)

func (s SignIn) String() string {
	if s == SignInRedirect {
		return "redirect"
	}
	return "negotiate"
}

// Host is the policy of one application host.
type Host struct {
	// Name is the host name, "app.example.com", or "*.example.com" for every host
	// under example.com that has no policy of its own.
	Name   string
	Groups *signin.Groups // nil: anyone signed in
	SignIn SignIn
	// Headers is what the application receives; Prepare must have been called.
	Headers *idheaders.Policy
}

// Options configure the face.
type Options struct {
	Hosts []Host
	// CookieName is the session cookie's base name (__Secure- prefixed on https).
	CookieName string
	// CookieDomain is the cookie's Domain ("example.com"): the one session holds
	// for every host under it. "": a cookie for each host.
	CookieDomain string
	CookieKeys   *keyset.Set
	SessionTTL   time.Duration
	// ReturnURLs are where the sign-in and sign-out pages may send a browser back
	// to, and the sites a sign-out may come from.
	ReturnURLs returnurl.Allowlist
	// SignInURL is the sign-in page as browsers reach it
	// ("https://sso.example.com/forward-auth/sign-in"); needed by SignInRedirect.
	SignInURL string
	// SignIn signs a browser in (signin.Negotiate) at the auth endpoint, where
	// the proxy keeps a request's body to itself and drops the 401's page, so a
	// sign-in form could not work there.
	SignIn signin.PreAuthenticator
	// SignInPage signs a browser in at the sign-in page, kerbgate's own: SignIn
	// with the password fallback's form (its POST comes back to the page). Nil:
	// SignIn, and the page takes GET only.
	SignInPage signin.PreAuthenticator
	// Directory names the user's groups at sign-in, and with RequireDirectory
	// confirms the account; nil without a directory section.
	Directory        signin.Directory
	RequireDirectory bool
	// SessionCacheTTL keeps opened sessions in this node's memory for that long
	// (0: every request reads the store). A session signed out on this node
	// leaves the cache at once; one revoked on another node, or in the store by
	// other means, stays usable on this node for up to this long.
	SessionCacheTTL time.Duration
	Store           store.Sessions
	Reporter        *refusal.Reporter
	Log             *slog.Logger
	Registerer      prometheus.Registerer
	Now             func() time.Time
	Rand            io.Reader
}

// result is what an answer did, the result label of the requests counter.
type result int

const (
	resultOK        result = iota // 2xx with identity headers, from the cookie
	resultSignedIn                // 2xx, or a 307 to the same page, after a Negotiate sign-in
	resultChallenge               // 401 Negotiate
	resultRedirect                // to the sign-in page, or back from it
	resultRefused
	resultSignedOut
	nResults
)

var resultNames = [nResults]string{"ok", "signed_in", "challenge", "redirect", "refused", "signed_out"}

// counters are one label's requests counters, by result, made once: the hot path
// neither hashes labels nor looks them up.
type counters [nResults]prometheus.Counter

func (c *counters) add(r result) { c[r].Inc() }

// host is a Host as the service uses it: its metrics label and counters.
type host struct {
	Host
	label    string // the configured name, "*.example.com" for a wildcard
	suffix   string // a wildcard's ".example.com"
	counters counters
}

// Service serves the forward-auth endpoints.
type Service struct {
	opts     Options
	exact    map[string]*host
	wildcard []*host // longest suffix first
	sessions *signin.Sessions
	cache    *sessionCache // nil: no cache
	scope    signin.Scope
	requests *prometheus.CounterVec
	// The counters of the answers that are not about a configured host.
	untrusted, unknown, signInPage, signOutPage counters
}

// noStore is every forward-auth answer's Cache-Control, one value shared by all.
var noStore = []string{"no-store"}

// cookiePurpose binds the forward-auth cookie's MAC to its use.
const cookiePurpose = "kerbgate-forward-auth-session"

// appID is the stored sessions' application: one session for every host.
const appID = "forward-auth"

// New checks the options and returns the service.
func New(o Options) (*Service, error) {
	if o.SignIn == nil || o.Store == nil || o.Reporter == nil || o.Log == nil {
		return nil, errors.New("forwardauth: SignIn, Store, Reporter and Log are required")
	}
	if o.CookieName == "" {
		o.CookieName = "kerbgate_auth"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{opts: o, exact: map[string]*host{}, scope: signin.Scope{Path: "/", AppID: appID, Domain: o.CookieDomain}}
	if o.SessionCacheTTL > 0 {
		s.cache = newSessionCache(o.SessionCacheTTL)
	}
	s.sessions = signin.NewSessions(signin.Sessions{
		Store: o.Store, Keys: o.CookieKeys, Purpose: cookiePurpose, CookieName: o.CookieName,
		TTL: o.SessionTTL, Now: o.Now, Rand: o.Rand,
	})
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_forward_auth_requests_total",
		Help: "Forward-auth answers, by host (as configured) and result: ok (2xx with identity headers), signed_in (2xx after a Negotiate sign-in), challenge (401 Negotiate), redirect (to the sign-in page), refused, signed_out (the sign-out page).",
	}, []string{"host", "result"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.requests); err != nil {
			return nil, err
		}
	}
	for i := range o.Hosts {
		h := &host{Host: o.Hosts[i], label: strings.ToLower(o.Hosts[i].Name)}
		if h.Headers == nil {
			return nil, fmt.Errorf("forwardauth: host %s: no header policy", h.Name)
		}
		if h.SignIn == SignInRedirect && o.SignInURL == "" {
			return nil, fmt.Errorf("forwardauth: host %s signs in by redirect but there is no sign-in URL", h.Name)
		}
		s.labelled(&h.counters, h.label)
		if suffix, ok := strings.CutPrefix(h.label, "*"); ok {
			h.suffix = suffix
			s.wildcard = append(s.wildcard, h)
			continue
		}
		if s.exact[h.label] != nil {
			return nil, fmt.Errorf("forwardauth: host %s twice", h.Name)
		}
		s.exact[h.label] = h
	}
	sort.SliceStable(s.wildcard, func(i, j int) bool { return len(s.wildcard[i].suffix) > len(s.wildcard[j].suffix) })
	s.labelled(&s.untrusted, "(untrusted)")
	s.labelled(&s.unknown, "(unknown)")
	s.labelled(&s.signInPage, "(sign-in)")
	s.labelled(&s.signOutPage, "(sign-out)")
	return s, nil
}

// labelled makes c the counters of label.
func (s *Service) labelled(c *counters, label string) {
	for r := range c {
		c[r] = s.requests.WithLabelValues(label, resultNames[r])
	}
}

// Register adds the endpoints to mux. The auth endpoints take every method: nginx's
// subrequest has the method of the request it checks.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc(AuthPath, func(w http.ResponseWriter, r *http.Request) { s.auth(w, r, false) })
	mux.HandleFunc(AuthRequestPath, func(w http.ResponseWriter, r *http.Request) { s.auth(w, r, true) })
	mux.HandleFunc("GET "+SignInPath, s.signIn)
	if s.opts.SignInPage != nil {
		mux.HandleFunc("POST "+SignInPath, s.signIn) // the password form posts back
	}
	mux.HandleFunc("GET "+SignOutPath, s.signOut)
	mux.HandleFunc("POST "+SignOutPath, s.signOut)
}

// host returns the policy of host (lower case, no port), exact name first.
func (s *Service) host(name string) *host {
	if h := s.exact[name]; h != nil {
		return h
	}
	for _, h := range s.wildcard {
		if strings.HasSuffix(name, h.suffix) {
			return h
		}
	}
	return nil
}

// forwarded is what the proxy says about the request it asks about.
type forwarded struct {
	proto, host, hostname, uri, method string
	// view is the application's client as kerbgate answers for it: the request's
	// view with the forwarded scheme and host.
	view frontend.View
}

// readForwarded reads the X-Forwarded-* headers, from a trusted proxy only (the
// front end's middleware decided whom to believe).
func (s *Service) readForwarded(r *http.Request) (forwarded, error) {
	v := frontend.From(r)
	if !v.ViaTrustedProxy {
		return forwarded{}, reason.New(reason.ForwardAuthUntrusted, "forward-auth request from a peer not in listen.trusted_proxies",
			"peer", v.Peer.String())
	}
	f := forwarded{
		proto:  strings.ToLower(strings.TrimSpace(firstValue(header(r, "X-Forwarded-Proto")))),
		host:   strings.TrimSpace(firstValue(header(r, "X-Forwarded-Host"))),
		uri:    header(r, "X-Forwarded-Uri"),
		method: header(r, "X-Forwarded-Method"),
	}
	if f.proto != "http" && f.proto != "https" {
		return forwarded{}, reason.New(reason.ForwardAuthUntrusted, "forward-auth request without X-Forwarded-Proto http or https",
			"peer", v.Peer.String(), "x_forwarded_proto", truncate(f.proto, 16))
	}
	hostname := f.host
	if strings.LastIndexByte(f.host, ':') > strings.LastIndexByte(f.host, ']') { // a port (SplitHostPort's error for none allocates)
		if h, _, err := net.SplitHostPort(f.host); err == nil {
			hostname = h
		}
	}
	hostname = strings.ToLower(hostname)
	if f.host == "" || len(f.host) > 255 || strings.ContainsAny(f.host, "/\\@ %") {
		return forwarded{}, reason.New(reason.ForwardAuthUntrusted, "forward-auth request without a usable X-Forwarded-Host",
			"peer", v.Peer.String(), "x_forwarded_host", truncate(f.host, 64))
	}
	f.hostname = hostname
	if f.uri == "" || f.uri[0] != '/' {
		f.uri = "/"
	}
	f.view = v
	f.view.Scheme, f.view.Host = f.proto, f.host
	return f, nil
}

// auth answers a proxy's question: may this request go on? nginx marks the
// auth_request endpoint, whose redirects are 401 with Location.
//
// A request with a valid session cookie is every request to every protected
// application: it opens the cookie, finds the session (in the node's cache, else
// the store) and writes the headers rendered for the host, and allocates little.
func (s *Service) auth(w http.ResponseWriter, r *http.Request, nginx bool) {
	w.Header()["Cache-Control"] = noStore
	f, err := s.readForwarded(r)
	if err != nil {
		s.refuse(w, r, &s.untrusted, err)
		return
	}
	h := s.host(f.hostname)
	if h == nil {
		s.refuse(w, r, &s.unknown, reason.New(reason.ForwardAuthUnknownHost, "no forward_auth.hosts[] entry for the host", "host", f.hostname))
		return
	}
	sess, _, err := s.session(r, f.view)
	if err != nil {
		s.refuse(w, frontend.WithView(r, f.view), &h.counters, err)
		return
	}
	if sess != nil {
		s.allow(w, r, h, f, sess, resultOK)
		return
	}
	// From here on the request is the application's: the session cookie is named
	// and flagged for its scheme, and refusals are logged with its host.
	r = frontend.WithView(r, f.view)
	if h.SignIn == SignInRedirect {
		// Kerberos runs at the sign-in page only: a ticket a client sends the
		// application's host unasked is for an SPN kerbgate need not hold.
		s.redirect(w, r, h, f, nginx)
		return
	}
	// No session: the Negotiate middleware answers 401 Negotiate without a token,
	// and signs the browser in with one. (The closure has its own copy of f: a
	// captured f would be moved to the heap for every request, cookie or not.)
	fw := f
	s.opts.SignIn.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		f := fw
		id, err := s.start(w, r, f, res, err)
		if err != nil {
			s.refuse(w, r, &h.counters, err)
			return
		}
		if !nginx {
			s.again(w, r, h, f, id)
			return
		}
		s.allow(w, r, h, f, &session{id: id}, resultSignedIn)
	})
	if c := w.Header().Get("WWW-Authenticate"); c == "Negotiate" {
		h.counters.add(resultChallenge)
	}
}

// session returns the request's session for the client v and its id, or nil
// without a valid one: from the node's cache, else from the store (and then kept
// in the cache).
func (s *Service) session(r *http.Request, v frontend.View) (*session, string, error) {
	sid := s.sessions.IDFor(r, v, s.scope)
	if sid == "" {
		return nil, "", nil
	}
	now := s.opts.Now()
	if sess := s.cache.get(sid, now); sess != nil {
		if now.Before(sess.expires) {
			return sess, sid, nil
		}
		s.cache.evict(sid)
		return nil, sid, nil
	}
	stored, err := s.sessions.Get(r.Context(), sid, s.scope)
	if stored == nil {
		return nil, sid, err
	}
	sess := &session{id: &stored.Identity, expires: stored.ExpiresAt}
	s.cache.put(sid, sess, now)
	return sess, sid, nil
}

// start completes a sign-in: the account confirmed in the directory (with
// RequireDirectory) and its groups named, then the session started. No host's
// groups are checked here: the session serves every host, each checks its own.
// f is what the proxy said of the request (zero at the sign-in page), for the log.
func (s *Service) start(w http.ResponseWriter, r *http.Request, f forwarded, res signin.Result, err error) (*identity.Identity, error) {
	if err == nil && res.Identity == nil {
		err = reason.New(reason.Internal, "sign-in did not produce an identity")
	}
	if err != nil {
		return nil, err
	}
	id := res.Identity
	if err := signin.Admit(r.Context(), signin.Admission{Directory: s.opts.Directory, RequireDirectory: s.opts.RequireDirectory, Log: s.opts.Log}, id); err != nil {
		return nil, err
	}
	if err := s.sessions.Start(w, r, s.scope, id); err != nil {
		return nil, err
	}
	s.opts.Log.Info("forward-auth sign-in", "user", id.Principal, "host", frontend.From(r).Host, "method", truncate(f.method, 16),
		"path", logged(f.uri), "cookie_domain", s.opts.CookieDomain)
	return id, nil
}

// allow answers 200 with the identity headers, when the session's user is in the
// host's groups. Both are worked out once per session and host (session.admit).
func (s *Service) allow(w http.ResponseWriter, r *http.Request, h *host, f forwarded, sess *session, res result) {
	rd, err := sess.admit(r.Context(), h)
	if err == nil {
		err = rd.Set(w.Header(), f.hostname)
	}
	if err != nil {
		s.refuse(w, frontend.WithView(r, f.view), &h.counters, err)
		return
	}
	h.counters.add(res)
	w.WriteHeader(http.StatusOK)
}

// again answers a Negotiate sign-in through Caddy or Traefik: they pass a 2xx
// answer's headers to the application only, never its Set-Cookie to the browser,
// but pass any other answer to the browser as it is. So the browser is sent to the
// same page again (307: the same method and body) with the session cookie, and
// that request is allowed by the cookie.
func (s *Service) again(w http.ResponseWriter, r *http.Request, h *host, f forwarded, id *identity.Identity) {
	if err := h.Groups.Check(r.Context(), id); err != nil {
		s.refuse(w, r, &h.counters, err)
		return
	}
	u, err := returnurl.Parse(f.proto + "://" + f.host + f.uri)
	if err != nil {
		s.refuse(w, r, &h.counters, reason.New(reason.ReturnURLNotAllowed, "the protected page's URL is not in plain form: "+err.Error(),
			"return_url", logged(f.proto+"://"+f.host+f.uri)))
		return
	}
	w.Header().Set("Location", u.String())
	h.counters.add(resultSignedIn)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// redirect sends the browser to the sign-in page with the page it asked for as the
// return URL (for nginx: 401 with Location, which its error_page follows).
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, h *host, f forwarded, nginx bool) {
	back := f.proto + "://" + f.host + f.uri
	if _, err := s.opts.ReturnURLs.Check(back); err != nil {
		s.refuse(w, r, &h.counters, reason.New(reason.ReturnURLNotAllowed, "the protected page is not a return URL the sign-in may use: "+err.Error(),
			"return_url", logged(back)))
		return
	}
	loc := s.opts.SignInURL + "?rd=" + url.QueryEscape(back)
	w.Header().Set("Location", loc)
	h.counters.add(resultRedirect)
	if nginx {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusFound)
}

// signIn is GET /forward-auth/sign-in?rd=URL on kerbgate's own host: sign the
// browser in (Negotiate under kerbgate's SPN, or the password form), set the session cookie for the
// parent domain, and send it back to rd, which is checked before anything else so
// that a hostile link never gets a signed-in redirect.
func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = noStore
	rd := r.URL.Query().Get("rd")
	back, err := s.opts.ReturnURLs.Check(rd)
	if err != nil {
		s.refuse(w, r, &s.signInPage, reason.New(reason.ReturnURLNotAllowed, "rd is not a return URL the sign-in may use: "+err.Error(),
			"rd", logged(rd)))
		return
	}
	sess, _, err := s.session(r, frontend.From(r))
	if err != nil {
		s.refuse(w, r, &s.signInPage, err)
		return
	}
	if sess != nil {
		s.back(w, r, back)
		return
	}
	page := s.opts.SignInPage
	if page == nil {
		page = s.opts.SignIn
	}
	page.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		if _, err := s.start(w, r, forwarded{}, res, err); err != nil {
			s.refuse(w, r, &s.signInPage, err)
			return
		}
		s.back(w, r, back)
	})
}

func (s *Service) back(w http.ResponseWriter, r *http.Request, u *url.URL) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.signInPage.add(resultRedirect)
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, c *counters, err error) {
	c.add(resultRefused)
	s.opts.Reporter.Refuse(w, r, reason.Of(err))
}

// header is r.Header.Get(name) for a name already canonical: it is looked up as it
// is, not canonicalized again on every request.
func header(r *http.Request, name string) string {
	if v := r.Header[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func firstValue(list string) string {
	v, _, _ := strings.Cut(list, ",")
	return v
}

// logged is a URL as logs show it: without its query (an application's page may
// carry a token there, a handoff's ssoToken say), truncated.
func logged(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return truncate(u, 256)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
