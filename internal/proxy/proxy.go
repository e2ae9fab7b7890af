// Package proxy publishes internal web applications through kerbgate: it routes by
// external host and path prefix, pre-authenticates the user (Integrated Windows
// Authentication, OpenID Connect, or none), and signs the user in to the upstream
// with a Kerberos ticket obtained on the user's behalf (constrained delegation),
// like Microsoft Entra Application Proxy's connector.
//
// It owns the flow: routing, the name kerbgate asks the KDC for (the login identity),
// when the upstream gets the token (always, or after its 401), the audit event per
// delegation, and the 502 pages for failures, all from typed Options (package setup
// makes them from the configuration file). It must not read configuration, talk to
// the KDC or the directory itself (Delegator and Directory do), nor verify Kerberos
// tokens: pre-authentication, the proxy session and its cookie, and the group policy
// are the sign-in core's (package signin).
//
// Routing is on the request's canonical path (package httppath), never on the raw
// one: a path with no canonical form, or one that would select another app on an
// upstream that ignores case, trailing dots or ;parameters (IIS), is refused with
// path_not_canonical before any app sees it, and the upstream receives exactly the
// canonical path that was routed, mapped under its base path.
package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/httppath"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/idheaders"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Principal is the name kerbgate asks the KDC to delegate for.
type Principal struct {
	// Name is "alice@example.test" when Enterprise (the KDC resolves it as a UPN,
	// NT-ENTERPRISE), otherwise an account name like "alice" in Realm.
	Name       string
	Enterprise bool
	// Realm is the user's realm when it is not the service's own (a user of a
	// trusted realm); empty for the service's realm.
	Realm string
}

func (p Principal) String() string { return p.Name }

// App is one published application: where browsers reach it (Host, PathPrefix, a
// canonical path compared exactly, case included), who may (PreAuth, Groups), and
// how kerbgate reaches it (Upstream, with UpstreamCAFile for https, or the system
// roots; the browser's Host header when PreserveHost; Timeout for the response
// headers; a Kerberos ticket when Kerberos is not nil).
type App struct {
	ID, Host, PathPrefix string

	PreAuth signin.PreAuthenticator // signin.Negotiate, signin.OIDC or signin.Passthrough
	Groups  *signin.Groups          // nil: anyone signed in

	Upstream       *url.URL
	UpstreamCAFile string
	PreserveHost   bool
	Timeout        time.Duration
	Kerberos       *Kerberos
	// Headers are the identity headers (and assertion) the upstream receives, with
	// or without Kerberos; nil sends none. Prepared (idheaders.Policy.Prepare).
	Headers *idheaders.Policy
}

// Kerberos is how an app's upstream gets the user's Kerberos token.
type Kerberos struct {
	// SPN is the upstream's service principal name, like "HTTP/app.example.test".
	SPN           string
	LoginIdentity LoginIdentity
	// AlternateUPNAttribute is the directory attribute AlternateUPN* read.
	AlternateUPNAttribute string
	TokenFormat           s4u.Format
	Send                  SendMode
	// MaxReplayBody bounds the request body kept to replay after a 401 (SendOn401);
	// a larger body is sent with the token up front.
	MaxReplayBody int
	// MapForeignRealms are the trusted realms whose users a name-only login
	// identity may be delegated for, in their own realm.
	MapForeignRealms []string
}

// LoginIdentity is the name kerbgate asks the KDC to delegate for.
type LoginIdentity int

const (
	// LoginUPN is the userPrincipalName, as an enterprise name.
	LoginUPN LoginIdentity = iota
	// LoginAlternateUPN is a directory attribute holding another UPN.
	LoginAlternateUPN
	// LoginUPNUserPart is the UPN's part before "@", as an account name.
	LoginUPNUserPart
	// LoginAlternateUPNUserPart is the alternate UPN's part before "@".
	LoginAlternateUPNUserPart
	// LoginSAMAccountName is the pre-Windows 2000 logon name.
	LoginSAMAccountName
)

// String is the login identity as proxy.apps[].kerberos.login_identity spells it.
func (l LoginIdentity) String() string {
	switch l {
	case LoginUPN:
		return "upn"
	case LoginAlternateUPN:
		return "alternate_upn"
	case LoginUPNUserPart:
		return "upn_user_part"
	case LoginAlternateUPNUserPart:
		return "alternate_upn_user_part"
	case LoginSAMAccountName:
		return "sam_account_name"
	}
	return "unknown"
}

