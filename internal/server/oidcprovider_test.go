package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// kerbgate as an OpenID Provider, driven by real relying-party libraries
// (coreos/go-oidc and golang.org/x/oauth2) with real Kerberos tickets.

// ticket kinits user and gets the gateway's service ticket, as a signed-in Windows
// browser holds.
func ticket(t testing.TB, r *testrealm.Realm, user string) string {
	cc := r.Kinit(t, user)
	r.Kvno(t, cc, testrealm.GatewaySPN)
	return cc
}

const (
	opRPCallback  = "http://app.example.test:9/callback"
	opRPLoggedOut = "http://app.example.test:9/logged-out"
)

// opConfig is handoffConfig plus an oidc_provider with a confidential client (rp,
// any domain user), a public one (spa) and a confidential one for staff only.
func opConfig(t *testing.T, r *testrealm.Realm) (*config.Config, string) {
	t.Helper()
	port := freePort(t)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Listen.Address = "127.0.0.1:" + strconv.Itoa(port)
	keys := filepath.Join(t.TempDir(), "oidc-keys.json")
	if _, err := signingkeys.Add(keys, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	dh, sh := secretHashes(t)
	issuer := "http://sso.example.test:" + strconv.Itoa(port) + "/oidc"
	cfg.OIDCProvider = config.OIDCProvider{
		Enabled: true, Issuer: issuer, SigningKeysFile: keys,
		IDTokenTTL: 5 * time.Minute, AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: time.Hour,
		Clients: []config.OIDCClient{
			{ID: "rp", SecretHash: dh, RedirectURIs: []string{opRPCallback}, RequireDirectory: true,
				Scopes: []string{"openid", "profile", "email", "offline_access"}, PostLogoutRedirectURIs: []string{opRPLoggedOut}},
			{ID: "spa", RedirectURIs: []string{opRPCallback}, RequireDirectory: true},
			{ID: "staff-rp", SecretHash: sh, RedirectURIs: []string{opRPCallback}, AllowedGroups: []string{"staff"}, RequireDirectory: true},
		},
	}
	return cfg, issuer
}

// negotiateTransport answers kerbgate's Negotiate challenges with the tickets of
// ccache, as a browser holding them does, without a prompt.
type negotiateTransport struct {
	t      testing.TB
	ccache string
	base   http.RoundTripper // http.DefaultTransport when nil
}

func (n negotiateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := n.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || n.ccache == "" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate") || req.Header.Get("Authorization") != "" {
		return resp, err
	}
	resp.Body.Close()
	h, err := tryNegotiateHeader(n.ccache, "HTTP/sso.example.test", initiator.Options{})
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", h)
	return base.RoundTrip(r2)
}

