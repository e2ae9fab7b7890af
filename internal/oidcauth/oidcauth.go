// Package oidcauth is OpenID Connect pre-authentication for published applications:
// the authorization code flow with PKCE (S256), state and nonce, against an external
// provider (coreos/go-oidc for discovery and ID token verification, x/oauth2 for the
// code exchange), with the user's name read from a configurable claim.
//
// It owns the flow's state (sealed in a short-lived cookie with the farm's cookie
// keys, so any node can finish a flow another began) and the checks of the provider's
// answers. It must not create sessions, check groups or proxy requests: it hands the
// signed-in identity back to the sign-in core (signin.OIDC), whose caller, a face,
// keeps the session.
package oidcauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Config is one application's relying party.
type Config struct {
	Issuer, ClientID, ClientSecret string
	// UsernameClaim is the ID token claim holding the user's UPN.
	UsernameClaim string
	Scopes        []string
	// CallbackPath is where the provider sends the browser back, under the app's
	// external host (it must be registered at the provider).
	CallbackPath string
	// Realm is the Kerberos realm of the identities made.
	Realm      string
	CookieKeys *keyset.Set
	Secure     bool // always https, whatever the request says (kerbgate serves TLS or external_url is https)
}

// Authenticator runs the flow for one application.
type Authenticator struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use: kerbgate starts while the provider is down
}

// New checks the configuration; it does not contact the provider.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.CookieKeys == nil || cfg.CallbackPath == "" {
		return nil, errors.New("oidcauth: issuer, client id, cookie keys and callback path are required")
	}
	if why := insecureURL(cfg.Issuer); why != "" {
		return nil, fmt.Errorf("oidcauth: issuer %s", why)
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "upn"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &Authenticator{cfg: cfg}, nil
}

const stateCookie = "kerbgate_oidc_state"
const statePurpose = "kerbgate-oidc-state"
const stateTTL = 10 * time.Minute

type flowState struct {
	State, Nonce, Verifier, ReturnTo string
	Expires                          int64
}

func (a *Authenticator) discover(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.cfg.Issuer)
	if err != nil {
		return nil, reason.New(reason.OIDCProviderUnavailable, "OpenID provider discovery failed", "issuer", a.cfg.Issuer, "error", err.Error())
	}
	// Every endpoint discovery names must be as safe as the issuer: the JWKS verifies
	// ID tokens, and the token and UserInfo endpoints answer who signed in.
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	_ = p.Claims(&meta)
	for _, e := range []struct{ name, url string }{{"authorization_endpoint", p.Endpoint().AuthURL},
		{"token_endpoint", p.Endpoint().TokenURL}, {"userinfo_endpoint", p.UserInfoEndpoint()}, {"jwks_uri", meta.JWKS}} {
		if e.url == "" {
			continue
		}
		if why := insecureURL(e.url); why != "" {
			return nil, reason.New(reason.OIDCProviderUnavailable, "OpenID provider discovery names an endpoint that is not https",
				"issuer", a.cfg.Issuer, "endpoint", e.name, "url", truncate(e.url), "problem", why)
		}
	}
	a.provider = p
	return p, nil
}

// insecureURL says why u cannot be trusted to reach an OpenID provider, or "": it
// must be https, except for a provider on loopback or in a .test domain.
func insecureURL(u string) string {
	pu, err := url.Parse(u)
	switch {
	case err != nil || pu.Host == "":
		return fmt.Sprintf("%q is not a URL", truncate(u))
	case pu.Scheme == "https":
		return ""
	case pu.Scheme == "http" && PlainHTTPAllowed(pu.Hostname()):
		return ""
	}
	return fmt.Sprintf("%q is not https (plain http only for a provider on loopback or in a .test domain)", truncate(u))
}

// PlainHTTPAllowed reports whether host may serve an OpenID provider over plain http:
// loopback (127.0.0.0/8, ::1, localhost, RFC 6761 §6.3) or the .test top-level domain
// (RFC 6761 §6.2), where tests run. Anywhere else a plain-http provider lets anyone on
// the path sign users in.
func PlainHTTPAllowed(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".test") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *Authenticator) oauth(p *oidc.Provider, r *http.Request) *oauth2.Config {
	// The browser's own address (behind a TLS-terminating balancer: https), which is
	// what the provider has registered.
	v := frontend.From(r)
	scheme := v.Scheme
	if a.cfg.Secure {
		scheme = "https"
	}
	return &oauth2.Config{ClientID: a.cfg.ClientID, ClientSecret: a.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: scheme + "://" + v.Host + a.cfg.CallbackPath, Scopes: a.cfg.Scopes}
}