// nameOnly reports whether the login identity is an account name without a realm,
// which the KDC reads as an account of the realm it is asked in.
func (l LoginIdentity) nameOnly() bool {
	return l == LoginSAMAccountName || l == LoginUPNUserPart || l == LoginAlternateUPNUserPart
}

// SendMode is when the upstream gets the token.
type SendMode int

const (
	// SendAlways sends the token with every request.
	SendAlways SendMode = iota
	// SendOn401 sends it only after the upstream answers 401 Negotiate, replaying
	// the request (its body up to Kerberos.MaxReplayBody).
	SendOn401
)

// Delegator obtains a fresh GSS token for user to spn (S4U2Self + S4U2Proxy, then a
// new authenticator per call), and says whether the call made a KDC exchange (a
// delegation, which the audit log records) rather than using a cached ticket.
// Refusals are *reason.Error.
type Delegator interface {
	Token(ctx context.Context, user Principal, spn string, format s4u.Format) (token []byte, exchanged bool, err error)
}

// Directory is what the proxy asks AD (the *directory.Directory in production).
type Directory interface {
	// LookupIdentity finds a signed-in user's object by SID, never by a bare name
	// (see directory.Directory.LookupIdentity).
	LookupIdentity(ctx context.Context, id *identity.Identity) (*directory.User, error)
	Attribute(ctx context.Context, dn, attr string) (string, error)
}

// Options configure the service.
type Options struct {
	Apps       []App
	CookieName string
	// CookieKeys authenticate the session cookie's value; shared by a farm.
	CookieKeys *keyset.Set
	SessionTTL time.Duration
	Realm      string
	Delegator  Delegator // required when an app has Kerberos
	Directory  Directory // nil without a directory section
	// GroupNamer names the groups of users signing in to apps that send identity
	// headers (the directory); nil: no names.
	GroupNamer signin.GroupNamer
	Store      store.Sessions
	Reporter   *refusal.Reporter
	Log        *slog.Logger
	// Registerer receives the proxy metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Now        func() time.Time
	Rand       io.Reader
}

// Service routes requests for published hosts to their apps.
type Service struct {
	opts   Options
	routes map[string][]*route // by lower-case host, longest prefix first
	// lenient holds the same routes by lower-case host, longest fold key of the
	// prefix first: the route an IIS-like upstream would see.
	lenient map[string][]*route

	// sessions is the proxy session, one scope per app.
	sessions *signin.Sessions

	requests    *prometheus.CounterVec
	delegations *prometheus.CounterVec
}