// browser is an HTTP client with a cookie jar holding the tickets of ccache ("" for
// none) that follows redirects until the relying party's callback.
func opBrowser(t testing.TB, ccache string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Transport: negotiateTransport{t: t, ccache: ccache}, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), opRPCallback) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// authorize opens authURL in the browser and returns the callback's query.
func authorize(t testing.TB, b *http.Client, authURL string) url.Values {
	t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), opRPCallback) {
		t.Fatalf("status %d, Location %q: not sent back to the relying party", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

type opRP struct {
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newOPRP(t testing.TB, ctx context.Context, issuer, clientID, secret string) *opRP {
	t.Helper()
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &opRP{
		provider: p,
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: opRPCallback, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

func TestOIDCProviderGoRelyingPartySignsAliceInSilently(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	b := opBrowser(t, ticket(t, r, "alice"))

	verifier := oauth2.GenerateVerifier()
	q := authorize(t, b, rp.oauth.AuthCodeURL("st-1", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub, Nonce, Name, Email, UPN string
		PreferredUsername            string   `json:"preferred_username"`
		AMR                          []string `json:"amr"`
		AuthTime                     int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	wantSub := signingkeys.Subject(issuer, r.SID(t, "alice"))
	if claims.Sub != wantSub || claims.Nonce != "n-1" || len(claims.AMR) != 1 || claims.AMR[0] != "kerberos" ||
		!strings.EqualFold(claims.PreferredUsername, "alice@example.test") || claims.AuthTime == 0 {
		t.Errorf("ID token claims %+v, want sub %s", claims, wantSub)
	}
	if strings.Contains(strings.ToLower(claims.Sub), "alice") {
		t.Errorf("sub %q carries the name", claims.Sub)
	}

	// userinfo with the access token.
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != wantSub {
		t.Errorf("userinfo sub %s, want %s", ui.Subject, wantSub)
	}

	// Introspection (RFC 7662): active for its own client, not for another.
	var meta struct {
		Introspection string `json:"introspection_endpoint"`
		EndSession    string `json:"end_session_endpoint"`
	}
	if err := rp.provider.Claims(&meta); err != nil || meta.Introspection == "" || meta.EndSession == "" {
		t.Fatalf("discovery lacks introspection or end_session: %+v %v", meta, err)
	}
	introspect := func(id, secret string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", meta.Introspection, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("introspection as %s: %d %v", id, resp.StatusCode, err)
		}
		return out
	}
	if got := introspect("rp", demoSecret); got["active"] != true || got["sub"] != wantSub || got["client_id"] != "rp" {
		t.Errorf("introspection by its client: %v", got)
	}
	if got := introspect("staff-rp", staffSecret); got["active"] != false || got["sub"] != nil {
		t.Errorf("introspection by another client: %v", got)
	}

	// The code redeems once.
	if _, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("second redemption: %v, want invalid_grant", err)
	}

	// A second sign-in rides kerbgate's OIDC browser session: no ticket needed.
	b.Transport = negotiateTransport{t: t}
	q = authorize(t, b, rp.oauth.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if q.Get("code") == "" {
		t.Fatalf("second sign-in: %v", q)
	}

	// RP-initiated sign-out ends kerbgate's OIDC session: prompt=none then needs a
	// new sign-in.
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(meta.EndSession + "?" + url.Values{"id_token_hint": {raw},
		"post_logout_redirect_uri": {"http://evil.example.test/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); strings.Contains(l, "evil") {
		t.Fatalf("end_session sent the browser to an unregistered URI: %s", l)
	}
	resp, err = noFollow.Get(meta.EndSession + "?" + url.Values{"id_token_hint": {raw},
		"post_logout_redirect_uri": {opRPLoggedOut}, "state": {"bye"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(l, opRPLoggedOut) || !strings.Contains(l, "state=bye") {
		t.Fatalf("end_session: %d %q", resp.StatusCode, l)
	}
	resp, err = b.Get(rp.oauth.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("prompt=none after sign-out (no ticket, no session): %d, want the challenge", resp.StatusCode)
	}
	_ = g
}

// Userinfo and introspection answer the claims of the scopes the relying party
// was granted (OIDC Core §5.3–5.4), not of every scope its client may ask for: rp
// may ask for profile and email; asking for openid alone, go-oidc gets sub alone
// at userinfo, and asking for openid and email, the email claims without the
// profile's. The user is a fresh one with a mail and a display name (the shared
// users have neither).
func TestOIDCProviderUserinfoAnswersTheGrantedScopes(t *testing.T) {
	r := testrealm.Require(t)
	user := r.TempUser(t, "scopes")
	r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: mail\nmail: %s@example.test\n-\nreplace: displayName\ndisplayName: Scopes Test\n", r.DN(t, user), user))
	cc := r.KinitTempUser(t, user)
	r.Kvno(t, cc, testrealm.GatewaySPN)
	cfg, issuer := opConfig(t, r)
	startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	var meta struct {
		Introspection string `json:"introspection_endpoint"`
	}
	if err := rp.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	b := opBrowser(t, cc)
	wantSub := signingkeys.Subject(issuer, r.SID(t, user))
	for i, tc := range []struct {
		scopes []string
		want   []string // the claims userinfo answers
	}{
		{[]string{oidc.ScopeOpenID}, []string{"sub"}},
		{[]string{oidc.ScopeOpenID, "email"}, []string{"email", "email_verified", "sub"}},
		{[]string{oidc.ScopeOpenID, "profile", "email"}, []string{"email", "email_verified", "name", "preferred_username", "sub", "upn"}},
	} {
		rp.oauth.Scopes = tc.scopes
		verifier := oauth2.GenerateVerifier()
		q := authorize(t, b, rp.oauth.AuthCodeURL("st", oidc.Nonce(fmt.Sprint(i)), oauth2.S256ChallengeOption(verifier)))
		tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := ui.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, tc.want) || claims["sub"] != wantSub {
			t.Errorf("scope %v: userinfo answered %v, want the claims %v", tc.scopes, claims, tc.want)
		}
		req, _ := http.NewRequest("POST", meta.Introspection, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rp", demoSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var in map[string]any
		err = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		_, email := claims["email"]
		_, name := claims["name"]
		if err != nil || in["active"] != true || in["scope"] != strings.Join(tc.scopes, " ") || (in["name"] != nil) != name ||
			(in["username"] != nil) != name || (in["email"] != nil) != email {
			t.Errorf("scope %v: introspection answered %v %v, want scope %q and the grant's claims", tc.scopes, in, err, strings.Join(tc.scopes, " "))
		}
	}
}

func TestOIDCProviderPublicClientNeedsPKCES256(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "spa", "")
	b := opBrowser(t, ticket(t, r, "alice"))

	q := authorize(t, b, rp.oauth.AuthCodeURL("s"))
	if q.Get("error") != "invalid_request" {
		t.Errorf("without PKCE: %v", q)
	}
	q = authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
		oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	if q.Get("error") != "invalid_request" {
		t.Errorf("plain PKCE: %v", q)
	}
	verifier := oauth2.GenerateVerifier()
	q = authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if q.Get("code") == "" {
		t.Fatalf("S256: %v", q)
	}
	if _, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-"+verifier)); err == nil {
		t.Error("a wrong verifier redeemed the code")
	}
}

func TestOIDCProviderRefusalsReachTheRelyingParty(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	staff := newOPRP(t, ctx, issuer, "staff-rp", staffSecret)
	v := oauth2.GenerateVerifier()

	// alice is not in staff: access_denied at the client's redirect URI.
	q := authorize(t, opBrowser(t, ticket(t, r, "alice")), staff.oauth.AuthCodeURL("s-a", oauth2.S256ChallengeOption(v)))
	if q.Get("error") != "access_denied" || q.Get("state") != "s-a" || q.Get("code") != "" {
		t.Errorf("alice at staff-rp: %v", q)
	}
	if !strings.Contains(g.logs.String(), "not_in_group") {
		t.Error("kerbgate's reason (not_in_group) is not in the log")
	}
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	// bob is, through a nested group.
	staff.oauth.Scopes = append(staff.oauth.Scopes, "offline_access") // not among its scopes: dropped
	q = authorize(t, opBrowser(t, ticket(t, r, "bob")), staff.oauth.AuthCodeURL("s-b", oauth2.S256ChallengeOption(v)))
	if q.Get("code") == "" {
		t.Fatalf("bob at staff-rp: %v", q)
	}
	staff.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_secret_post
	if tok, err := staff.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err != nil {
		t.Errorf("bob's code with client_secret_post: %v", err)
	} else if tok.RefreshToken != "" {
		t.Error("a refresh token for a client without offline_access")
	}
	// carol is disabled in the directory: refused though her ticket is valid
	// (obtained while she was enabled).
	carol := ticket(t, r, "carol")
	r.SambaTool(t, "user", "disable", "carol")
	t.Cleanup(func() { r.SambaTool(t, "user", "enable", "carol") })
	waitFor(t, 15*time.Second, "carol refused once the directory cache expired", func() bool {
		q = authorize(t, opBrowser(t, carol), rp.oauth.AuthCodeURL("s-c", oauth2.S256ChallengeOption(v)))
		return q.Get("error") == "access_denied" && q.Get("code") == ""
	})
	if !strings.Contains(g.logs.String(), "user_disabled") {
		t.Error("kerbgate's reason (user_disabled) is not in the log")
	}
	// prompt=none with a ticket but no session: signed in silently (the challenge is
	// answered at once).
	q = authorize(t, opBrowser(t, ticket(t, r, "alice")), rp.oauth.AuthCodeURL("s-t", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "none")))
	if q.Get("code") == "" {
		t.Errorf("prompt=none with a ticket: %v", q)
	}
	// prompt=none without a ticket or a session: the challenge's page sends the
	// browser on to the client with login_required.
	resp, err := opBrowser(t, "").Get(rp.oauth.AuthCodeURL("s-n", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "none")))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusUnauthorized || m == nil {
		t.Fatalf("prompt=none without a ticket: %d %s", resp.StatusCode, page)
	}
	next, _ := url.Parse(html.UnescapeString(string(m[1])))
	if !strings.HasPrefix(next.String(), opRPCallback) || next.Query().Get("error") != "login_required" || next.Query().Get("state") != "s-n" {
		t.Errorf("prompt=none without a ticket goes on to %s", next)
	}
	// An unregistered redirect URI never gets a redirect.
	c := rp.oauth
	c.RedirectURL = "http://evil.example.test/cb"
	resp, err = opBrowser(t, ticket(t, r, "alice")).Get(c.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); strings.Contains(l, "evil") {
		t.Errorf("sent to an unregistered redirect URI: %s", l)
	}
	// A wrong client secret is refused at the token endpoint.
	bad := newOPRP(t, ctx, issuer, "rp", "wrong-secret")
	bad.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	q = authorize(t, opBrowser(t, ticket(t, r, "alice")), bad.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if _, err := bad.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
}

// TestOIDCProviderApacheModAuthOpenIDCSignsAliceInSilently: a real relying party
// (Apache httpd with mod_auth_openidc) protects a page; headless Chromium holding
// alice's ticket opens it and lands on it with her claims, with no prompt. alice at
// a client for staff only gets access_denied at the relying party.
func TestOIDCProviderApacheModAuthOpenIDCSignsAliceInSilently(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	rpPort, staffPort, silentPort := freePort(t), freePort(t), freePort(t)
	cfg.OIDCProvider.Clients[0].RedirectURIs = []string{testrealm.OIDCRPRedirectURI(rpPort)}
	cfg.OIDCProvider.Clients[2].RedirectURIs = []string{testrealm.OIDCRPRedirectURI(staffPort)}
	silentClient := cfg.OIDCProvider.Clients[0]
	silentClient.ID, silentClient.RedirectURIs = "silent", []string{testrealm.OIDCRPRedirectURI(silentPort)}
	cfg.OIDCProvider.Clients = append(cfg.OIDCProvider.Clients, silentClient)
	startGateway(t, cfg)
	rp := r.StartOIDCRP(t, testrealm.OIDCRPOptions{Issuer: issuer, ClientID: "rp", ClientSecret: demoSecret, Port: rpPort})
	staff := r.StartOIDCRP(t, testrealm.OIDCRPOptions{Issuer: issuer, ClientID: "staff-rp", ClientSecret: staffSecret, Port: staffPort})

	alice := r.Kinit(t, "alice")
	page := chromium(t, r, alice, rp.Whoami)
	sub := signingkeys.Subject(issuer, r.SID(t, "alice"))
	for _, want := range []string{"sub=" + sub, "amr=kerberos", "upn=alice@"} {
		if !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
			t.Errorf("alice's page lacks %q:\n%s\nerror.log:\n%s", want, page, rp.ErrorLog())
		}
	}
	if !strings.Contains(strings.ToLower(page), "preferred_username=alice@example.test") {
		t.Errorf("alice's page:\n%s", page)
	}

	page = chromium(t, r, alice, staff.Whoami)
	if strings.Contains(page, "sub=") || !strings.Contains(page, "access_denied") {
		t.Errorf("alice at the staff-only client:\n%s\nerror.log:\n%s", page, staff.ErrorLog())
	}
	// prompt=none (silent or nothing): Chromium with a ticket lands on the page; with
	// none, mod_auth_openidc gets login_required and no prompt is shown.
	silent := r.StartOIDCRP(t, testrealm.OIDCRPOptions{Issuer: issuer, ClientID: "silent", ClientSecret: demoSecret, Port: silentPort, PromptNone: true})
	page = chromium(t, r, alice, silent.Whoami)
	if !strings.Contains(page, "sub="+sub) {
		t.Errorf("prompt=none with a ticket:\n%s\nerror.log:\n%s", page, silent.ErrorLog())
	}
	// Without a ticket the way back to the RP is the 401 page's meta refresh; headless
	// Chromium's --dump-dom can fire while that navigation is under way and print an
	// empty document. Only an empty dump is retried: any page it prints is judged.
	for try := 0; try < 3; try++ {
		if page = chromium(t, r, filepath.Join(t.TempDir(), "no-ccache"), silent.Whoami); strings.TrimSpace(page) != "" {
			break
		}
	}
	if strings.Contains(page, "sub=") || !strings.Contains(page, "login_required") {
		t.Errorf("prompt=none without a ticket:\n%s\nerror.log:\n%s", page, silent.ErrorLog())
	}
}

// roundRobin sends each request for sso.example.test to the next node of a farm, in
// turn: no step of a sign-in finds the node that served the step before.
type roundRobin struct {
	ports []int
	next  *atomic.Int64
	base  http.RoundTripper
}

func (rr roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == "sso.example.test" {
		r2 := req.Clone(req.Context())
		r2.URL.Host = "sso.example.test:" + strconv.Itoa(rr.ports[int(rr.next.Add(1))%len(rr.ports)])
		r2.Host = req.URL.Host // the issuer's name, as a balancer passes it on
		req = r2
	}
	return rr.base.RoundTrip(req)
}

// TestOIDCProviderFarmServesEachStepOnAnotherNode: two nodes sharing Redis, the
// cookie keys and the signing keys; authorize, login, callback, token and userinfo
// each land on the other node, and the code still redeems once. An access token
// revoked on one node, or whose sign-in was ended there, is refused by the other
// at once.
func TestOIDCProviderFarmServesEachStepOnAnotherNode(t *testing.T) {
	r := testrealm.Require(t)
	redis := redistest.Start(t, redistest.Options{})
	cfgA, issuer := opConfig(t, r)
	cfgA = withRedis(cfgA, redis)
	cfgB := *cfgA
	cfgB.Listen.Address = "127.0.0.1:0"
	a := startGateway(t, cfgA)
	b := startGateway(t, &cfgB)
	rr := roundRobin{ports: []int{a.port, b.port}, next: &atomic.Int64{}, base: http.DefaultTransport}

	back := &http.Client{Transport: roundRobin{ports: rr.ports, next: rr.next, base: http.DefaultTransport}}
	ctx := oidc.ClientContext(context.Background(), back)
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	br := opBrowser(t, ticket(t, r, "alice"))
	br.Transport = negotiateTransport{t: t, ccache: br.Transport.(negotiateTransport).ccache, base: rr}

	v := oauth2.GenerateVerifier()
	q := authorize(t, br, rp.oauth.AuthCodeURL("st", oidc.Nonce("n"), oauth2.S256ChallengeOption(v)))
	if q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := rp.verifier.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // userinfo on both nodes
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ { // the code is spent on both nodes
		if _, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil {
			t.Fatalf("code redeemed again (%d)", i)
		}
	}

	// Revocation on one node is seen by the other at the next use: no node keeps
	// an answer (the access token is self-contained; its liveness is read from
	// Redis at every use).
	node := func(g *gateway, path string) string {
		return "http://sso.example.test:" + strconv.Itoa(g.port) + "/oidc" + path
	}
	asRP := func(req *http.Request) { req.SetBasicAuth("rp", demoSecret) }
	userinfoAt := func(g *gateway, access string) *http.Response {
		req, _ := http.NewRequest("GET", node(g, "/userinfo"), nil)
		req.Header.Set("Authorization", "Bearer "+access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if got := introspect(t, node(b, "/oauth/introspect"), tok.AccessToken, asRP); got["active"] != true {
		t.Fatalf("introspection on node 2 before the revocation: %v", got)
	}
	if status, out, _ := postForm(t, node(a, "/revoke"), url.Values{"token": {tok.AccessToken}}, asRP); status != http.StatusOK {
		t.Fatalf("revocation on node 1: %d %v", status, out)
	}
	if resp := userinfoAt(b, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("userinfo on node 2 after a revocation on node 1: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if got := introspect(t, node(b, "/oauth/introspect"), tok.AccessToken, asRP); got["active"] != false {
		t.Errorf("introspection on node 2 after a revocation on node 1: %v", got)
	}
	if !regexp.MustCompile(`"reason":"oidc_invalid_token".*"cause":"revoked".*"stage":"userinfo"`).MatchString(b.logs.String()) {
		t.Error("node 2 did not log the revoked token's refusal")
	}

	// The same for end_session: a sign-in ended on node 2 ends its tokens on node 1.
	v = oauth2.GenerateVerifier()
	q = authorize(t, br, rp.oauth.AuthCodeURL("st2", oidc.Nonce("n2"), oauth2.S256ChallengeOption(v)))
	tok2, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if resp := userinfoAt(a, tok2.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo on node 1: %d", resp.StatusCode)
	}
	hint, _ := tok2.Extra("id_token").(string)
	resp, err := http.Get(node(b, "/end_session?") + url.Values{"id_token_hint": {hint}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp := userinfoAt(a, tok2.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo on node 1 after end_session on node 2: %d", resp.StatusCode)
	}
	if !strings.Contains(a.logs.String(), "oidc sign-in") && !strings.Contains(b.logs.String(), "oidc sign-in") {
		t.Error("no node logged the sign-in")
	}
}

// TestOIDCProviderRefreshTokensRotateAndReuseRevokesTheFamily: offline_access gives a
// refresh token; each use returns the next one; using an old one again revokes the
// family (its refresh and access tokens); revocation ends a family too.
func TestOIDCProviderRefreshTokensRotateAndReuseRevokesTheFamily(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
	b := opBrowser(t, ticket(t, r, "alice"))
	signIn := func() *oauth2.Token {
		t.Helper()
		v := oauth2.GenerateVerifier()
		q := authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
		tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		return tok
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}

	tok1 := signIn()
	tok2, err := refresh(tok1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok1.RefreshToken || tok2.AccessToken == tok1.AccessToken {
		t.Fatalf("refresh did not rotate: %q -> %q", tok1.RefreshToken, tok2.RefreshToken)
	}
	if raw, _ := tok2.Extra("id_token").(string); raw != "" {
		if _, err := rp.verifier.Verify(ctx, raw); err != nil {
			t.Errorf("refreshed ID token: %v", err)
		}
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", err)
	}
	// tok1's refresh token again: reuse. It fails, and so does the whole family.
	if _, err := refresh(tok1.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := refresh(tok2.RefreshToken); err == nil {
		t.Error("the family's newest refresh token still works after a reuse")
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Error("the family's access token still works after a reuse")
	}
	if !strings.Contains(g.logs.String(), "refresh_token_reused") {
		t.Error("no refresh_token_reused in the log")
	}

	// Revocation (RFC 7009) of a refresh token ends its family.
	var meta struct {
		Revocation string `json:"revocation_endpoint"`
	}
	if err := rp.provider.Claims(&meta); err != nil || meta.Revocation == "" {
		t.Fatalf("no revocation endpoint: %v", err)
	}
	tok3 := signIn()
	req, _ := http.NewRequest("POST", meta.Revocation, strings.NewReader(url.Values{"token": {tok3.RefreshToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", demoSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revocation: %d %s", resp.StatusCode, body)
	}
	if _, err := refresh(tok3.RefreshToken); err == nil {
		t.Error("a revoked refresh token still works")
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok3)); err == nil {
		t.Error("the revoked family's access token still works")
	}
}

// TestOIDCProviderHostileRequests: a forged login id, a made-up callback id and a
// code presented by another client get nothing.
func TestOIDCProviderHostileRequests(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	alice := ticket(t, r, "alice")
	v := oauth2.GenerateVerifier()

	// Record the login URL the browser is sent through: the login step answers
	// with the code itself, without a hop through the library's callback.
	var login string
	b := opBrowser(t, alice)
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		switch {
		case strings.Contains(req.URL.Path, "/oidc/login"):
			login = req.URL.String()
		case strings.Contains(req.URL.Path, "/authorize/callback"):
			t.Errorf("sent through the library's callback: %s", req.URL)
		case strings.HasPrefix(req.URL.String(), opRPCallback):
			return http.ErrUseLastResponse
		}
		return nil
	}
	q := authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if q.Get("code") == "" || login == "" {
		t.Fatalf("callback %v, login %q", q, login)
	}

	// The library's callback gives no code for an id that is not a signed-in
	// request (made up, or the code itself).
	fresh := opBrowser(t, "")
	fresh.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, id := range []string{"made-up-0123456789012345678901234567890123", q.Get("code")} {
		resp, err := fresh.Get(issuer + "/authorize/callback?id=" + url.QueryEscape(id))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if l := resp.Header.Get("Location"); strings.Contains(l, "code=") {
			t.Errorf("callback with id %.12s… gave a code: %s", id, l)
		}
	}

	// A login id whose sealed request was altered (another redirect URI, state…) is
	// refused before any sign-in.
	u, _ := url.Parse(login)
	id := u.Query().Get("id")
	dot := strings.LastIndexByte(id, '.')
	forged := "eyJjIjoicnAiLCJyIjoiaHR0cDovL2V2aWwuZXhhbXBsZS50ZXN0L2NiIn0" + id[dot:]
	qv := u.Query()
	qv.Set("id", forged)
	u.RawQuery = qv.Encode()
	resp, err := opBrowser(t, alice).Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(resp.Header.Get("Location"), "evil") {
		t.Errorf("forged login id: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Another client presenting rp's code gets invalid_grant.
	staff := newOPRP(t, ctx, issuer, "staff-rp", staffSecret)
	staff.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if _, err := staff.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("rp's code redeemed by staff-rp: %v", err)
	}
}
