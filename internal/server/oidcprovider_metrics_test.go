package server

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/testrealm"
)

// TestOIDCProviderCountsAndLogsEveryOutcome: every authorization, token grant,
// refresh reuse, introspection, revocation and logout is counted by client and
// outcome (a reason code for a refusal), and every refusal has one log line with its
// reason and facts (client, user when known) and is in kerbgate_refusals_total.
func TestOIDCProviderCountsAndLogsEveryOutcome(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
	alice := ticket(t, r, "alice")
	b := opBrowser(t, alice)

	// A sign-in, then its code again.
	v := oauth2.GenerateVerifier()
	q := authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil {
		t.Fatal("a code redeemed twice")
	}
	// A refresh, then the old refresh token again (reuse).
	refresh := func(rt string) error {
		_, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		return err
	}
	if err := refresh(tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if err := refresh(tok.RefreshToken); err == nil {
		t.Fatal("a refresh token used twice")
	}
	// A wrong secret at the token endpoint.
	bad := newOPRP(t, ctx, issuer, "rp", "wrong-secret")
	bad.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	q = authorize(t, b, bad.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if _, err := bad.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v)); err == nil {
		t.Fatal("a wrong secret redeemed a code")
	}
	// alice outside staff-rp's groups.
	staff := newOPRP(t, ctx, issuer, "staff-rp", staffSecret)
	if q := authorize(t, opBrowser(t, alice), staff.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v))); q.Get("error") != "access_denied" {
		t.Fatalf("alice at staff-rp: %v", q)
	}
	// An unregistered redirect URI and an unknown client: 400, no redirect.
	for _, c := range []oauth2.Config{{ClientID: "rp", Endpoint: rp.oauth.Endpoint, RedirectURL: "http://evil.example.test/cb", Scopes: []string{"openid"}},
		{ClientID: "nobody", Endpoint: rp.oauth.Endpoint, RedirectURL: opRPCallback, Scopes: []string{"openid"}}} {
		resp, err := opBrowser(t, alice).Get(c.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("client %s at %s: %d", c.ClientID, c.RedirectURL, resp.StatusCode)
		}
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kerbgate_oidc_authorizations_total", map[string]string{"client": "rp", "outcome": "ok"}, 2},
		{"kerbgate_oidc_authorizations_total", map[string]string{"client": "staff-rp", "outcome": "not_in_group"}, 1},
		{"kerbgate_oidc_authorizations_total", map[string]string{"client": "rp", "outcome": "redirect_not_registered"}, 1},
		{"kerbgate_oidc_authorizations_total", map[string]string{"client": "-", "outcome": "unknown_app"}, 1},
		{"kerbgate_oidc_token_requests_total", map[string]string{"client": "rp", "grant_type": "authorization_code", "outcome": "ok"}, 1},
		{"kerbgate_oidc_token_requests_total", map[string]string{"client": "rp", "grant_type": "authorization_code", "outcome": "oidc_invalid_grant"}, 1},
		{"kerbgate_oidc_token_requests_total", map[string]string{"client": "rp", "grant_type": "authorization_code", "outcome": "bad_client_credentials"}, 1},
		{"kerbgate_oidc_token_requests_total", map[string]string{"client": "rp", "grant_type": "refresh_token", "outcome": "ok"}, 1},
		{"kerbgate_oidc_token_requests_total", map[string]string{"client": "rp", "grant_type": "refresh_token", "outcome": "refresh_token_reused"}, 1},
		{"kerbgate_oidc_refresh_token_reuses_total", map[string]string{"client": "rp"}, 1},
		{"kerbgate_oidc_token_request_duration_seconds", map[string]string{"grant_type": "authorization_code"}, 3},
		{"kerbgate_refusals_total", map[string]string{"reason": "oidc_invalid_grant"}, 1},
		{"kerbgate_refusals_total", map[string]string{"reason": "refresh_token_reused"}, 1},
		{"kerbgate_refusals_total", map[string]string{"reason": "not_in_group"}, 1},
	} {
		if n := g.counterWith(t, c.name, c.labels); n != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, n, c.want)
		}
	}
	logs := g.logs.String()
	for _, want := range []string{
		`"reason":"oidc_invalid_grant".*"client":"rp".*"grant_type":"authorization_code"`,
		`"reason":"refresh_token_reused".*"client":"rp".*"user":"alice@EXAMPLE.TEST"`,
		`"reason":"bad_client_credentials".*"client":"rp"`,
		`"reason":"not_in_group".*"client":"staff-rp".*"user":"alice@EXAMPLE.TEST"`,
		`"reason":"redirect_not_registered".*"client":"rp"`,
		`"reason":"unknown_app".*"client":"nobody"`,
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("no log line matching %s", want)
		}
	}
	// One line per refusal: the reused code is not logged twice.
	if n := strings.Count(logs, `"reason":"oidc_invalid_grant"`); n != 1 {
		t.Errorf("%d log lines for the one reused code", n)
	}
}

// TestOIDCProviderLibraryLogsGoToKerbgatesLog: what the OpenID protocol library logs
// (it logs through slog's default logger) reaches the gateway's own log, structured
// and marked as the library's, and holds no secret (the harness checks every
// gateway's log for the codes, tokens and client secrets that crossed its edge).
func TestOIDCProviderLibraryLogsGoToKerbgatesLog(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	b := opBrowser(t, ticket(t, r, "alice"))
	v := oauth2.GenerateVerifier()
	q := authorize(t, b, rp.oauth.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	// A wrong verifier: the library refuses the code (and logs the error).
	if _, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-"+v)); err == nil {
		t.Fatal("a wrong verifier redeemed the code")
	}
	// An unregistered redirect URI: the library logs that it does not redirect.
	c := rp.oauth
	c.RedirectURL = "http://evil.example.test/cb"
	resp, err := b.Get(c.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	logs := g.logs.String()
	for _, want := range []string{
		`"msg":"auth request: not redirecting".*"library":"zitadel/oidc"`,
		`"msg":"request error".*"library":"zitadel/oidc"`,
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("the library's record %s is not in the gateway log", want)
		}
	}
}
