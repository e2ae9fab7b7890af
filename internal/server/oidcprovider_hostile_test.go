package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/testrealm"
)

// hostileMarkup is reflected in state (and nonce) by every authorization case: it
// must come back exactly in a redirect and never unescaped in an HTML body.
const hostileMarkup = `"><script>alert(1)</script>`

// hostileAnswer is kerbgate's final answer to one hostile request: the first
// response that is not a redirect within kerbgate (sso.example.test).
type hostileAnswer struct {
	status int
	loc    *url.URL // the Location of a redirect away from kerbgate, nil for none
	body   string
}

// params is the query of a redirect's Location, or its fragment's when the error
// travels there (response_type with a token, OIDC Core §3.2.2.6).
func (a hostileAnswer) params() url.Values {
	if a.loc == nil {
		return nil
	}
	if q := a.loc.Query(); q.Get("error") != "" || q.Get("code") != "" {
		return q
	}
	f, _ := url.ParseQuery(a.loc.Fragment)
	return f
}

// hostileClient follows redirects within kerbgate only, answering Negotiate with the
// tickets of ccache ("" for none).
func hostileClient(t testing.TB, ccache string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Transport: negotiateTransport{t: t, ccache: ccache}, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Hostname() != "sso.example.test" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

func hostileDo(t testing.TB, c *http.Client, req *http.Request) hostileAnswer {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := hostileAnswer{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode/100 == 3 {
		if l, err := resp.Location(); err == nil {
			a.loc = l
		}
	}
	return a
}

// TestOIDCProviderHostileBattery: hostile authorization, token and end-session
// requests against a running kerbgate (alice's real ticket where a sign-in is
// needed), each with its exact answer per RFC 6749 §4.1.2.1 / §5.2 and OIDC Core
// §3.1.2.6; none gets a 5xx, none is redirected to an unregistered URI, and no
// reflected markup appears unescaped.
func TestOIDCProviderHostileBattery(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	var meta struct {
		Token      string `json:"token_endpoint"`
		EndSession string `json:"end_session_endpoint"`
	}
	if err := rp.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	alice, bob := ticket(t, r, "alice"), ticket(t, r, "bob")
	v := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(v)

	authz := func(mod func(url.Values)) url.Values {
		q := url.Values{"client_id": {"rp"}, "response_type": {"code"}, "scope": {"openid profile"},
			"redirect_uri": {opRPCallback}, "state": {hostileMarkup}, "nonce": {hostileMarkup},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		if mod != nil {
			mod(q)
		}
		return q
	}
	// code signs alice in at client and returns the code of a good request.
	code := func(client string, mod func(url.Values)) string {
		cc := alice
		if client == "staff-rp" {
			cc = bob // alice is not in staff
		}
		t.Helper()
		q := authz(func(q url.Values) {
			q.Set("client_id", client)
			if mod != nil {
				mod(q)
			}
		})
		req, _ := http.NewRequest("GET", issuer+"/authorize?"+q.Encode(), nil)
		a := hostileDo(t, hostileClient(t, cc), req)
		if c := a.params().Get("code"); c != "" {
			return c
		}
		t.Fatalf("no code for %s: %d %v %s", client, a.status, a.loc, a.body)
		return ""
	}
	token := func(form url.Values, id, secret string) func(*testing.T) hostileAnswer {
		return func(t *testing.T) hostileAnswer {
			req, _ := http.NewRequest("POST", meta.Token, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if id != "" {
				req.SetBasicAuth(id, secret)
			}
			return hostileDo(t, http.DefaultClient, req)
		}
	}
	redeem := func(c string, mod func(url.Values)) url.Values {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {opRPCallback}, "code_verifier": {v}}
		if mod != nil {
			mod(f)
		}
		return f
	}
	authorizeAs := func(ccache string, mod func(url.Values)) func(*testing.T) hostileAnswer {
		return func(t *testing.T) hostileAnswer {
			req, _ := http.NewRequest("GET", issuer+"/authorize?"+authz(mod).Encode(), nil)
			return hostileDo(t, hostileClient(t, ccache), req)
		}
	}
	get := func(u string) func(*testing.T) hostileAnswer {
		return func(t *testing.T) hostileAnswer {
			req, _ := http.NewRequest("GET", u, nil)
			return hostileDo(t, hostileClient(t, ""), req)
		}
	}

	// A real ID token for rp, and forgeries of it: alg none, and signed by a key
	// kerbgate never published.
	tok, err := rp.oauth.Exchange(ctx, code("rp", nil), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if _, err := rp.verifier.Verify(ctx, idToken); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(idToken, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreignSigned := b64([]byte(`{"alg":"ES256","kid":"foreign","typ":"JWT"}`)) + "." + parts[1]
	digest := sha256.Sum256([]byte(foreignSigned))
	sr, ss, _ := ecdsa.Sign(rand.Reader, foreignKey, digest[:])
	sig := make([]byte, 64)
	sr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	foreignSigned += "." + b64(sig)

	// Codes spent before the battery: one redeemed already, one left to expire.
	spent := code("rp", nil)
	if _, err := rp.oauth.Exchange(ctx, spent, oauth2.VerifierOption(v)); err != nil {
		t.Fatal(err)
	}
	expiring, expiringAt := code("rp", nil), time.Now()

	big := strings.Repeat("A", 64<<10)
	endSession := func(q url.Values) string { return meta.EndSession + "?" + q.Encode() }

	// Expectations.
	noRedirect := func(status int) func(*testing.T, hostileAnswer) {
		return func(t *testing.T, a hostileAnswer) {
			if a.status != status || a.loc != nil {
				t.Errorf("got %d %v, want %d and no redirect\n%.300s", a.status, a.loc, status, a.body)
			}
		}
	}
	redirectError := func(code string) func(*testing.T, hostileAnswer) {
		return func(t *testing.T, a hostileAnswer) {
			p := a.params()
			if a.loc == nil || !strings.HasPrefix(a.loc.String(), opRPCallback+"?") && !strings.HasPrefix(a.loc.String(), opRPCallback+"#") ||
				p.Get("error") != code || p.Get("state") != hostileMarkup || p.Get("code") != "" {
				t.Errorf("got %d %v, want %s at %s with the state\n%.300s", a.status, a.loc, code, opRPCallback, a.body)
			}
		}
	}
	gotCode := func(t *testing.T, a hostileAnswer) {
		p := a.params()
		if a.loc == nil || !strings.HasPrefix(a.loc.String(), opRPCallback+"?") || p.Get("code") == "" || p.Get("state") != hostileMarkup {
			t.Errorf("got %d %v, want a code at %s with the state", a.status, a.loc, opRPCallback)
		}
	}
	tokenError := func(status int, code string) func(*testing.T, hostileAnswer) {
		return func(t *testing.T, a hostileAnswer) {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(a.body), &e); a.status != status || err != nil || e.Error != code {
				t.Errorf("got %d %s, want %d error %s", a.status, a.body, status, code)
			}
		}
	}
	notTo := func(status int, unwanted string) func(*testing.T, hostileAnswer) {
		return func(t *testing.T, a hostileAnswer) {
			if a.status != status || a.loc != nil && strings.HasPrefix(a.loc.String(), unwanted) {
				t.Errorf("got %d %v, want %d and not %s\n%.300s", a.status, a.loc, status, unwanted, a.body)
			}
		}
	}

	set := func(k, val string) func(url.Values) { return func(q url.Values) { q.Set(k, val) } }
	cases := []struct {
		name   string
		do     func(*testing.T) hostileAnswer
		expect func(*testing.T, hostileAnswer)
	}{
		// redirect_uri variants: none is the registered URI, none is redirected to.
		{"redirect_uri host case", authorizeAs(alice, set("redirect_uri", "http://APP.example.test:9/callback")), noRedirect(400)},
		{"redirect_uri path case", authorizeAs(alice, set("redirect_uri", "http://app.example.test:9/Callback")), noRedirect(400)},
		{"redirect_uri trailing slash", authorizeAs(alice, set("redirect_uri", opRPCallback+"/")), noRedirect(400)},
		{"redirect_uri extra query", authorizeAs(alice, set("redirect_uri", opRPCallback+"?next=http://evil.example.test/")), noRedirect(400)},
		{"redirect_uri userinfo", authorizeAs(alice, set("redirect_uri", "http://evil.example.test@app.example.test:9/callback")), noRedirect(400)},
		{"redirect_uri percent-encoded", authorizeAs(alice, set("redirect_uri", "http://app.example.test:9/%63allback")), noRedirect(400)},
		{"redirect_uri encoded traversal", authorizeAs(alice, set("redirect_uri", opRPCallback+"%2F..%2F..%2Fevil")), noRedirect(400)},
		{"redirect_uri fragment", authorizeAs(alice, set("redirect_uri", opRPCallback+"#x")), noRedirect(400)},
		{"redirect_uri other host", authorizeAs(alice, set("redirect_uri", "http://evil.example.test/callback")), noRedirect(400)},
		{"redirect_uri missing", authorizeAs(alice, func(q url.Values) { q.Del("redirect_uri") }), noRedirect(400)},
		{"client_id unknown", authorizeAs(alice, set("client_id", "nobody")), noRedirect(400)},
		// PKCE.
		{"PKCE missing at a public client", authorizeAs(alice, func(q url.Values) {
			q.Set("client_id", "spa")
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		}), redirectError("invalid_request")},
		{"PKCE plain", authorizeAs(alice, func(q url.Values) { q.Set("code_challenge_method", "plain"); q.Set("code_challenge", v) }), redirectError("invalid_request")},
		{"PKCE unknown method", authorizeAs(alice, set("code_challenge_method", "S512")), redirectError("invalid_request")},
		// response types other than code, and scopes.
		{"response_type token", authorizeAs(alice, set("response_type", "token")), redirectError("unsupported_response_type")},
		{"response_type id_token", authorizeAs(alice, set("response_type", "id_token")), redirectError("unsupported_response_type")},
		{"response_type missing", authorizeAs(alice, func(q url.Values) { q.Del("response_type") }), redirectError("invalid_request")},
		{"scope unknown (ignored, OIDC Core §3.1.2.1)", authorizeAs(alice, set("scope", "openid admin:all")), gotCode},
		{"scope without openid", authorizeAs(alice, set("scope", "profile")), redirectError("invalid_scope")},
		// oversized parameters.
		{"oversized state", authorizeAs(alice, set("state", big)), noRedirect(http.StatusRequestHeaderFieldsTooLarge)},
		{"oversized redirect_uri", authorizeAs(alice, set("redirect_uri", opRPCallback+"?"+big[:6000])), noRedirect(400)},
		{"oversized scope", authorizeAs(alice, set("scope", "openid "+big[:6000])), gotCode},
		// markup: reflected exactly in a redirect, escaped in a page.
		{"markup in state and nonce, signed in", authorizeAs(alice, nil), gotCode},
		{"markup in state, unregistered redirect_uri", authorizeAs(alice, set("redirect_uri", "http://evil.example.test/<script>")), noRedirect(400)},
		{"markup in state, prompt=none without a ticket", authorizeAs("", set("prompt", "none")), noRedirect(401)},
		// token endpoint (RFC 6749 §5.2).
		{"code reused", token(redeem(spent, nil), "rp", demoSecret), tokenError(400, "invalid_grant")},
		{"code never issued", token(redeem("not-a-code", nil), "rp", demoSecret), tokenError(400, "invalid_grant")},
		{"code from another client", func(t *testing.T) hostileAnswer {
			return token(redeem(code("staff-rp", nil), nil), "rp", demoSecret)(t)
		}, tokenError(400, "invalid_grant")},
		{"wrong client secret", func(t *testing.T) hostileAnswer {
			return token(redeem(code("rp", nil), nil), "rp", "wrong-secret")(t)
		}, tokenError(401, "invalid_client")},
		{"no client authentication", func(t *testing.T) hostileAnswer {
			return token(redeem(code("rp", nil), func(f url.Values) { f.Set("client_id", "rp") }), "", "")(t)
		}, tokenError(401, "invalid_client")},
		{"code_verifier missing", func(t *testing.T) hostileAnswer {
			return token(redeem(code("rp", nil), func(f url.Values) { f.Del("code_verifier") }), "rp", demoSecret)(t)
		}, tokenError(400, "invalid_request")},
		{"code_verifier wrong", func(t *testing.T) hostileAnswer {
			return token(redeem(code("rp", nil), set("code_verifier", oauth2.GenerateVerifier())), "rp", demoSecret)(t)
		}, tokenError(400, "invalid_grant")},
		{"redirect_uri differs at the token endpoint", func(t *testing.T) hostileAnswer {
			return token(redeem(code("rp", nil), set("redirect_uri", opRPCallback+"/")), "rp", demoSecret)(t)
		}, tokenError(400, "invalid_grant")},
		{"grant_type password", token(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "rp", demoSecret), tokenError(400, "unsupported_grant_type")},
		{"oversized code", token(redeem(big, nil), "rp", demoSecret), tokenError(400, "invalid_grant")},
		{"refresh token forged", token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"fam.forged"}}, "rp", demoSecret), tokenError(400, "invalid_grant")},
		// end_session (RP-initiated logout): never to an unregistered URI.
		{"post_logout_redirect_uri unregistered", get(endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://evil.example.test/"}})), notTo(400, "http://evil")},
		{"post_logout_redirect_uri trailing slash", get(endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {opRPLoggedOut + "/"}})), notTo(400, opRPLoggedOut)},
		{"post_logout_redirect_uri without a hint", get(endSession(url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {"http://evil.example.test/"}})), notTo(400, "http://evil")},
		{"id_token_hint alg none", get(endSession(url.Values{"id_token_hint": {algNone}, "post_logout_redirect_uri": {opRPLoggedOut}, "state": {hostileMarkup}})), notTo(400, opRPLoggedOut)},
		{"id_token_hint foreign key", get(endSession(url.Values{"id_token_hint": {foreignSigned}, "post_logout_redirect_uri": {opRPLoggedOut}, "state": {hostileMarkup}})), notTo(400, opRPLoggedOut)},
		{"end_session markup in state", get(endSession(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {opRPLoggedOut}, "state": {hostileMarkup}})), func(t *testing.T, a hostileAnswer) {
			if a.status != 302 || a.loc == nil || !strings.HasPrefix(a.loc.String(), opRPLoggedOut) || a.loc.Query().Get("state") != hostileMarkup {
				t.Errorf("got %d %v, want %s with the state", a.status, a.loc, opRPLoggedOut)
			}
		}},
		// last: a code left more than its minute.
		{"code expired", func(t *testing.T) hostileAnswer {
			time.Sleep(time.Until(expiringAt.Add(65 * time.Second)))
			return token(redeem(expiring, nil), "rp", demoSecret)(t)
		}, tokenError(400, "invalid_grant")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.do(t)
			if a.status >= 500 {
				t.Errorf("5xx: %d %.300s", a.status, a.body)
			}
			if a.loc != nil && !strings.HasPrefix(a.loc.String(), opRPCallback+"?") && !strings.HasPrefix(a.loc.String(), opRPCallback+"#") &&
				!strings.HasPrefix(a.loc.String(), opRPLoggedOut+"?") && !strings.HasPrefix(a.loc.String(), opRPLoggedOut+"#") {
				t.Errorf("redirected to an unregistered URI: %s", a.loc)
			}
			if strings.Contains(a.body, "<script>alert(1)</script>") || strings.Contains(a.body, "<script>") {
				t.Errorf("markup unescaped in the body: %.500s", a.body)
			}
			c.expect(t, a)
		})
	}
	if len(cases) < 30 {
		t.Fatalf("%d cases, want at least 30", len(cases))
	}
}