type route struct {
	svc *Service
	App
	foldPrefix string // httppath.FoldKey(PathPrefix)
	rp         *httputil.ReverseProxy
	// scope is the app's session: its cookie at the app's path, its store entries
	// bound to the app.
	scope signin.Scope
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Reporter == nil || o.Log == nil {
		return nil, errors.New("proxy: Store, Reporter and Log are required")
	}
	if o.CookieName == "" {
		o.CookieName = "kerbgate_proxy"
	}
	s := &Service{opts: o, routes: map[string][]*route{}, lenient: map[string][]*route{}, sessions: signin.NewSessions(signin.Sessions{
		Store: o.Store, Keys: o.CookieKeys, Purpose: cookiePurpose, CookieName: o.CookieName,
		TTL: o.SessionTTL, Now: o.Now, Rand: o.Rand,
	})}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_proxy_requests_total", Help: "Requests to published applications, by app and outcome (forwarded, refused).",
	}, []string{"app", "outcome"})
	s.delegations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_proxy_delegations_total", Help: "Kerberos tokens made for upstreams on users' behalf, by app and result (ok or a reason code).",
	}, []string{"app", "result"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.delegations} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range o.Apps {
		// Requests are routed on canonical paths: a prefix in another form would
		// never match, or match what it does not say.
		if c, err := httppath.Canonical(a.PathPrefix); err != nil || c != a.PathPrefix {
			return nil, fmt.Errorf("proxy: app %s: path_prefix %q is not a canonical path (no //, dot segments, %%2F or lower-case escapes)", a.ID, a.PathPrefix)
		}
		rt := &route{svc: s, App: a, foldPrefix: httppath.FoldKey(a.PathPrefix),
			scope: signin.Scope{Path: a.PathPrefix, AppID: "proxy:" + a.ID}}
		if a.PreAuth == nil {
			return nil, fmt.Errorf("proxy: app %s: no pre-authenticator", a.ID)
		}
		if a.Kerberos != nil && o.Delegator == nil {
			return nil, fmt.Errorf("proxy: app %s: kerberos needs a delegator", a.ID)
		}
		tr, err := transport(a)
		if err != nil {
			return nil, fmt.Errorf("proxy: app %s: %w", a.ID, err)
		}
		rt.rp = &httputil.ReverseProxy{
			Rewrite:        rt.rewrite,
			Transport:      &kerberosTransport{rt: rt, base: tr},
			FlushInterval:  -1, // stream: server-sent events and long polls pass at once
			ErrorHandler:   rt.upstreamError,
			ModifyResponse: rt.modifyResponse,
			ErrorLog:       slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		}
		host := strings.ToLower(a.Host)
		for _, other := range s.routes[host] {
			if other.foldPrefix == rt.foldPrefix {
				return nil, fmt.Errorf("proxy: apps %s and %s: path_prefix %q and %q differ only in case, trailing dots or ;parameters; an upstream like IIS cannot tell them apart",
					other.ID, a.ID, other.PathPrefix, a.PathPrefix)
			}
		}
		s.routes[host] = append(s.routes[host], rt)
		s.lenient[host] = append(s.lenient[host], rt)
	}
	for host := range s.routes {
		// Longest prefix first, so /app/admin/ wins over /app/.
		sortRoutes(s.routes[host], func(rt *route) string { return rt.PathPrefix })
		sortRoutes(s.lenient[host], func(rt *route) string { return rt.foldPrefix })
	}
	return s, nil
}

// sortRoutes orders rs by the length of key, longest first (stable).
func sortRoutes(rs []*route, key func(*route) string) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && len(key(rs[j])) > len(key(rs[j-1])); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func transport(a App) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 nil, // never an environment proxy between kerbgate and its upstreams
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: a.Timeout,
	}
	if a.UpstreamCAFile != "" {
		pem, err := os.ReadFile(a.UpstreamCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", a.UpstreamCAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// Match returns the handler of the app published at the request's host and path,
// or nil when the host publishes none at that path. On a published host, a path
// with no canonical form, or whose app would differ on a lenient upstream, gets a
// handler that refuses it with path_not_canonical.
//
// Prefixes compare with the canonical path exactly, case included: RFC 3986 paths
// are case-sensitive and so are Apache and nginx, so /App/ is not /app/. An upstream
// that ignores case (IIS) would serve /ADMIN/secret as /admin/secret, so a path
// whose app under comparison by httppath.FoldKey is not its app under exact
// comparison is refused rather than sent to either.
func (s *Service) Match(r *http.Request) http.Handler {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	routes := s.routes[host]
	if len(routes) == 0 {
		return nil
	}
	raw := httppath.Raw(r)
	canon, err := httppath.Canonical(raw)
	if err != nil {
		return s.refusePath(raw, err.Error(), nil)
	}
	var exact, lenient *route
	for _, rt := range routes {
		if httppath.HasPrefix(canon, rt.PathPrefix) {
			exact = rt
			break
		}
	}
	key := httppath.FoldKey(canon)
	for _, rt := range s.lenient[host] {
		if httppath.HasPrefix(key, rt.foldPrefix) {
			lenient = rt
			break
		}
	}
	if lenient != exact {
		why := fmt.Sprintf("the path selects app %s, but app %s where case, trailing dots and spaces, ;parameters or :streams are ignored (IIS)",
			routeID(exact), routeID(lenient))
		return s.refusePath(raw, why, exact)
	}
	if exact == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exact.ServeHTTP(w, withPath(r, canon))
	})
}

func routeID(rt *route) string {
	if rt == nil {
		return "(none: kerbgate's own endpoints)"
	}
	return rt.ID
}

