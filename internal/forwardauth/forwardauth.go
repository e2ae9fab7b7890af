// Package forwardauth is kerbgate's forward-auth face: the endpoint a reverse proxy
// asks whether a request to an application behind it may go on — nginx's
// auth_request subrequest, Caddy's forward_auth, Traefik's forwardAuth — answered
// with 200 and the user's identity headers, or the Windows sign-in (a 401 Negotiate
// challenge, or a redirect to kerbgate's own sign-in page).
//
// It owns the per-host policy (allowed groups, how a browser without a session signs
// in, which identity headers and whether a signed assertion), the forward-auth
// session (one cookie, optionally for a parent domain, so that Negotiate runs once
// for every application under it), the return-URL check of its sign-in page, and the
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
	// ReturnURLs are where the sign-in page may send a browser back to.
	ReturnURLs returnurl.Allowlist
	// SignInURL is the sign-in page as browsers reach it
	// ("https://sso.example.com/forward-auth/sign-in"); needed by SignInRedirect.
	SignInURL string
	// SignIn signs a browser in (signin.Negotiate).
	SignIn signin.PreAuthenticator
	// Directory names the user's groups at sign-in, and with RequireDirectory
	// confirms the account; nil without a directory section.
	Directory        signin.Directory
	RequireDirectory bool
	// Frontend says whose X-Forwarded-* headers are believed.
	Frontend *frontend.Frontend
	// SessionCacheTTL keeps opened sessions in this node's memory for that long
	// (0: every request reads the store). A session revoked in the store stays
	// usable on a node for up to this long.
	SessionCacheTTL time.Duration
	Store           store.Sessions
	Reporter        *refusal.Reporter
	Log             *slog.Logger
	Registerer      prometheus.Registerer
	Now             func() time.Time
	Rand            io.Reader
}

// Service serves the forward-auth endpoints.
type Service struct {
	opts     Options
	exact    map[string]*Host
	wildcard []*Host // "*.example.com", longest suffix first
	sessions *signin.Sessions
	scope    signin.Scope
	requests *prometheus.CounterVec
	// counters holds requests' counters by host label and result, made once: the
	// hot path does not hash labels.
	counters map[[2]string]prometheus.Counter
}

// results are the values of the result label.
var results = []string{"ok", "signed_in", "challenge", "redirect", "refused"}

// count adds one to the requests of label with result.
func (s *Service) count(label, result string) {
	if c, ok := s.counters[[2]string{label, result}]; ok {
		c.Inc()
		return
	}
	s.count(label, result)
}

// cookiePurpose binds the forward-auth cookie's MAC to its use.
const cookiePurpose = "kerbgate-forward-auth-session"

// appID is the stored sessions' application: one session for every host.
const appID = "forward-auth"

// New checks the options and returns the service.
func New(o Options) (*Service, error) {
	if o.SignIn == nil || o.Store == nil || o.Reporter == nil || o.Log == nil || o.Frontend == nil {
		return nil, errors.New("forwardauth: SignIn, Store, Reporter, Log and Frontend are required")
	}
	if o.CookieName == "" {
		o.CookieName = "kerbgate_auth"
	}
	s := &Service{opts: o, exact: map[string]*Host{}, scope: signin.Scope{Path: "/", AppID: appID, Domain: o.CookieDomain}}
	st := o.Store
	if o.SessionCacheTTL > 0 {
		st = newSessionCache(o.Store, o.SessionCacheTTL, o.Now)
	}
	s.sessions = signin.NewSessions(signin.Sessions{
		Store: st, Keys: o.CookieKeys, Purpose: cookiePurpose, CookieName: o.CookieName,
		TTL: o.SessionTTL, Now: o.Now, Rand: o.Rand,
	})
	for i := range o.Hosts {
		h := &o.Hosts[i]
		if h.Headers == nil {
			return nil, fmt.Errorf("forwardauth: host %s: no header policy", h.Name)
		}
		if h.SignIn == SignInRedirect && o.SignInURL == "" {
			return nil, fmt.Errorf("forwardauth: host %s signs in by redirect but there is no sign-in URL", h.Name)
		}
		name := strings.ToLower(h.Name)
		if suffix, ok := strings.CutPrefix(name, "*"); ok {
			s.wildcard = append(s.wildcard, &Host{Name: suffix, Groups: h.Groups, SignIn: h.SignIn, Headers: h.Headers})
			continue
		}
		if s.exact[name] != nil {
			return nil, fmt.Errorf("forwardauth: host %s twice", h.Name)
		}
		s.exact[name] = h
	}
	sort.SliceStable(s.wildcard, func(i, j int) bool { return len(s.wildcard[i].Name) > len(s.wildcard[j].Name) })
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_forward_auth_requests_total",
		Help: "Forward-auth answers, by host (as configured) and result: ok (2xx with identity headers), signed_in (2xx after a Negotiate sign-in), challenge (401 Negotiate), redirect (to the sign-in page), refused.",
	}, []string{"host", "result"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.requests); err != nil {
			return nil, err
		}
	}
	s.counters = map[[2]string]prometheus.Counter{}
	labels := []string{"(untrusted)", "(unknown)", "(sign-in)"}
	for name := range s.exact {
		labels = append(labels, name)
	}
	for _, h := range s.wildcard {
		labels = append(labels, "*"+h.Name)
	}
	for _, l := range labels {
		for _, r := range results {
			s.counters[[2]string{l, r}] = s.requests.WithLabelValues(l, r)
		}
	}
	return s, nil
}

