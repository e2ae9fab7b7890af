// Package oidcprovider is kerbgate's OpenID Provider face: any OpenID Connect relying
// party signs its users in with their Windows login, silently. The browser signs in
// to kerbgate with Negotiate (or kerbgate's own OIDC browser session), kerbgate checks
// the account in the directory and the client's allowed groups, and the relying party
// gets an authorization code it redeems for an ID token and an access token.
//
// It owns the provider's policy (the registered clients, the issuer, the signing keys,
// the token lifetimes), given as typed Options (package setup makes them from the
// configuration file), the login step (/login under the issuer's path: when the OIDC
// browser session answers and when a fresh Negotiate must), the sign-in's lifetime
// (auth_time, acr, and end_session ending every token issued in it), the storage
// adapter the OpenID protocol library calls, and kerbgate's view of each answer the
// library writes (metrics, a reason code and a log line for every refusal). The
// protocol itself — discovery, JWKS, the authorization and token endpoints, PKCE,
// token signing — is github.com/zitadel/oidc/v3/pkg/op, an OpenID-certified
// implementation; this package writes none of it but the userinfo endpoint, which
// it serves itself for its cost (userinfo.go: the same answers), and corrects only
// where the library answers against the RFCs (observe.go). Access tokens are
// self-contained and sealed, their liveness read from the store at every use
// (accesstoken.go). The library logs through slog's default logger only, so this
// package makes that logger route its records to the provider's (liblog.go): the
// one process-wide setting it makes. It must not verify Kerberos, speak LDAP or
// read configuration, nor keep an answer about a token's liveness in memory (a
// revocation on one node of a farm holds on every other at once): it composes the
// sign-in core (package signin), a Directory, a store.Store and clientauth for
// client secrets.
package oidcprovider

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/kerbgate/kerbgate/internal/clientauth"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Directory confirms a signed-in user and names its groups (the
// *directory.Directory in production).
type Directory = signin.Directory

// Client is one registered relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// SecretHash is the client secret's argon2id or bcrypt hash; "" makes a public
	// client, which must use PKCE (S256).
	SecretHash string
	// RedirectURIs and PostLogoutRedirectURIs are compared exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// Groups is who may sign in to the client; nil: anyone signed in.
	Groups *signin.Groups
	// Scopes are the scopes the client may ask for; nil: openid, profile, email.
	// ScopeGroups gives the groups and group_sids claims.
	Scopes []string
	// GroupNames selects the group names of the groups claim; its Max caps them in
	// an ID token (more: overage, signalled as a distributed claim at userinfo).
	GroupNames signin.GroupFilter
	// RequireDirectory makes sign-in require the account to be found, and usable,
	// in the directory.
	RequireDirectory bool
}

// Options configure the provider.
type Options struct {
	// Issuer is the provider's https URL (http only for loopback and .test names);
	// its path is where the endpoints live.
	Issuer string
	// SigningKeys are the farm's private JWKs (RS256 or ES256), oldest first: the last
	// signs, all are published.
	SigningKeys []jose.JSONWebKey
	// IDTokenTTL and AccessTokenTTL are the tokens' lifetimes; RefreshTokenTTL how
	// long a refresh token (and its family, renewed at each use) lives.
	IDTokenTTL, AccessTokenTTL, RefreshTokenTTL time.Duration
	Clients                                     []Client
	CookieName                                  string
	// CookieKeys seal the OIDC browser session cookie; shared by a farm.
	CookieKeys        *keyset.Set
	BrowserSessionTTL time.Duration
	// SignIn signs a browser in (signin.Negotiate in production, with the password
	// fallback when configured).
	SignIn signin.PreAuthenticator
	// PasswordSignIn says SignIn may sign a browser in with a password: discovery
	// then lists ACRPassword among the acr values kerbgate asserts.
	PasswordSignIn bool
	Directory      Directory // nil: no directory configured
	Store          store.Store
	Reporter       *refusal.Reporter
	// Log receives kerbgate's log lines, and the protocol library's (routed
	// there from slog's default logger, see routeLibraryLog).
	Log *slog.Logger
	// Registerer receives the provider's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Secrets checks client secrets (bounded, rate-limited); nil makes one.
	Secrets *clientauth.Authenticator
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
}