// withPath returns r with its URL's path replaced by the canonical path p, so that
// pre-authentication, the session cookie, refusal logs and the upstream all see the
// path that was routed. The query is the client's, unchanged.
func withPath(r *http.Request, p string) *http.Request {
	r2 := r.WithContext(context.WithValue(r.Context(), pathKey{}, p))
	u := *r.URL
	u.Path, u.RawPath = httppath.Decode(p), p
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2
}

// pathKey holds the canonical path a request was routed on.
type pathKey struct{}

// maxLoggedPath bounds the raw path in refusal logs.
const maxLoggedPath = 256

// refusePath answers path_not_canonical: the request reaches no app and no
// upstream. The log has the raw path (truncated) and why; rt is the app the exact
// path selected, if any, for its refused count.
func (s *Service) refusePath(raw, why string, rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		shown := raw
		if len(shown) > maxLoggedPath {
			shown = shown[:maxLoggedPath] + "..."
		}
		facts := []any{"raw_path", shown, "host", r.Host}
		if rt != nil {
			facts = append(facts, "app", rt.ID)
			s.requests.WithLabelValues(rt.ID, "refused").Inc()
		}
		s.opts.Reporter.Refuse(w, r, reason.New(reason.PathNotCanonical, why, facts...))
	})
}

// Wrap returns a handler that serves published apps and passes other requests to next.
func (s *Service) Wrap(next http.Handler) http.Handler {
	if len(s.routes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.Match(r); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

// request is what a proxied request carries through the reverse proxy.
type request struct {
	in   *http.Request      // the browser's request
	path string             // the canonical path it was routed on
	id   *identity.Identity // nil for passthrough
	user Principal
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.PreAuth.Method() == signin.MethodPassthrough {
		// Nobody signs in, so there is no session to read or start.
		rt.PreAuth.Authenticate(w, r, rt.signedIn)
		return
	}
	id, err := rt.svc.sessions.Load(r, rt.scope)
	if err != nil {
		rt.refuse(w, r, err)
		return
	}
	if id != nil {
		rt.authorized(w, r, id)
		return
	}
	rt.PreAuth.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		if err == nil && res.Identity == nil {
			err = reason.New(reason.Internal, "sign-in passed without an identity", "app", rt.ID)
		}
		if err != nil {
			rt.refuse(w, r, err)
			return
		}
		if rt.Headers != nil {
			signin.NameGroups(r.Context(), rt.svc.opts.GroupNamer, rt.svc.opts.Log, res.Identity)
		}
		if err := rt.svc.sessions.Start(w, r, rt.scope, res.Identity); err != nil {
			rt.refuse(w, r, err)
			return
		}
		rt.signedIn(w, r, res, nil)
	})
}

// signedIn goes on after pre-authentication: to the page the browser first asked
// for when the sign-in ended on a URL of its own (the OIDC callback), else to the
// group check and the upstream.
func (rt *route) signedIn(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
	switch {
	case err != nil:
		rt.refuse(w, r, err)
	case res.ReturnTo != "":
		http.Redirect(w, r, res.ReturnTo, http.StatusFound)
	default:
		rt.authorized(w, r, res.Identity)
	}
}

// cookiePurpose binds the proxy session cookie's MAC to its use.
const cookiePurpose = "kerbgate-proxy-session"

// authorized checks the app's groups, works out the login identity and forwards. A
// nil id is an anonymous request (passthrough).
func (rt *route) authorized(w http.ResponseWriter, r *http.Request, id *identity.Identity) {
	if err := rt.Groups.Check(r.Context(), id); err != nil {
		rt.refuse(w, r, err)
		return
	}
	req := &request{id: id}
	if rt.Kerberos != nil && id != nil {
		user, err := rt.loginIdentity(r.Context(), id)
		if err != nil {
			rt.refuse(w, r, err)
			return
		}
		req.user = user
	}
	rt.forward(w, r, req)
}

