package server

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/testrealm"
)

// The OpenID Provider's sign-in session as a relying party sees it: auth_time,
// max_age, prompt=login, and RP-initiated logout ending the sign-in's tokens.

// offsetClock is the real clock moved forward by what a test adds: sessions age
// without the test sleeping (within the acceptor's clock skew).
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// challengeCounter counts kerbgate's Negotiate challenges (401 Negotiate) a browser
// received: each is a fresh Kerberos sign-in when the browser holds a ticket.
type challengeCounter struct {
	n    *atomic.Int64
	base http.RoundTripper
}

func (c challengeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate") {
		c.n.Add(1)
	}
	return resp, err
}

// idClaims are the ID token claims these tests read.
type idClaims struct {
	Sub      string   `json:"sub"`
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	SID      string   `json:"sid"`
}

// codeFlow runs one authorization (with extra parameters) in b and redeems the
// code; it returns the tokens and the verified ID token's claims.
func codeFlow(t *testing.T, ctx context.Context, rp *opRP, b *http.Client, extra ...oauth2.AuthCodeOption) (*oauth2.Token, idClaims) {
	t.Helper()
	v := oauth2.GenerateVerifier()
	q := authorize(t, b, rp.oauth.AuthCodeURL("s", append(extra, oauth2.S256ChallengeOption(v))...))
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	return tok, verifiedClaims(t, ctx, rp, tok)
}

func verifiedClaims(t *testing.T, ctx context.Context, rp *opRP, tok *oauth2.Token) idClaims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func param(k, v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam(k, v) }

// loginRequiredPage follows kerbgate's prompt=none challenge page to where it sends a
// browser without a ticket, and returns that URL's query.
func loginRequiredPage(t *testing.T, b *http.Client, authURL string) url.Values {
	t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusUnauthorized || m == nil {
		t.Fatalf("prompt=none: %d %s (Location %q)", resp.StatusCode, page, resp.Header.Get("Location"))
	}
	next, err := url.Parse(html.UnescapeString(string(m[1])))
	if err != nil || !strings.HasPrefix(next.String(), opRPCallback) {
		t.Fatalf("the challenge page leads to %q", m[1])
	}
	return next.Query()
}

