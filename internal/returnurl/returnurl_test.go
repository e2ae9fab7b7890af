package returnurl

import "testing"

// Hostile is the handoff's hostile redirect list (internal/server's
// TestHostileRedirectURIsAreRefused) less its entries that only an exact comparison
// refuses: a domain allowlist for app.example.test refuses every one.
var hostile = []string{
	"http://evil.example/callback",
	"http://app.example.test:9.evil.example/callback",
	"http://app.example.test:9@evil.example/callback",
	"http://evil.example@app.example.test:9/callback",
	"//evil.example/callback",
	"/callback",
	`http:\\evil.example\callback`,
	"http://app.example.test:9\\@evil.example/callback",
	"http://app.example.test:9/callback#frag",
	"javascript:alert(1)",
	"http://app.example.test:9/callback ",
	"https://staff.example.test/cb",
	// and what a domain rule adds to it
	"http://app.example.test.evil.example/",
	"http://evilapp.example.test/",
	"http://app.example.test./",
	"http://APP.example.test/",
	"http://app%2eexample.test/",
	"http://app.example.test:0/",
	"http://app.example.test:99999/",
	"http://app.example.test:08/",
	"http://app.example.test\t/",
	"http://app.example.test/\r\nLocation: http://evil.example/",
	"https:app.example.test/x",
	"https:/app.example.test/x",
	"http://[::1]/",
	"",
}

func TestHostileReturnURLsAreRefused(t *testing.T) {
	a := New([]string{"app.example.test"})
	for _, u := range hostile {
		if got, err := a.Check(u); err == nil {
			t.Errorf("%q allowed as %v", u, got)
		}
	}
}

func TestAllowedReturnURLs(t *testing.T) {
	a := New([]string{"app.example.test", ".corp.example.com"})
	for _, u := range []string{
		"http://app.example.test/",
		"http://app.example.test:8080/path?q=1&r=%2F",
		"https://app.example.test",
		"https://corp.example.com/",
		"https://wiki.corp.example.com/page",
		"https://a.b.corp.example.com:8443/",
	} {
		if _, err := a.Check(u); err != nil {
			t.Errorf("%q refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://corp.example.com/", "https://xcorp.example.com/", "https://wiki.app.example.test/", "https://example.com/"} {
		if _, err := a.Check(u); err == nil {
			t.Errorf("%q allowed", u)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, u := range hostile {
		f.Add(u)
	}
	a := New([]string{".example.test"})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := a.Check(raw)
		if err != nil {
			return
		}
		if u.User != nil || u.Fragment != "" || !a.Allows(u.Hostname()) || u.String() == "" {
			t.Fatalf("%q allowed as %#v", raw, u)
		}
	})
}