// Provider serves the OpenID Provider's endpoints under the issuer's path.
type Provider struct {
	opts    Options
	path    string // the issuer's path, without a trailing slash
	clients map[string]*client
	browser *signin.Sessions
	st      *storage
	op      *op.Provider
	handler http.Handler
	metrics *metrics
	// crypto seals codes and access tokens (the library's Crypto).
	crypto *tokenCrypto
	// userinfoHandler is kerbgate's userinfo endpoint behind the library's CORS.
	userinfoHandler http.Handler
}

// cookiePurpose binds the OIDC browser session cookie's MAC to its use.
const cookiePurpose = "kerbgate-oidc-browser-session"

// New checks the options and returns the provider.
func New(o Options) (*Provider, error) {
	if o.SignIn == nil || o.Store == nil || o.Reporter == nil || o.Log == nil {
		return nil, errors.New("oidcprovider: SignIn, Store, Reporter and Log are required")
	}
	if len(o.SigningKeys) == 0 {
		return nil, errors.New("oidcprovider: no signing key")
	}
	iss, err := url.Parse(o.Issuer)
	if err != nil || iss.Host == "" {
		return nil, fmt.Errorf("oidcprovider: issuer %q is not an absolute URL", o.Issuer)
	}
	if o.IDTokenTTL <= 0 {
		o.IDTokenTTL = 5 * time.Minute
	}
	if o.AccessTokenTTL <= 0 {
		o.AccessTokenTTL = 10 * time.Minute
	}
	if o.RefreshTokenTTL <= 0 {
		o.RefreshTokenTTL = 8 * time.Hour
	}
	if o.CookieName == "" {
		o.CookieName = "kerbgate_oidc"
	}
	if o.Secrets == nil {
		o.Secrets = clientauth.New(clientauth.Options{})
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	p := &Provider{opts: o, path: strings.TrimSuffix(iss.Path, "/"), clients: map[string]*client{}, metrics: m}
	p.browser = signin.NewSessions(signin.Sessions{
		Store: o.Store, Keys: o.CookieKeys, Purpose: cookiePurpose, CookieName: o.CookieName,
		TTL: o.BrowserSessionTTL, Now: o.Now, Rand: o.Rand,
	})
	p.opts.Now = p.browser.Now
	for i := range o.Clients {
		c := o.Clients[i]
		if c.RequireDirectory && o.Directory == nil {
			return nil, fmt.Errorf("oidcprovider: client %s requires a directory but none is given", c.ID)
		}
		p.clients[c.ID] = &client{Client: c, p: p}
	}
	p.st = newStorage(p)
	cfg := &op.Config{
		CryptoKey:             sha256.Sum256(cryptoKeyMaterial(o.SigningKeys)),
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		// Where end_session sends a browser without a registered
		// post_logout_redirect_uri.
		DefaultLogoutRedirectURI: strings.TrimSuffix(iss.Path, "/") + "/signed-out",
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, ScopeGroups,
		},
	}
	p.crypto = newTokenCrypto(cfg.CryptoKey)
	opts := []op.Option{op.WithCrypto(p.crypto)}
	if iss.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	prov, err := op.NewProvider(cfg, p.st, op.StaticIssuer(o.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	p.op = prov
	p.userinfoHandler = http.HandlerFunc(p.userinfo)
	if co := prov.CORSOptions(); co != nil {
		p.userinfoHandler = cors.New(*co).Handler(p.userinfoHandler)
	}
	p.handler = http.StripPrefix(p.path, http.HandlerFunc(p.serve))
	routeLibraryLog(o.Log)
	return p, nil
}

// refuseResponseType answers an authorization request whose response_type is not
// "code" (kerbgate serves the code flow only) from a known client with one of its
// registered redirect URIs: the error goes to that URI (RFC 6749 §4.1.2.1, in the
// fragment for a response type with a token, OIDC Core §3.2.2.6), with the state.
// The library refuses those without a redirect when the URI is http. Any other
// request goes on to the library, which checks the client and the URI first.
func (p *Provider) refuseResponseType(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	rt := q.Get("response_type")
	if rt == string(oidc.ResponseTypeCode) || r.Method != http.MethodGet {
		return false
	}
	c, err := p.st.GetClientByClientID(r.Context(), q.Get("client_id"))
	if err != nil || !slices.Contains(c.RedirectURIs(), q.Get("redirect_uri")) {
		return false
	}
	e := url.Values{"error": {"unsupported_response_type"}, "error_description": {"kerbgate serves the code flow only"}}
	refused := reason.New(reason.OIDCUnsupportedResponseType, "a response_type other than code", "response_type", truncate(rt, 64))
	if rt == "" {
		e = url.Values{"error": {"invalid_request"}, "error_description": {"response_type is missing"}}
		refused = reason.New(reason.OIDCInvalidRequest, "response_type is missing")
	}
	code := p.refused(r, &requestInfo{client: c.GetID()}, refused, "stage", "authorize")
	p.metrics.authorizations.WithLabelValues(c.GetID(), string(code)).Inc()
	if s := q.Get("state"); s != "" {
		e.Set("state", s)
	}
	sep := "?"
	if strings.Contains(rt, "token") {
		sep = "#"
	} else if strings.Contains(q.Get("redirect_uri"), "?") {
		sep = "&"
	}
	http.Redirect(w, r, q.Get("redirect_uri")+sep+e.Encode(), http.StatusFound)
	return true
}

// cryptoKeyMaterial is what the access tokens' encryption key is derived from: the
// signing keys' private parts, the same on every node of a farm.
func cryptoKeyMaterial(keys []jose.JSONWebKey) []byte {
	h := sha256.New()
	for _, k := range keys {
		b, _ := k.MarshalJSON()
		h.Write(b)
	}
	return append([]byte("kerbgate-oidc-access-token\x00"), h.Sum(nil)...)
}

// Register adds the provider's endpoints to mux.
func (p *Provider) Register(mux *http.ServeMux) {
	login := func(w http.ResponseWriter, r *http.Request) {
		r, ri := p.withRequestInfo(w, r)
		p.login(w, r, ri)
	}
	mux.HandleFunc("GET "+p.path+"/login", login)
	// A sign-in form in the 401 page (the password fallback) posts back here.
	mux.HandleFunc("POST "+p.path+"/login", login)
	mux.HandleFunc("GET "+p.path+"/signed-out", signedOut)
	mux.Handle(p.path+p.op.UserinfoEndpoint().Relative(), p.userinfoHandler) // the busiest endpoint: straight to it
	mux.Handle(p.path+"/", p.handler)
}

// loginPath is where the library sends the browser to sign in (client.LoginURL).
func (p *Provider) loginURL(id string) string {
	return p.path + "/login?id=" + url.QueryEscape(id)
}

// browserScope is where the OIDC browser session holds: the provider's own paths.
func (p *Provider) browserScope() signin.Scope { return signin.Scope{Path: p.path + "/"} }

// login is the login step: the authorization request waits under id until the
// browser has signed in (kerbgate's OIDC browser session, or Negotiate), the account
// is confirmed and the client's groups allow it. The session answers unless the
// request wants a fresher or stronger sign-in than the session's (prompt=login,
// max_age, acr_values: sessionUse); then the browser signs in with Negotiate again.
func (p *Provider) login(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	ar, err := p.st.authRequest(r.URL.Query().Get("id"))
	if err != nil {
		p.metrics.authorizations.WithLabelValues("-", string(reason.BadRequest)).Inc()
		p.opts.Reporter.Refuse(w, r, reason.New(reason.BadRequest, "no such authorization request", "cause", "unknown_or_expired"))
		return
	}
	ri.client = ar.ClientID
	c, ok := p.clients[ar.ClientID]
	if !ok { // sealed before a configuration change removed the client
		p.metrics.authorizations.WithLabelValues("-", string(reason.UnknownApp)).Inc()
		p.opts.Reporter.Refuse(w, r, reason.New(reason.UnknownApp, "no such client", "client", ar.ClientID))
		return
	}
	cur, err := p.browser.Current(r, p.browserScope())
	if err == nil && cur != nil {
		var use sessionUse
		switch use, err = p.sessionUse(r.Context(), ar, cur); {
		case err != nil:
		case use == reuseSession:
			p.complete(w, r, ri, ar, c, cur.Identity, cur)
			return
		case use == endSession:
			err = p.browser.End(w, r, p.browserScope())
		}
	}
	if err != nil {
		e := reason.Of(err)
		p.metrics.authorizations.WithLabelValues(c.ID, string(e.Code)).Inc()
		p.opts.Reporter.Refuse(w, r, e)
		return
	}
	if ar.PromptNone && r.Header.Get("Authorization") == "" {
		p.challengeOrLoginRequired(w, r, ri, ar)
		return
	}
	p.opts.SignIn.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		if err == nil && res.Identity == nil {
			err = reason.New(reason.Internal, "sign-in did not produce an identity")
		}
		if err != nil {
			e := reason.Of(err)
			if e.Code != reason.NoToken { // the challenge: the first leg of every sign-in
				p.metrics.authorizations.WithLabelValues(c.ID, string(e.Code)).Inc()
			}
			p.opts.Reporter.Refuse(w, r, e)
			return
		}
		p.complete(w, r, ri, ar, c, res.Identity, nil)
	})
}

