package oidcauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/frontend"
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

// Behind a TLS-terminating balancer in trusted_proxies (the browser on https, kerbgate
// on plain HTTP), the flow's state cookie is Secure and the redirect_uri is the
// browser's https address: decided per request from the frontend view.
func TestStartBehindATLSBalancerIsHTTPS(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth",
			"token_endpoint": srv.URL + "/token", "userinfo_endpoint": srv.URL + "/me", "jwks_uri": srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	defer srv.Close()
	a, err := New(Config{Issuer: srv.URL, ClientID: "c", CookieKeys: testKeys(t), CallbackPath: "/cb"})
	if err != nil {
		t.Fatal(err)
	}
	fe := frontend.New(nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	r := httptest.NewRequest("GET", "http://app.example.test/page", nil)
	r.RemoteAddr = "192.0.2.10:4242"
	r.Header.Set("X-Forwarded-Proto", "https")
	w := httptest.NewRecorder()
	fe.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err, handled := a.Authenticate(w, r); err != nil || !handled {
			t.Fatalf("start: %v %v", err, handled)
		}
	})).ServeHTTP(w, r)
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].Secure {
		t.Errorf("state cookie not Secure behind an https balancer: %v", w.Header()["Set-Cookie"])
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if got := loc.Query().Get("redirect_uri"); got != "https://app.example.test/cb" {
		t.Errorf("redirect_uri %q, want https://app.example.test/cb", got)
	}
}
