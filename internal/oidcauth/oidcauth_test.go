package oidcauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
)

func testKeys(t *testing.T) *keyset.Set {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(keyset.NewKeyLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := keyset.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// A plain-http issuer is refused unless it is on loopback or in .test.
func TestNewRefusesPlainHTTPIssuer(t *testing.T) {
	ks := testKeys(t)
	for issuer, ok := range map[string]bool{
		"https://login.example.com": true, "http://127.0.0.1:9000": true, "http://[::1]:1": true,
		"http://localhost:9000": true, "http://idp.example.test": true,
		"http://login.example.com": false, "http://test": false, "http://127.0.0.1.example.com": false, "ftp://x.test": false,
	} {
		_, err := New(Config{Issuer: issuer, ClientID: "c", CookieKeys: ks, CallbackPath: "/cb"})
		if (err == nil) != ok {
			t.Errorf("%s: %v", issuer, err)
		}
	}
}

// Discovery that names a plain-http endpoint off loopback is refused: the JWKS, token
// and UserInfo endpoints decide who signs in, so they must be as safe as the issuer.
func TestDiscoveryRefusesPlainHTTPEndpoints(t *testing.T) {
	var srv *httptest.Server
	jwks := ""
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth",
			"token_endpoint": srv.URL + "/token", "userinfo_endpoint": srv.URL + "/me", "jwks_uri": jwks,
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	defer srv.Close()

	a, err := New(Config{Issuer: srv.URL, ClientID: "c", CookieKeys: testKeys(t), CallbackPath: "/cb"})
	if err != nil {
		t.Fatal(err)
	}
	jwks = "http://keys.example.com/jwks"
	_, err = a.discover(t.Context())
	if e := reason.Of(err); err == nil || e.Code != reason.OIDCProviderUnavailable || !strings.Contains(e.Error(), "endpoint=jwks_uri") {
		t.Fatalf("plain-http jwks_uri: %v", err)
	}
	jwks = srv.URL + "/jwks" // loopback: a test provider
	if _, err := a.discover(t.Context()); err != nil {
		t.Fatalf("loopback endpoints: %v", err)
	}
}