// Register adds the endpoints to mux. The auth endpoints take every method: nginx's
// subrequest has the method of the request it checks.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc(AuthPath, func(w http.ResponseWriter, r *http.Request) { s.auth(w, r, false) })
	mux.HandleFunc(AuthRequestPath, func(w http.ResponseWriter, r *http.Request) { s.auth(w, r, true) })
	mux.HandleFunc("GET "+SignInPath, s.signIn)
}

// host returns the policy of host (lower case, no port), exact name first.
func (s *Service) host(name string) (*Host, string) {
	if h := s.exact[name]; h != nil {
		return h, name
	}
	for _, h := range s.wildcard {
		if strings.HasSuffix(name, h.Name) {
			return h, "*" + h.Name
		}
	}
	return nil, ""
}

// forwarded is what the proxy says about the request it asks about.
type forwarded struct {
	proto, host, hostname, uri, method string
}

// readForwarded reads the X-Forwarded-* headers, from a trusted proxy only.
func (s *Service) readForwarded(r *http.Request) (forwarded, error) {
	v := frontend.From(r)
	if !v.ViaTrustedProxy {
		return forwarded{}, reason.New(reason.ForwardAuthUntrusted, "forward-auth request from a peer not in listen.trusted_proxies",
			"peer", v.Peer.String())
	}
	f := forwarded{
		proto:  strings.ToLower(strings.TrimSpace(firstValue(s.opts.Frontend.Forwarded(r, "X-Forwarded-Proto")))),
		host:   strings.TrimSpace(firstValue(s.opts.Frontend.Forwarded(r, "X-Forwarded-Host"))),
		uri:    s.opts.Frontend.Forwarded(r, "X-Forwarded-Uri"),
		method: s.opts.Frontend.Forwarded(r, "X-Forwarded-Method"),
	}
	if f.proto != "http" && f.proto != "https" {
		return forwarded{}, reason.New(reason.ForwardAuthUntrusted, "forward-auth request without X-Forwarded-Proto http or https",
			"peer", v.Peer.String(), "x_forwarded_proto", truncate(f.proto, 16))
	}
	hostname := f.host
	if h, _, err := net.SplitHostPort(f.host); err == nil {
		hostname = h
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
	return f, nil
}

// auth answers a proxy's question: may this request go on? nginx marks the
// auth_request endpoint, whose redirects are 401 with Location.
func (s *Service) auth(w http.ResponseWriter, r *http.Request, nginx bool) {
	w.Header().Set("Cache-Control", "no-store")
	f, err := s.readForwarded(r)
	if err != nil {
		s.refuse(w, r, "(untrusted)", err)
		return
	}
	h, label := s.host(f.hostname)
	if h == nil {
		s.refuse(w, r, "(unknown)", reason.New(reason.ForwardAuthUnknownHost, "no forward_auth.hosts[] entry for the host", "host", f.hostname))
		return
	}
	// From here on the request is the application's: the session cookie is named
	// and flagged for its scheme, and refusals are logged with its host.
	v := frontend.From(r)
	v.Scheme, v.Host = f.proto, f.host
	r = frontend.WithView(r, v)

	id, err := s.sessions.Load(r, s.scope)
	if err != nil {
		s.refuse(w, r, label, err)
		return
	}
	if id != nil {
		s.allow(w, r, h, label, f, id, "ok")
		return
	}
	if h.SignIn == SignInRedirect {
		// Kerberos runs at the sign-in page only: a ticket a client sends the
		// application's host unasked is for an SPN kerbgate need not hold.
		s.redirect(w, r, label, f, nginx)
		return
	}
	// No session: the Negotiate middleware answers 401 Negotiate without a token,
	// and signs the browser in with one.
	s.opts.SignIn.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		id, err := s.start(w, r, f, res, err)
		if err != nil {
			s.refuse(w, r, label, err)
			return
		}
		if !nginx {
			s.again(w, r, h, label, f, id)
			return
		}
		s.allow(w, r, h, label, f, id, "signed_in")
	})
	if c := w.Header().Get("WWW-Authenticate"); c == "Negotiate" {
		s.count(label, "challenge")
	}
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