// TestOIDCProviderMaxAgeAndPromptLoginForceAFreshNegotiate: auth_time is the time of
// the Negotiate that signed the browser in, however much later a token is issued
// from the OIDC browser session; prompt=login and a session older than max_age are
// not reused (the browser gets a Negotiate challenge and the new sign-in's time is
// the new auth_time); prompt=none with a session too old for max_age, in a browser
// without a ticket, gets login_required.
func TestOIDCProviderMaxAgeAndPromptLoginForceAFreshNegotiate(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	clock := &offsetClock{}
	g := startGatewayWith(t, cfg, Options{Now: clock.Now})
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	alice := ticket(t, r, "alice")
	var challenges atomic.Int64
	b := opBrowser(t, alice)
	b.Transport = negotiateTransport{t: t, ccache: alice, base: challengeCounter{n: &challenges, base: http.DefaultTransport}}
	signIn := func(what string, fresh bool, extra ...oauth2.AuthCodeOption) int64 {
		t.Helper()
		before := challenges.Load()
		_, c := codeFlow(t, ctx, rp, b, extra...)
		if negotiated := challenges.Load() > before; negotiated != fresh {
			t.Errorf("%s: fresh Negotiate %v, want %v", what, negotiated, fresh)
		}
		if now := clock.Now().Unix(); fresh && (c.AuthTime < now-5 || c.AuthTime > now+1) {
			t.Errorf("%s: auth_time %d, want about now (%d)", what, c.AuthTime, now)
		}
		return c.AuthTime
	}

	t1 := signIn("first sign-in", true)
	clock.advance(30 * time.Second)
	if t2 := signIn("riding the session 30 s later", false); t2 != t1 {
		t.Errorf("auth_time %d from the session, want the Negotiate's %d", t2, t1)
	}
	clock.advance(30 * time.Second)
	t3 := signIn("prompt=login", true, param("prompt", "login"))
	if t3 < t1+60 {
		t.Errorf("prompt=login: auth_time %d not after the first sign-in's %d", t3, t1)
	}
	if t4 := signIn("max_age=3600 with a 0 s old session", false, param("max_age", "3600")); t4 != t3 {
		t.Errorf("max_age=3600: auth_time %d, want the session's %d", t4, t3)
	}
	clock.advance(90 * time.Second)
	t5 := signIn("max_age=60 with a 90 s old session", true, param("max_age", "60"))
	if t5 < t3+90 {
		t.Errorf("max_age=60: auth_time %d not after %d", t5, t3+90)
	}
	if t6 := signIn("max_age=60 with a fresh session", false, param("max_age", "60")); t6 != t5 {
		t.Errorf("max_age=60 with a fresh session: auth_time %d, want %d", t6, t5)
	}

	// prompt=none with a session too old for max_age, in a browser that holds the
	// session's cookie but no ticket: login_required.
	clock.advance(90 * time.Second)
	noTicket := *b
	noTicket.Transport = negotiateTransport{t: t, base: http.DefaultTransport}
	v := oauth2.GenerateVerifier()
	q := loginRequiredPage(t, &noTicket, rp.oauth.AuthCodeURL("s-old", oauth2.S256ChallengeOption(v),
		param("prompt", "none"), param("max_age", "60")))
	if q.Get("error") != "login_required" || q.Get("state") != "s-old" || q.Get("code") != "" {
		t.Errorf("prompt=none, max_age=60, session 90 s old, no ticket: %v", q)
	}
	// The same browser with a younger max_age bound rides the session silently.
	if q := authorize(t, &noTicket, rp.oauth.AuthCodeURL("s-ok", oauth2.S256ChallengeOption(v),
		param("prompt", "none"), param("max_age", "3600"))); q.Get("code") == "" {
		t.Errorf("prompt=none, max_age=3600: %v", q)
	}
	if n := g.counterWith(t, "kerbgate_oidc_authorizations_total", map[string]string{"client": "rp", "outcome": "oidc_login_required"}); n != 1 {
		t.Errorf("authorizations{rp, oidc_login_required} = %v, want 1", n)
	}
}

