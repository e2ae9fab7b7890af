package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// OIDC pre-authentication against a real OpenID provider (npm oidc-provider under
// Node.js) whose user alice carries her UPN in the "upn" claim, then Kerberos
// constrained delegation to Apache mod_auth_gssapi.
func TestProxyOIDCPreAuthToApache(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	port := freePort(t)
	base := fmt.Sprintf("http://sso.example.test:%d", port)
	callback := func(app string) string { return base + "/apps/" + app + "/_kerbgate/oidc/callback" }
	op := testrealm.StartOIDC(t, testrealm.OIDCOptions{ClientID: "kerbgate", ClientSecret: "oidc-test-secret",
		RedirectURIs: []string{callback("oidc"), callback("noclaim")}})
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "oidc-test-secret")

	cfg := kcdConfig(t, r, apache.URL, "svc-gw", r.GatewayAccountKeytab)
	cfg.Listen.Address = fmt.Sprintf("127.0.0.1:%d", port)
	app := func(id, claim string) config.ProxyApp {
		return config.ProxyApp{ID: id, Host: "sso.example.test", PathPrefix: "/apps/" + id + "/", Upstream: mustURL(t, apache.URL),
			Timeout: 10 * time.Second, PreAuth: "oidc",
			OIDC: &config.ProxyOIDC{Issuer: op.Issuer, ClientID: "kerbgate", ClientSecretEnv: "KERBGATE_TEST_OIDC_SECRET",
				UsernameClaim: claim, Scopes: []string{"openid", "profile", "email"}},
			Kerberos: &config.ProxyKerberos{SPN: "HTTP/app.example.test", LoginIdentity: "upn_user_part", TokenFormat: "spnego", Send: "always"}}
	}
	cfg.Proxy.Apps = []config.ProxyApp{app("oidc", "upn"), app("noclaim", "employee_upn")}
	g := startGateway(t, cfg)

	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 20 * time.Second}
	}
	get := func(c *http.Client, url string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", "text/plain")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), resp.Header
	}

	// The whole flow, redirects followed as a browser would: kerbgate → provider
	// (login and consent answered by the test provider) → kerbgate's callback →
	// the application, which sees alice signed in by Kerberos.
	c := browser()
	status, body, _ := get(c, base+"/apps/oidc/whoami")
	if status != 200 || !strings.Contains(body, "user=alice@EXAMPLE.TEST") {
		t.Fatalf("OIDC flow: %d %s\n%s", status, body, g.logs.String())
	}
	// The proxy session spares the next request the provider.
	status, body, _ = get(c, base+"/apps/oidc/whoami")
	if status != 200 || !strings.Contains(body, "user=alice@EXAMPLE.TEST") {
		t.Fatalf("second request: %d %s", status, body)
	}
	if !strings.Contains(g.logs.String(), `"preauth":"oidc"`) {
		t.Errorf("no audit event for the OIDC sign-in")
	}

	// A claim the provider does not send.
	status, _, h := get(browser(), base+"/apps/noclaim/whoami")
	if status != 403 || h.Get("Kerbgate-Reason") != "oidc_claim_missing" {
		t.Fatalf("missing claim: %d %q", status, h.Get("Kerbgate-Reason"))
	}
	// A callback this browser did not start, or with another state.
	status, _, h = get(browser(), base+"/apps/oidc/_kerbgate/oidc/callback?code=x&state=y")
	if status != 400 || h.Get("Kerbgate-Reason") != "oidc_state_invalid" {
		t.Fatalf("forged callback: %d %q", status, h.Get("Kerbgate-Reason"))
	}

	// Provider down: a kerbgate that has not discovered it yet refuses, named.
	op.Stop()
	cfg2 := *cfg
	cfg2.Listen.Address = "127.0.0.1:0"
	g2 := startGateway(t, &cfg2)
	status, _, h = get(browser(), g2.url("sso.example.test", "/apps/oidc/whoami"))
	if status != 502 || h.Get("Kerbgate-Reason") != "oidc_provider_unavailable" {
		t.Fatalf("provider down: %d %q", status, h.Get("Kerbgate-Reason"))
	}
}
