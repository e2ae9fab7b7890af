package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/testrealm"
)

// TestOIDCProviderIntrospectionAndRevocationTakeBothClientAuthMethods: a confidential
// client authenticates at the introspection (RFC 7662) and revocation (RFC 7009)
// endpoints with client_secret_basic or client_secret_post, as at the token
// endpoint, and discovery says so; every refusal there is RFC 6749 §5.2 JSON (401
// invalid_client, with a Basic challenge when the client used the header; 400
// invalid_request for a malformed request).
func TestOIDCProviderIntrospectionAndRevocationTakeBothClientAuthMethods(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	g := startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
	b := opBrowser(t, ticket(t, r, "alice"))
	tok, _ := codeFlow(t, ctx, rp, b)
	meta := discovery(t, rp)
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		if !slices.Contains(meta.IntrospectionMethods, m) || !slices.Contains(meta.RevocationMethods, m) {
			t.Errorf("discovery: introspection %v, revocation %v; want %s in both", meta.IntrospectionMethods, meta.RevocationMethods, m)
		}
	}

	basic := func(id, secret string) func(*http.Request) {
		return func(req *http.Request) { req.SetBasicAuth(id, secret) }
	}
	post := func(form url.Values, id, secret string) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_id", id)
		f.Set("client_secret", secret)
		return f
	}
	token := url.Values{"token": {tok.AccessToken}}

	// Introspection, both ways.
	if got := introspect(t, meta.Introspection, tok.AccessToken, basic("rp", demoSecret)); got["active"] != true || got["client_id"] != "rp" {
		t.Errorf("introspection with client_secret_basic: %v", got)
	}
	status, got, _ := postForm(t, meta.Introspection, post(token, "rp", demoSecret), nil)
	if status != http.StatusOK || got["active"] != true || got["client_id"] != "rp" {
		t.Errorf("introspection with client_secret_post: %d %v", status, got)
	}
	// Refusals are JSON.
	wantError := func(what string, status int, got map[string]any, h http.Header, wantStatus int, wantErr string, challenge bool) {
		t.Helper()
		if status != wantStatus || got["error"] != wantErr {
			t.Errorf("%s: %d %v, want %d %s", what, status, got, wantStatus, wantErr)
		}
		if c := h.Get("WWW-Authenticate"); challenge != strings.HasPrefix(c, "Basic") {
			t.Errorf("%s: WWW-Authenticate %q (a Basic challenge wanted: %v)", what, c, challenge)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
	}
	status, got, h := postForm(t, meta.Introspection, token, basic("rp", "wrong-secret"))
	wantError("introspection, wrong secret in the header", status, got, h, 401, "invalid_client", true)
	status, got, h = postForm(t, meta.Introspection, post(token, "rp", "wrong-secret"), nil)
	wantError("introspection, wrong secret in the body", status, got, h, 401, "invalid_client", false)
	status, got, h = postForm(t, meta.Introspection, token, nil)
	wantError("introspection without client authentication", status, got, h, 401, "invalid_client", false)
	status, got, h = postForm(t, meta.Introspection, url.Values{"token": {tok.AccessToken}, "client_id": {"spa"}}, nil)
	wantError("introspection by a public client", status, got, h, 401, "invalid_client", false)
	status, got, h = postForm(t, meta.Introspection, post(token, "rp", demoSecret), basic("rp", demoSecret))
	wantError("introspection with two client authentication methods", status, got, h, 400, "invalid_request", false)
	status, got, h = postForm(t, meta.Introspection, url.Values{}, basic("rp", demoSecret))
	wantError("introspection without a token", status, got, h, 400, "invalid_request", false)

	// Revocation, both ways, and its refusals.
	status, got, h = postForm(t, meta.Revocation, url.Values{"token": {tok.RefreshToken}}, basic("rp", "wrong-secret"))
	wantError("revocation, wrong secret in the header", status, got, h, 401, "invalid_client", true)
	status, got, h = postForm(t, meta.Revocation, post(url.Values{"token": {tok.RefreshToken}}, "rp", "wrong-secret"), nil)
	wantError("revocation, wrong secret in the body", status, got, h, 401, "invalid_client", false)
	status, got, _ = postForm(t, meta.Revocation, post(url.Values{"token": {tok.RefreshToken}}, "rp", demoSecret), nil)
	if status != http.StatusOK {
		t.Fatalf("revocation with client_secret_post: %d %v", status, got)
	}
	if _, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("the refresh token revoked with client_secret_post still works")
	}
	tok2, _ := codeFlow(t, ctx, rp, b)
	if status, got, _ := postForm(t, meta.Revocation, url.Values{"token": {tok2.AccessToken}}, basic("rp", demoSecret)); status != http.StatusOK {
		t.Fatalf("revocation with client_secret_basic: %d %v", status, got)
	}
	if got := introspect(t, meta.Introspection, tok2.AccessToken, basic("rp", demoSecret)); got["active"] != false {
		t.Errorf("the access token revoked with client_secret_basic: %v", got)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kerbgate_oidc_introspections_total", map[string]string{"client": "rp", "outcome": "active"}, 2},
		{"kerbgate_oidc_introspections_total", map[string]string{"client": "rp", "outcome": "inactive"}, 1},
		{"kerbgate_oidc_introspections_total", map[string]string{"client": "rp", "outcome": "bad_client_credentials"}, 2},
		{"kerbgate_oidc_introspections_total", map[string]string{"outcome": "oidc_invalid_request"}, 2},
		{"kerbgate_oidc_revocations_total", map[string]string{"client": "rp", "outcome": "revoked"}, 2},
		{"kerbgate_oidc_revocations_total", map[string]string{"client": "rp", "outcome": "bad_client_credentials"}, 2},
	} {
		if n := g.counterWith(t, c.name, c.labels); n != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, n, c.want)
		}
	}
}