// complete confirms the account, applies the client's groups and answers with the
// code (issueCode). cur is the OIDC browser session that answered, nil after a
// fresh Negotiate (which starts or renews the session: its time is the sign-in's,
// auth_time).
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, ri *requestInfo, ar *authRequest, c *client, id *identity.Identity, cur *signin.Signed) {
	ctx := r.Context()
	ri.user = id.Principal
	admission := signin.Admission{Directory: p.opts.Directory, RequireDirectory: c.RequireDirectory, Groups: c.Groups, Log: p.opts.Log}
	if err := signin.Admit(ctx, admission, id); err != nil {
		p.deny(w, r, ri, ar, err)
		return
	}
	if id.SID == "" {
		p.deny(w, r, ri, ar, reason.New(reason.Internal, "the account has no SID to derive its subject from", "user", id.Principal))
		return
	}
	signed := cur
	if signed == nil {
		var err error
		if signed, err = p.browser.Begin(w, r, p.browserScope(), id); err != nil {
			e := reason.Of(err)
			p.metrics.authorizations.WithLabelValues(c.ID, string(e.Code)).Inc()
			p.opts.Reporter.Refuse(w, r, e)
			return
		}
	}
	if !p.issueCode(w, r, ri, ar, c, id, signed) {
		return
	}
	p.metrics.authorizations.WithLabelValues(c.ID, "ok").Inc()
	p.opts.Log.Info("oidc sign-in", "client", c.ID, "user", id.Principal, "negotiated", cur == nil,
		"auth_time", signed.Since.UTC().Format(time.RFC3339), "acr", acrFor(ar.ACRValues, id), "amr", amrFor(id)[0])
}