// loginIdentity is the name kerbgate asks the KDC for, per
// proxy.apps[].kerberos.login_identity.
//
// For a user of another (trusted) realm, a UPN (enterprise name) is asked for in the
// user's realm; a name-only identity (sam_account_name, upn_user_part,
// alternate_upn_user_part) is refused with LoginIdentityForeignRealm unless the app
// lists the realm in map_foreign_realms: the KDC would read a bare name as the local
// account of that name.
func (rt *route) loginIdentity(ctx context.Context, id *identity.Identity) (Principal, error) {
	k := rt.Kerberos
	missing := func(what string) error {
		return reason.New(reason.LoginIdentityMissing, "the account has no "+what,
			"app", rt.ID, "user", id.Principal, "login_identity", k.LoginIdentity.String())
	}
	var realm string // the user's realm when foreign
	if id.Realm != rt.svc.opts.Realm {
		realm = id.Realm
	}
	if realm != "" && k.LoginIdentity.nameOnly() {
		if !slices.Contains(k.MapForeignRealms, realm) {
			return Principal{}, reason.New(reason.LoginIdentityForeignRealm,
				"a name-only login identity for a user of another realm would name the local account of the same name",
				"app", rt.ID, "user", id.Principal, "user_realm", realm, "realm", rt.svc.opts.Realm,
				"login_identity", k.LoginIdentity.String(),
				"fix", "use login_identity upn or alternate_upn, or list the realm in proxy.apps[].kerberos.map_foreign_realms")
		}
	}
	var user *directory.User
	lookup := func() error {
		if user != nil {
			return nil
		}
		if rt.svc.opts.Directory == nil {
			return reason.New(reason.Internal, "login identity needs the directory section", "login_identity", k.LoginIdentity.String())
		}
		u, err := rt.svc.opts.Directory.LookupIdentity(ctx, id)
		if err != nil {
			return err
		}
		user = u
		return nil
	}
	switch k.LoginIdentity {
	case LoginUPN, LoginUPNUserPart:
		upn := id.UPN
		if upn == "" {
			return Principal{}, missing("userPrincipalName")
		}
		if k.LoginIdentity == LoginUPN {
			return Principal{Name: upn, Enterprise: true, Realm: realm}, nil
		}
		part, _, _ := strings.Cut(upn, "@")
		return Principal{Name: part, Realm: realm}, nil
	case LoginSAMAccountName:
		sam := id.SAMAccountName
		if sam == "" {
			if err := lookup(); err != nil {
				return Principal{}, err
			}
			sam = user.SAMAccountName
		}
		if sam == "" {
			return Principal{}, missing("sAMAccountName")
		}
		return Principal{Name: sam, Realm: realm}, nil
	case LoginAlternateUPN, LoginAlternateUPNUserPart:
		if err := lookup(); err != nil {
			return Principal{}, err
		}
		alt, err := rt.svc.opts.Directory.Attribute(ctx, user.DN, k.AlternateUPNAttribute)
		if err != nil {
			return Principal{}, err
		}
		if alt == "" {
			return Principal{}, missing(k.AlternateUPNAttribute)
		}
		if k.LoginIdentity == LoginAlternateUPN {
			return Principal{Name: alt, Enterprise: true, Realm: realm}, nil
		}
		part, _, _ := strings.Cut(alt, "@")
		return Principal{Name: part, Realm: realm}, nil
	}
	return Principal{}, reason.New(reason.Internal, "unknown login identity", "login_identity", k.LoginIdentity.String())
}

func (rt *route) forward(w http.ResponseWriter, r *http.Request, req *request) {
	if req == nil {
		req = &request{}
	}
	req.in = r
	// Only the canonical path that was routed goes upstream. A request that did not
	// come through Match is canonicalised here, and refused rather than forwarded
	// when it has no canonical form or is not under this app's prefix.
	p, ok := r.Context().Value(pathKey{}).(string)
	if !ok {
		var err error
		if p, err = httppath.Canonical(httppath.Raw(r)); err != nil {
			rt.refuse(w, r, reason.New(reason.PathNotCanonical, err.Error(), "app", rt.ID))
			return
		}
	}
	if !httppath.HasPrefix(p, rt.PathPrefix) {
		rt.refuse(w, r, reason.New(reason.PathNotCanonical, "the path is not under the app's path_prefix", "app", rt.ID, "path_prefix", rt.PathPrefix))
		return
	}
	req.path = p
	rt.svc.requests.WithLabelValues(rt.ID, "forwarded").Inc()
	rt.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, req)))
}

