package oidcauth

// The code flow against a provider written here (httptest): discovery, a JWKS, a
// token endpoint that checks PKCE and signs ID tokens with go-jose, and UserInfo.
// The flow against a real provider (testrealm/oidc, node-oidc-provider) is tested in
// internal/server.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kerbgate/kerbgate/internal/reason"
)

// provider is a test OpenID provider. Its token endpoint answers one ID token with
// the claims of next (iss, aud, exp and iat filled in), signed by signer.
type provider struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	mu        sync.Mutex
	challenge string         // the code_challenge of the last authorization request
	nonce     string         // its nonce
	claims    map[string]any // the next ID token's claims
	userinfo  map[string]any // UserInfo's answer
	signWith  *rsa.PrivateKey
}

// Keys are made once per test binary: RSA key generation is slow.
var (
	providerKey = sync.OnceValue(func() *rsa.PrivateKey { return newKey() })
	otherKey    = sync.OnceValue(func() *rsa.PrivateKey { return newKey() })
)

func newKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	key := providerKey()
	p := &provider{key: key, signWith: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := p.srv.URL
		json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/auth",
			"token_endpoint": u + "/token", "userinfo_endpoint": u + "/me", "jwks_uri": u + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if r.PostFormValue("code") != "the-code" || base64.RawURLEncoding.EncodeToString(sum[:]) != p.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		claims := map[string]any{"iss": p.srv.URL, "aud": "kerbgate", "sub": "u-1", "nonce": p.nonce,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
		for k, v := range p.claims {
			claims[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60,
			"id_token": sign(t, p.signWith, claims)})
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p.userinfo)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts a sign-in at /app/page, lets the provider's authorization endpoint
// answer with code (recording the PKCE challenge and nonce), and returns the result
// of the callback; edit may change the callback request.
func (p *provider) run(t *testing.T, a *Authenticator, edit func(r *http.Request)) (string, string, error) {
	t.Helper()
	w := httptest.NewRecorder()
	_, _, err, handled := a.Authenticate(w, httptest.NewRequest("GET", "http://app.example.test/app/page?x=1", nil))
	if err != nil || !handled {
		t.Fatalf("start: %v %v", err, handled)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "kerbgate" || q.Get("redirect_uri") != "http://app.example.test/app/cb" {
		t.Fatalf("authorization request %s", loc)
	}
	p.mu.Lock()
	p.challenge, p.nonce = q.Get("code_challenge"), q.Get("nonce")
	p.mu.Unlock()
	cb := httptest.NewRequest("GET", "http://app.example.test/app/cb?"+url.Values{"code": {"the-code"}, "state": {q.Get("state")}}.Encode(), nil)
	for _, c := range w.Result().Cookies() {
		cb.AddCookie(c)
	}
	if edit != nil {
		edit(cb)
	}
	w2 := httptest.NewRecorder()
	id, returnTo, err, handled := a.Authenticate(w2, cb)
	if handled {
		t.Fatal("the callback was handled as a start")
	}
	if c := w2.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("the state cookie is not cleared: %v", w2.Header()["Set-Cookie"])
	}
	if err != nil {
		return "", "", err
	}
	return id.Principal, returnTo, nil
}

func newFlow(t *testing.T, p *provider, claim string) *Authenticator {
	a, err := New(Config{Issuer: p.srv.URL, ClientID: "kerbgate", ClientSecret: "s", UsernameClaim: claim,
		CallbackPath: "/app/cb", Realm: "EXAMPLE.TEST", CookieKeys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func codeOf(err error) reason.Code {
	if err == nil {
		return ""
	}
	return reason.Of(err).Code
}

// A sign-in: the name from the configured claim, back to the page first asked for.
func TestFlowSignsIn(t *testing.T) {
	p := newProvider(t)
	p.claims = map[string]any{"upn": "alice@example.test"}
	name, returnTo, err := p.run(t, newFlow(t, p, "upn"), nil)
	if err != nil || name != "alice@example.test" || returnTo != "/app/page?x=1" {
		t.Fatalf("got %q %q %v", name, returnTo, err)
	}
}

// What the provider's answers must satisfy, each refused with its reason.
func TestFlowRefusals(t *testing.T) {
	other := otherKey()
	for _, c := range []struct {
		name  string
		setup func(p *provider)
		edit  func(r *http.Request)
		want  reason.Code
		claim string
	}{
		{name: "state of another sign-in", want: reason.OIDCStateInvalid, edit: func(r *http.Request) {
			q := r.URL.Query()
			q.Set("state", "forged")
			r.URL.RawQuery = q.Encode()
		}},
		{name: "no state cookie", want: reason.OIDCStateInvalid, edit: func(r *http.Request) { r.Header.Del("Cookie") }},
		{name: "the provider's error", want: reason.OIDCTokenInvalid, edit: func(r *http.Request) { r.URL.RawQuery = "error=access_denied" }},
		{name: "wrong code (PKCE or code refused)", want: reason.OIDCTokenInvalid, edit: func(r *http.Request) {
			q := r.URL.Query()
			q.Set("code", "other")
			r.URL.RawQuery = q.Encode()
		}},
		{name: "ID token signed by another key", want: reason.OIDCTokenInvalid, setup: func(p *provider) { p.signWith = other }},
		{name: "ID token of another sign-in (nonce)", want: reason.OIDCTokenInvalid, setup: func(p *provider) { p.claims["nonce"] = "replayed" }},
		{name: "ID token for another client", want: reason.OIDCTokenInvalid, setup: func(p *provider) { p.claims["aud"] = "someone-else" }},
		{name: "expired ID token", want: reason.OIDCTokenInvalid, setup: func(p *provider) {
			p.claims["exp"] = time.Now().Add(-time.Hour).Unix()
		}},
		{name: "claim missing everywhere", want: reason.OIDCClaimMissing, claim: "employee_upn",
			setup: func(p *provider) { p.userinfo = map[string]any{"sub": "u-1"} }},
		{name: "UserInfo about another subject", want: reason.OIDCTokenInvalid, claim: "employee_upn",
			setup: func(p *provider) { p.userinfo = map[string]any{"sub": "u-2", "employee_upn": "mallory@example.test"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProvider(t)
			p.claims = map[string]any{"upn": "alice@example.test"}
			if c.setup != nil {
				c.setup(p)
			}
			claim := c.claim
			if claim == "" {
				claim = "upn"
			}
			name, _, err := p.run(t, newFlow(t, p, claim), c.edit)
			if got := codeOf(err); got != c.want {
				t.Errorf("got %q (%v, name %q), want %q", got, err, name, c.want)
			}
		})
	}
}

// A claim the ID token lacks is read from UserInfo when UserInfo is about the same
// subject.
func TestFlowReadsTheClaimFromUserInfo(t *testing.T) {
	p := newProvider(t)
	p.claims = map[string]any{}
	p.userinfo = map[string]any{"sub": "u-1", "employee_upn": "alice@example.test"}
	name, _, err := p.run(t, newFlow(t, p, "employee_upn"), nil)
	if err != nil || name != "alice@example.test" {
		t.Fatalf("got %q %v", name, err)
	}
}
