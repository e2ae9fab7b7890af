package frontend

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
)

func req(remote string, h map[string]string) *http.Request {
	r := httptest.NewRequest("GET", "http://sso.example.test/sso/login", nil)
	r.RemoteAddr = remote
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

var lbs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::/32")}

func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	f := New(nil, lbs)
	h := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9", "X-Forwarded-Host": "sso.example.test"}
	v := f.Of(req("203.0.113.5:4000", h))
	if v.Secure() || v.ClientAddr() != "203.0.113.5" || v.ViaTrustedProxy {
		t.Errorf("untrusted peer believed: %+v", v)
	}
	if got := f.Forwarded(req("203.0.113.5:4000", map[string]string{"X-Forwarded-Uri": "/x"}), "X-Forwarded-Uri"); got != "" {
		t.Errorf("Forwarded from an untrusted peer: %q", got)
	}
	v = f.Of(req("10.0.0.7:4000", h))
	if !v.Secure() || v.ClientAddr() != "198.51.100.9" || !v.ViaTrustedProxy || v.Origin() != "https://sso.example.test" {
		t.Errorf("trusted peer not believed: %+v", v)
	}
	if got := f.Forwarded(req("[2001:db8::1]:4000", map[string]string{"X-Forwarded-Uri": "/x"}), "X-Forwarded-Uri"); got != "/x" {
		t.Errorf("Forwarded from a trusted peer: %q", got)
	}
}

func TestClientIsTheNearestUntrustedHop(t *testing.T) {
	f := New(nil, lbs)
	for xff, want := range map[string]string{
		"1.2.3.4, 198.51.100.9, 10.0.0.8": "198.51.100.9", // 1.2.3.4 was written by the client
		"10.0.0.9, 10.0.0.8":              "10.0.0.9",     // all trusted: the farthest
		"garbage, 10.0.0.8":               "10.0.0.8",     // stops at a malformed entry
		"":                                "10.0.0.7",
		"::ffff:198.51.100.9":             "198.51.100.9",
	} {
		if got := f.Of(req("10.0.0.7:1", map[string]string{"X-Forwarded-For": xff})).ClientAddr(); got != want {
			t.Errorf("X-Forwarded-For %q: client %s, want %s", xff, got, want)
		}
	}
}

func TestExternalURLIsAuthoritative(t *testing.T) {
	f := New(&url.URL{Scheme: "https", Host: "SSO.example.test"}, nil)
	v := f.Of(req("127.0.0.1:1", map[string]string{"X-Forwarded-Proto": "http"}))
	if !v.Secure() || v.Origin() != "https://sso.example.test" {
		t.Errorf("%+v", v)
	}
	f = New(&url.URL{Scheme: "http", Host: "sso.example.test"}, lbs)
	if v := f.Of(req("10.0.0.7:1", map[string]string{"X-Forwarded-Proto": "https"})); v.Secure() {
		t.Errorf("external_url http overridden: %+v", v)
	}
}

func TestDirectConnection(t *testing.T) {
	r := req("192.0.2.1:5", map[string]string{"X-Forwarded-Proto": "https"})
	if v := From(r); v.Secure() || v.ClientAddr() != "192.0.2.1" {
		t.Errorf("%+v", v)
	}
	r.TLS = &tls.ConnectionState{}
	if v := From(r); !v.Secure() {
		t.Errorf("TLS connection not secure: %+v", v)
	}
	var seen View
	New(nil, lbs).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = From(r) })).
		ServeHTTP(httptest.NewRecorder(), req("10.0.0.7:1", map[string]string{"X-Forwarded-Proto": "https"}))
	if !seen.Secure() {
		t.Errorf("middleware view %+v", seen)
	}
}

func TestCookieNames(t *testing.T) {
	https, http := View{Scheme: "https"}, View{Scheme: "http"}
	for _, c := range []struct {
		v          View
		base, path string
		want       string
	}{
		{https, "kerbgate_session", "/sso/", "__Secure-kerbgate_session"},
		{https, "kerbgate_proxy", "/", "__Host-kerbgate_proxy"},
		{https, "__Host-kg", "/sso/", "__Secure-kg"},
		{https, "__secure-kg", "/", "__Host-kg"},
		{http, "__Host-kg", "/", "kg"},
		{http, "kerbgate_session", "/sso/", "kerbgate_session"},
	} {
		if got := c.v.CookieName(c.base, c.path); got != c.want {
			t.Errorf("%s %s at %s: %s, want %s", c.v.Scheme, c.base, c.path, got, c.want)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	v := View{Scheme: "https", Host: "sso.example.test"}
	for h, want := range map[[2]string]bool{
		{"Origin", "https://sso.example.test"}:               true,
		{"Origin", "https://SSO.example.test"}:               true,
		{"Origin", "http://sso.example.test"}:                false,
		{"Origin", "https://evil.example"}:                   false,
		{"Origin", "null"}:                                   false,
		{"Sec-Fetch-Site", "same-origin"}:                    true,
		{"Sec-Fetch-Site", "same-site"}:                      false,
		{"Sec-Fetch-Site", "cross-site"}:                     false,
		{"Referer", "https://sso.example.test/sso/logout"}:   true,
		{"Referer", "https://sso.example.test.evil.example"}: false,
		{"Referer", "/relative"}:                             false,
		{"X-None", "x"}:                                      false,
	} {
		r := httptest.NewRequest("POST", "/sso/logout", nil)
		r.Header.Set(h[0], h[1])
		if got, why := v.SameOrigin(r); got != want {
			t.Errorf("%s: %s: %v (%s), want %v", h[0], h[1], got, why, want)
		}
	}
	// Origin wins over a same-origin Sec-Fetch-Site.
	r := httptest.NewRequest("POST", "/sso/logout", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if ok, _ := v.SameOrigin(r); ok {
		t.Error("a foreign Origin was overruled")
	}
}