// allow checks the host's groups and answers 200 with the identity headers.
func (s *Service) allow(w http.ResponseWriter, r *http.Request, h *Host, label string, f forwarded, id *identity.Identity, result string) {
	if err := h.Groups.Check(r.Context(), id); err != nil {
		s.refuse(w, r, label, err)
		return
	}
	if err := h.Headers.Set(w.Header(), id, f.hostname); err != nil {
		s.refuse(w, r, label, err)
		return
	}
	s.count(label, result)
	w.WriteHeader(http.StatusOK)
}

// again answers a Negotiate sign-in through Caddy or Traefik: they pass a 2xx
// answer's headers to the application only, never its Set-Cookie to the browser,
// but pass any other answer to the browser as it is. So the browser is sent to the
// same page again (307: the same method and body) with the session cookie, and
// that request is allowed by the cookie.
func (s *Service) again(w http.ResponseWriter, r *http.Request, h *Host, label string, f forwarded, id *identity.Identity) {
	if err := h.Groups.Check(r.Context(), id); err != nil {
		s.refuse(w, r, label, err)
		return
	}
	u, err := returnurl.Parse(f.proto + "://" + f.host + f.uri)
	if err != nil {
		s.refuse(w, r, label, reason.New(reason.ReturnURLNotAllowed, "the protected page's URL is not in plain form: "+err.Error(),
			"return_url", logged(f.proto+"://"+f.host+f.uri)))
		return
	}
	w.Header().Set("Location", u.String())
	s.count(label, "signed_in")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// redirect sends the browser to the sign-in page with the page it asked for as the
// return URL (for nginx: 401 with Location, which its error_page follows).
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, label string, f forwarded, nginx bool) {
	back := f.proto + "://" + f.host + f.uri
	if _, err := s.opts.ReturnURLs.Check(back); err != nil {
		s.refuse(w, r, label, reason.New(reason.ReturnURLNotAllowed, "the protected page is not a return URL the sign-in may use: "+err.Error(),
			"return_url", logged(back)))
		return
	}
	loc := s.opts.SignInURL + "?rd=" + url.QueryEscape(back)
	w.Header().Set("Location", loc)
	s.count(label, "redirect")
	if nginx {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusFound)
}

// signIn is GET /forward-auth/sign-in?rd=URL on kerbgate's own host: sign the
// browser in (Negotiate under kerbgate's SPN), set the session cookie for the
// parent domain, and send it back to rd, which is checked before anything else so
// that a hostile link never gets a signed-in redirect.
func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rd := r.URL.Query().Get("rd")
	back, err := s.opts.ReturnURLs.Check(rd)
	if err != nil {
		s.refuse(w, r, "(sign-in)", reason.New(reason.ReturnURLNotAllowed, "rd is not a return URL the sign-in may use: "+err.Error(),
			"rd", logged(rd)))
		return
	}
	id, err := s.sessions.Load(r, s.scope)
	if err != nil {
		s.refuse(w, r, "(sign-in)", err)
		return
	}
	if id != nil {
		s.back(w, r, back)
		return
	}
	s.opts.SignIn.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		if _, err := s.start(w, r, forwarded{}, res, err); err != nil {
			s.refuse(w, r, "(sign-in)", err)
			return
		}
		s.back(w, r, back)
	})
}

func (s *Service) back(w http.ResponseWriter, r *http.Request, u *url.URL) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.count("(sign-in)", "redirect")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, label string, err error) {
	s.count(label, "refused")
	s.opts.Reporter.Refuse(w, r, reason.Of(err))
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