func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	// The routed canonical path under the prefix maps onto the upstream's base path:
	// https://app.example.test/apps/x/page -> http://internal/base/page. It has no
	// dot segments, so it cannot climb above the base path; forward checked that it
	// is under the prefix. Path and RawPath agree, so the upstream receives exactly
	// this escaped form.
	req := pr.In.Context().Value(ctxKey{}).(*request)
	p := req.path[len(strings.TrimSuffix(rt.PathPrefix, "/")):]
	if p == "" {
		p = "/"
	}
	pr.Out.URL.Path, pr.Out.URL.RawPath = httppath.Decode(p), p
	pr.SetURL(rt.Upstream)
	pr.SetXForwarded()
	// What the browser used, not kerbgate's own connection: behind a TLS-terminating
	// balancer in listen.trusted_proxies that is https and the browser's address.
	if v := frontend.From(pr.In); v.Scheme != "" {
		pr.Out.Header.Set("X-Forwarded-Proto", v.Scheme)
		pr.Out.Header.Set("X-Forwarded-Host", v.Host)
		if v.Client.IsValid() {
			pr.Out.Header.Set("X-Forwarded-For", v.Client.String())
		}
	}
	if rt.PreserveHost {
		pr.Out.Host = pr.In.Host
	}
	// The browser's credentials are for kerbgate, never for the upstream.
	pr.Out.Header.Del("Authorization")
	pr.Out.Header.Del("Proxy-Authorization")
	stripCookie(pr.Out, rt.svc.opts.CookieName)
	// Identity headers come from kerbgate only: a client's X-Auth-Request-User
	// never reaches the upstream, whether or not the app sends headers.
	headers := rt.Headers
	if headers == nil {
		headers = noHeaders
	}
	headers.Strip(pr.Out.Header)
	if rt.Headers != nil && req.id != nil {
		if err := rt.Headers.Set(pr.Out.Header, req.id, strings.ToLower(rt.Host)); err != nil {
			// Sent without the headers would be sent as nobody: the transport
			// refuses the request instead.
			*pr.Out = *pr.Out.WithContext(context.WithValue(pr.Out.Context(), headerErrKey{}, err))
		}
	}
}

// noHeaders strips the default identity headers from apps that send none.
var noHeaders = func() *idheaders.Policy {
	p := &idheaders.Policy{}
	if err := p.Prepare(); err != nil {
		panic(err)
	}
	return p
}()

// headerErrKey carries a failure to make an app's identity headers (an assertion
// that could not be signed) from Rewrite to the transport, which refuses with it.
type headerErrKey struct{}

// stripCookie removes kerbgate's session cookie from what goes upstream, under
// its plain, __Host- and __Secure- names.
func stripCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	var plain frontend.View // http: CookieName strips the prefixes
	bare := plain.CookieName(name, "/")
	for _, c := range cookies {
		if plain.CookieName(c.Name, "/") != bare {
			r.AddCookie(c)
		}
	}
}

func (rt *route) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnauthorized && rt.Kerberos != nil && offersNegotiate(resp.Header) {
		req, _ := resp.Request.Context().Value(ctxKey{}).(*request)
		if req != nil && req.id != nil && resp.Request.Header.Get("Authorization") != "" {
			resp.Body.Close()
			return reason.New(reason.UpstreamRefusedTicket, "the upstream answered 401 Negotiate to the delegated ticket",
				"app", rt.ID, "spn", rt.Kerberos.SPN, "delegated_user", req.user.Name, "upstream", rt.Upstream.String())
		}
	}
	// The upstream's Negotiate answer (its AP-REP) is for kerbgate, not the browser.
	if resp.StatusCode != http.StatusUnauthorized {
		resp.Header.Del("WWW-Authenticate")
	}
	return nil
}

func offersNegotiate(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "Kerberos") {
			return true
		}
	}
	return false
}

