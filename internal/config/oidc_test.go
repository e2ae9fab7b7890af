package config

import (
	"testing"
)

func oidcApp(issuer string) string {
	return valid + `proxy:
  apps:
    - id: intranet
      host: app.example.test
      upstream: http://intranet.internal:8080
      pre_auth: oidc
      oidc:
        issuer: ` + issuer + `
        client_id: kerbgate
        client_secret_env: KERBGATE_TEST_OIDC_SECRET
`
}

// proxy.apps[].oidc.issuer must be https: the discovery document, the JWKS that
// verifies ID tokens and the token endpoint are all fetched from it. Plain http is
// accepted only for a provider on this machine (loopback) or in a .test domain.
func TestOIDCIssuerMustBeHTTPS(t *testing.T) {
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "s")
	for _, ok := range []string{"https://login.example.com", "https://login.example.com/realms/x", "http://127.0.0.1:9000",
		"http://[::1]:9000", "http://localhost:9000", "http://idp.example.test", "http://IDP.EXAMPLE.TEST:8080/"} {
		if c, err, _, _ := parse(t, oidcApp(ok)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		} else if got := c.Proxy.Apps[0].OIDC.Issuer; got != ok {
			t.Errorf("%s: issuer %q", ok, got)
		}
	}
	for _, bad := range []struct{ issuer, want string }{
		{"http://login.example.com", `12:17: proxy.apps[0].oidc.issuer: "http://login.example.com" is plain http; expected an https URL (http only for a provider on loopback or in a .test domain)`},
		{"http://127.0.0.1.example.com", `12:17: proxy.apps[0].oidc.issuer: "http://127.0.0.1.example.com" is plain http; expected an https URL`},
		{"http://test", `12:17: proxy.apps[0].oidc.issuer: "http://test" is plain http; expected an https URL`},
		{"ftp://login.example.com", `12:17: proxy.apps[0].oidc.issuer: "ftp://login.example.com" is not an http(s) URL`},
	} {
		checkInvalid(t, invalidCase{name: bad.issuer, src: oidcApp(bad.issuer), want: []string{bad.want}})
	}
}