// deny sends the client access_denied at its (registered) redirect URI, or
// server_error when the directory cannot answer; kerbgate's reason goes to the log
// and the metrics.
func (p *Provider) deny(w http.ResponseWriter, r *http.Request, ri *requestInfo, ar *authRequest, err error) {
	code := p.refused(r, ri, reason.Of(err), "stage", "login")
	p.metrics.authorizations.WithLabelValues(p.clientLabel(ar.ClientID), string(code)).Inc()
	oe := oidc.ErrAccessDenied()
	switch code {
	case reason.DirectoryUnavailable, reason.StoreUnavailable, reason.Internal:
		oe = oidc.ErrServerError()
	}
	op.AuthRequestError(w, r, ar, oe, p.op)
}

// signedOut is where end_session leaves a browser that named no return address.
func signedOut(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "You are signed out of kerbgate.\n")
}

// challengeOrLoginRequired answers prompt=none without a session: a Negotiate
// challenge, which a browser holding a ticket answers at once and silently, whose
// page sends any other browser on to the client with login_required. No prompt is
// shown either way.
func (p *Provider) challengeOrLoginRequired(w http.ResponseWriter, r *http.Request, ri *requestInfo, ar *authRequest) {
	code := p.refused(r, ri, reason.New(reason.OIDCLoginRequired, "prompt=none without a usable OIDC browser session: a Negotiate challenge whose page leads on to login_required"), "stage", "login")
	p.metrics.authorizations.WithLabelValues(p.clientLabel(ar.ClientID), string(code)).Inc()
	rec := httptest.NewRecorder()
	op.AuthRequestError(rec, r, ar, oidc.ErrLoginRequired(), p.op)
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusFound || loc == "" {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	h := w.Header()
	h.Set("WWW-Authenticate", "Negotiate")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusUnauthorized)
	u := html.EscapeString(loc)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s"><title>Sign-in required</title></head><body><p><a href="%s">Continue</a></p></body></html>`+"\n", u, u)
}