// upstreamError renders a failure of the upstream round trip. ReverseProxy hands it
// the outgoing request; the refusal is logged with the browser's.
func (rt *route) upstreamError(w http.ResponseWriter, out *http.Request, err error) {
	r := out
	if req, _ := out.Context().Value(ctxKey{}).(*request); req != nil && req.in != nil {
		r = req.in
	}
	if isReason(err) {
		rt.refuse(w, r, err)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	rt.refuse(w, r, reason.New(reason.UpstreamUnavailable, "upstream request failed",
		"app", rt.ID, "upstream", rt.Upstream.String(), "error", err.Error()))
}

func isReason(err error) bool {
	var e *reason.Error
	return errors.As(err, &e)
}

func (rt *route) refuse(w http.ResponseWriter, r *http.Request, err error) {
	e := reason.Of(err)
	rt.svc.requests.WithLabelValues(rt.ID, "refused").Inc()
	rt.svc.opts.Reporter.Refuse(w, r, e)
}

// kerberosTransport adds the delegated ticket: up front (send always) or after the
// upstream's 401 Negotiate (send on_401), replaying a bounded copy of the body.
type kerberosTransport struct {
	rt   *route
	base http.RoundTripper
}

func (t *kerberosTransport) RoundTrip(out *http.Request) (*http.Response, error) {
	if err, ok := out.Context().Value(headerErrKey{}).(error); ok {
		return nil, err
	}
	req, _ := out.Context().Value(ctxKey{}).(*request)
	k := t.rt.Kerberos
	if k == nil || req == nil || req.id == nil {
		return t.base.RoundTrip(out)
	}
	if k.Send == SendAlways {
		if err := t.authorize(out, req); err != nil {
			return nil, err
		}
		return t.base.RoundTrip(out)
	}

	// on_401: keep the body to send it twice, if it is small enough.
	var body []byte
	if out.Body != nil && out.Body != http.NoBody {
		limit := int64(k.MaxReplayBody)
		if out.ContentLength > limit {
			// Too large to replay: the ticket goes up front.
			if err := t.authorize(out, req); err != nil {
				return nil, err
			}
			return t.base.RoundTrip(out)
		}
		b, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
		out.Body.Close()
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			// Length unknown in advance and over the bound: send what was read
			// followed by the rest is impossible after closing, so refuse rather than
			// forward a truncated body.
			return nil, reason.New(reason.BadRequest, "request body over proxy.apps[].kerberos.max_replay_body with send on_401",
				"app", t.rt.ID, "max_replay_body", limit)
		}
		body = b
	}
	first := out.Clone(out.Context())
	setBody(first, body)
	resp, err := t.base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !offersNegotiate(resp.Header) {
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	second := out.Clone(out.Context())
	setBody(second, body)
	if err := t.authorize(second, req); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(second)
}

func setBody(r *http.Request, body []byte) {
	if body == nil {
		r.Body = http.NoBody
		r.ContentLength = 0
		r.GetBody = nil
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// authorize gets a fresh token for the request's user and sets it, with the audit
// event of the delegation.
func (t *kerberosTransport) authorize(out *http.Request, req *request) error {
	k := t.rt.Kerberos
	tok, exchanged, err := t.rt.svc.opts.Delegator.Token(out.Context(), req.user, k.SPN, k.TokenFormat)
	result := "ok"
	if err != nil {
		if !isReason(err) {
			err = reason.New(reason.Internal, "delegation failed", "error", err.Error())
		}
		result = string(reason.Of(err).Code)
	}
	t.rt.svc.delegations.WithLabelValues(t.rt.ID, result).Inc()
	t.audit(req, result, exchanged, err)
	if err != nil {
		return err
	}
	out.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(tok))
	return nil
}

// audit writes one event per delegation (a KDC exchange, or a failure): the
// equivalent of the Application Proxy connector's event 24029. Requests served from a
// cached ticket are logged at debug level only.
func (t *kerberosTransport) audit(req *request, result string, exchanged bool, err error) {
	attrs := []any{"app", t.rt.ID, "preauth", t.rt.PreAuth.Method().String(), "preauth_identity", req.id.Principal,
		"delegated_identity", req.user.Name, "enterprise_name", req.user.Enterprise, "delegated_realm", req.user.Realm,
		"spn", t.rt.Kerberos.SPN, "result", result}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
		t.rt.svc.opts.Log.Warn("kerberos delegation", attrs...)
		return
	}
	if !exchanged {
		t.rt.svc.opts.Log.Debug("kerberos delegation (cached ticket)", attrs...)
		return
	}
	t.rt.svc.opts.Log.Info("kerberos delegation", attrs...)
}