// TestOIDCProviderEndSessionRevokesTheSignInsTokens: RP-initiated logout ends the
// kerbgate sign-in of the browser: its OIDC browser session, and every access and
// refresh token issued in it, to any client. Another browser's sign-in of the same
// user lives on; it ends too when its ID token is the hint of a logout sent from a
// browser that no longer holds its session.
func TestOIDCProviderEndSessionRevokesTheSignInsTokens(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
	spa := newOPRP(t, ctx, issuer, "spa", "")
	alice := ticket(t, r, "alice")
	b := opBrowser(t, alice)

	tokRP, claims := codeFlow(t, ctx, rp, b)
	tokSPA, _ := codeFlow(t, ctx, spa, b) // rides the same browser session
	if claims.SID == "" {
		t.Error("the ID token has no sid")
	}
	other := opBrowser(t, alice) // the same user in another browser
	tokOther, _ := codeFlow(t, ctx, rp, other)

	meta := discovery(t, rp)
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	raw, _ := tokRP.Extra("id_token").(string)
	resp, err := noFollow.Get(meta.EndSession + "?" + url.Values{"id_token_hint": {raw},
		"post_logout_redirect_uri": {opRPLoggedOut}, "state": {"bye"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(l, opRPLoggedOut) {
		t.Fatalf("end_session: %d %q", resp.StatusCode, l)
	}

	refresh := func(rt string) error {
		_, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		return err
	}
	if err := refresh(tokRP.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after logout: %v, want invalid_grant", err)
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tokRP)); err == nil {
		t.Error("the signed-out access token still reads userinfo")
	}
	// RFC 6750 §3: 401 with the Bearer challenge naming invalid_token.
	req, _ := http.NewRequest("GET", rp.provider.UserInfoEndpoint(), nil)
	req.Header.Set("Authorization", "Bearer "+tokRP.AccessToken)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("userinfo after logout: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if got := introspect(t, meta.Introspection, tokRP.AccessToken, func(req *http.Request) { req.SetBasicAuth("rp", demoSecret) }); got["active"] != false {
		t.Errorf("introspection after logout: %v", got)
	}
	if _, err := spa.provider.UserInfo(ctx, oauth2.StaticTokenSource(tokSPA)); err == nil {
		t.Error("another client's access token from the signed-out session still reads userinfo")
	}
	// The browser's kerbgate session is gone: prompt=none without a ticket gets the
	// challenge page and login_required.
	noTicket := *b
	noTicket.Transport = negotiateTransport{t: t}
	v := oauth2.GenerateVerifier()
	if q := loginRequiredPage(t, &noTicket, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v), param("prompt", "none"))); q.Get("error") != "login_required" {
		t.Errorf("prompt=none after logout: %v", q)
	}

	// The other browser's sign-in lives on.
	next, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tokOther.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("the other browser's refresh token: %v", err)
	}
	// A logout with its ID token as the hint, from a browser without its session
	// (the session cookie expired, or the RP sends the user through another
	// browser), ends that sign-in's tokens too.
	rawOther, _ := tokOther.Extra("id_token").(string)
	resp, err = http.Get(meta.EndSession + "?" + url.Values{"id_token_hint": {rawOther}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := refresh(next.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after a logout by hint: %v, want invalid_grant", err)
	}
	// And that browser's session with it: its next authorization needs a Negotiate.
	noTicketOther := *other
	noTicketOther.Transport = negotiateTransport{t: t}
	if q := loginRequiredPage(t, &noTicketOther, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v), param("prompt", "none"))); q.Get("error") != "login_required" {
		t.Errorf("prompt=none in the other browser after its logout: %v", q)
	}

	if n := g.counterWith(t, "kerbgate_oidc_logouts_total", map[string]string{"client": "rp", "outcome": "signed_out"}); n != 2 {
		t.Errorf("logouts{rp, signed_out} = %v, want 2", n)
	}
	if !regexp.MustCompile(`"msg":"oidc sign-out".*"client":"rp".*"user":"alice@EXAMPLE.TEST"`).MatchString(g.logs.String()) {
		t.Error("no sign-out log line with the client and the user")
	}
	if !regexp.MustCompile(`"reason":"oidc_invalid_grant".*"cause":"signed_out".*"client":"rp".*"user":"alice@EXAMPLE.TEST"`).MatchString(g.logs.String()) {
		t.Error("no refusal log line for the refresh after logout, with its cause, client and user")
	}
	if !regexp.MustCompile(`"reason":"oidc_invalid_token".*"cause":"signed_out".*"client":"rp".*"user":"alice@EXAMPLE.TEST".*"stage":"userinfo"`).MatchString(g.logs.String()) {
		t.Error("no refusal log line for userinfo after logout, with its cause, client and user")
	}
}

// opMeta is the part of discovery these tests use.
type opMeta struct {
	Introspection        string   `json:"introspection_endpoint"`
	Revocation           string   `json:"revocation_endpoint"`
	EndSession           string   `json:"end_session_endpoint"`
	IntrospectionMethods []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
	ACRValues            []string `json:"acr_values_supported"`
	ResponseTypes        []string `json:"response_types_supported"`
	GrantTypes           []string `json:"grant_types_supported"`
}

func discovery(t *testing.T, rp *opRP) opMeta {
	t.Helper()
	var m opMeta
	if err := rp.provider.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// introspect posts token to the introspection endpoint, authenticated by auth, and
// returns the decoded answer.
func introspect(t *testing.T, endpoint, token string, auth func(*http.Request)) map[string]any {
	t.Helper()
	status, out, _ := postForm(t, endpoint, url.Values{"token": {token}}, auth)
	if status != http.StatusOK {
		t.Errorf("introspection: %d %v", status, out)
	}
	return out
}

// postForm posts form to endpoint (auth adds the client's credentials) and returns
// the status, the JSON answer and the headers. A body that is not JSON fails t.
func postForm(t *testing.T, endpoint string, form url.Values, auth func(*http.Request)) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(strings.TrimSpace(string(body))) > 0 && strings.TrimSpace(string(body)) != "null" {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Errorf("%s answered %d with %q (Content-Type %q), not JSON", endpoint, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
	return resp.StatusCode, out, resp.Header
}

// counterWith sums the counter name over the series carrying every label given.
func (g *gateway) counterWith(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				total += float64(h.GetSampleCount())
			} else {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
