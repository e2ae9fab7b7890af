package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The UserInfo answer is about the ID token's subject only if its sub says so: OIDC
// Core §5.3.2 requires the client to compare them and not use the answer otherwise.
// A provider whose UserInfo names another subject (here the real npm oidc-provider,
// made to misbehave) gets the sign-in refused, with both subjects in the log.
func TestProxyOIDCUserInfoSubjectMustMatchIDToken(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "upstream reached") }))
	t.Cleanup(upstream.Close)
	port := freePort(t)
	base := fmt.Sprintf("http://sso.example.test:%d", port)
	callback := base + "/apps/oidc/_kerbgate/oidc/callback"
	op := testrealm.StartOIDC(t, testrealm.OIDCOptions{ClientID: "kerbgate", ClientSecret: "oidc-test-secret",
		RedirectURIs: []string{callback}, UserInfoSub: "mallory"})
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "oidc-test-secret")

	cfg := kcdConfig(t, r, upstream.URL, "svc-gw", r.GatewayAccountKeytab)
	cfg.Listen.Address = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Proxy.Apps = []config.ProxyApp{{ID: "oidc", Host: "sso.example.test", PathPrefix: "/apps/oidc/", Upstream: mustURL(t, upstream.URL),
		Timeout: 10 * time.Second, PreAuth: "oidc",
		OIDC: &config.ProxyOIDC{Issuer: op.Issuer, ClientID: "kerbgate", ClientSecretEnv: "KERBGATE_TEST_OIDC_SECRET",
			UsernameClaim: "upn", Scopes: []string{"openid", "profile", "email"}}}}
	g := startGateway(t, cfg)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	req, _ := http.NewRequest("GET", base+"/apps/oidc/whoami", nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Kerbgate-Reason") != "oidc_token_invalid" {
		t.Fatalf("UserInfo with another sub: %d %q\n%s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"), body)
	}
	for _, want := range []string{`"id_token_sub":"alice"`, `"userinfo_sub":"mallory"`} {
		if !strings.Contains(g.logs.String(), want) {
			t.Errorf("refusal log lacks %s:\n%s", want, g.logs.String())
		}
	}
}