// secure reports whether the state cookie is Secure: whenever the browser uses https.
func (a *Authenticator) secure(r *http.Request) bool {
	return a.cfg.Secure || frontend.From(r).Secure()
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Authenticate either finishes the flow (the request is the provider's callback) and
// returns the identity and where to send the browser, or starts it (a redirect to
// the provider, or a refusal) and returns handled.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request) (id *identity.Identity, returnTo string, err error, handled bool) {
	p, err := a.discover(r.Context())
	if err != nil {
		return nil, "", err, false
	}
	if r.URL.Path == a.cfg.CallbackPath {
		id, returnTo, err := a.callback(r, p)
		http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: a.cfg.CallbackPath, MaxAge: -1, HttpOnly: true, Secure: a.secure(r)})
		return id, returnTo, err, false
	}
	st := flowState{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), ReturnTo: r.URL.RequestURI(),
		Expires: time.Now().Add(stateTTL).Unix()}
	raw, _ := json.Marshal(st)
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: a.cfg.CookieKeys.Seal(statePurpose, base64.RawURLEncoding.EncodeToString(raw)),
		Path: a.cfg.CallbackPath, MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: a.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, a.oauth(p, r).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
	return nil, "", nil, true
}

func (a *Authenticator) callback(r *http.Request, p *oidc.Provider) (*identity.Identity, string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, "", reason.New(reason.OIDCTokenInvalid, "the provider refused the sign-in", "error", truncate(e), "description", truncate(q.Get("error_description")))
	}
	c, err := r.Cookie(stateCookie)
	if err != nil {
		return nil, "", reason.New(reason.OIDCStateInvalid, "no sign-in in progress in this browser (state cookie missing)")
	}
	sealed, ok := a.cfg.CookieKeys.Open(statePurpose, c.Value)
	var st flowState
	raw, derr := base64.RawURLEncoding.DecodeString(sealed)
	if !ok || derr != nil || json.Unmarshal(raw, &st) != nil {
		return nil, "", reason.New(reason.OIDCStateInvalid, "the state cookie does not verify")
	}
	if time.Now().Unix() > st.Expires || subtle.ConstantTimeCompare([]byte(st.State), []byte(q.Get("state"))) != 1 {
		return nil, "", reason.New(reason.OIDCStateInvalid, "the state parameter does not match this browser's sign-in, or it expired")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := a.oauth(p, r).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, "", reason.New(reason.OIDCTokenInvalid, "the provider refused the code exchange", "issuer", a.cfg.Issuer,
				"error", re.ErrorCode, "status", re.Response.StatusCode)
		}
		return nil, "", reason.New(reason.OIDCProviderUnavailable, "the token endpoint did not answer", "issuer", a.cfg.Issuer, "error", err.Error())
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, "", reason.New(reason.OIDCTokenInvalid, "no ID token in the token response")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: a.cfg.ClientID}).Verify(ctx, rawID)
	if err != nil {
		return nil, "", reason.New(reason.OIDCTokenInvalid, "the ID token does not verify", "error", err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return nil, "", reason.New(reason.OIDCTokenInvalid, "the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, "", reason.New(reason.OIDCTokenInvalid, "the ID token's claims do not decode")
	}
	name, _ := claims[a.cfg.UsernameClaim].(string)
	if name == "" && a.cfg.UsernameClaim != "sub" {
		// Providers put profile claims in the UserInfo answer rather than the ID token.
		if ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			// The answer is about this user only if its sub is the ID token's
			// (OIDC Core §5.3.2: otherwise "the UserInfo Response values MUST NOT be used").
			if subtle.ConstantTimeCompare([]byte(ui.Subject), []byte(idt.Subject)) != 1 {
				return nil, "", reason.New(reason.OIDCTokenInvalid, "the UserInfo answer names another subject than the ID token",
					"issuer", a.cfg.Issuer, "id_token_sub", idt.Subject, "userinfo_sub", truncate(ui.Subject))
			}
			var uc map[string]any
			if ui.Claims(&uc) == nil {
				name, _ = uc[a.cfg.UsernameClaim].(string)
			}
		}
	}
	if name == "" {
		return nil, "", reason.New(reason.OIDCClaimMissing, "the provider sent no value for the configured claim",
			"claim", a.cfg.UsernameClaim, "subject", idt.Subject)
	}
	returnTo := st.ReturnTo
	if !strings.HasPrefix(returnTo, "/") || strings.HasPrefix(returnTo, "//") {
		returnTo = "/"
	}
	return &identity.Identity{Principal: name, UPN: name, Realm: a.cfg.Realm, AuthMethod: "oidc", Groups: []string{}}, returnTo, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
