package pwsignin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/reason"
)

func code(err error) reason.Code {
	var e *reason.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Every spelling of one account has one counting key; names of other domains and
// malformed names are refused before anything is asked.
func TestNames(t *testing.T) {
	n := Names{Realm: "EXAMPLE.TEST", UPNSuffixes: []string{"example.com"}}
	for _, c := range []struct {
		in   string
		user logon.User
		key  string
	}{
		{"alice", logon.User{Name: "alice"}, "alice"},
		{" Alice ", logon.User{Name: "Alice"}, "alice"},
		{`EXAMPLE\alice`, logon.User{Name: "alice"}, "alice"},
		{`example.test\ALICE`, logon.User{Name: "ALICE"}, "alice"},
		{"alice@example.test", logon.User{Name: "alice@example.test", Enterprise: true}, "alice"},
		{"Alice@EXAMPLE.TEST", logon.User{Name: "Alice@example.test", Enterprise: true}, "alice"},
		{"a.smith@Example.COM", logon.User{Name: "a.smith@example.com", Enterprise: true}, "a.smith@example.com"},
	} {
		got, err := n.Parse(c.in)
		if err != nil || got.User != c.user || got.Key != c.key {
			t.Errorf("Parse(%q) = %+v, %v; want %+v key %q", c.in, got, err, c.user, c.key)
		}
	}
	for in, want := range map[string]reason.Code{
		"":                        reason.PasswordFormInvalid,
		"alice@evil.test":         reason.PasswordNameForeign,
		`EVIL\alice`:              reason.PasswordNameForeign,
		`EXAMPLE\`:                reason.PasswordFormInvalid,
		`EXAMPLE\a\b`:             reason.PasswordFormInvalid,
		"@example.test":           reason.PasswordFormInvalid,
		"alice@":                  reason.PasswordFormInvalid,
		"HTTP/sso.example.test":   reason.PasswordFormInvalid,
		"krbtgt/EXAMPLE.TEST":     reason.PasswordFormInvalid,
		"al\x00ice":               reason.PasswordFormInvalid,
		"al\nice":                 reason.PasswordFormInvalid,
		"\xff":                    reason.PasswordFormInvalid,
		string(make([]byte, 300)): reason.PasswordFormInvalid,
	} {
		if _, err := n.Parse(in); code(err) != want {
			t.Errorf("Parse(%q) = %v, want %s", in, err, want)
		}
	}
	if k := n.AccountKey("Alice@EXAMPLE.TEST"); k != "alice" {
		t.Errorf("AccountKey = %q", k)
	}
	if k := n.AccountKey("bob@PARTNER.TEST"); k != "bob@partner.test" {
		t.Errorf("AccountKey of another realm = %q", k)
	}
}

// Both kinds of source together stay below the domain's threshold; configured
// thresholds above it are lowered.
func TestDeriveLimits(t *testing.T) {
	for _, c := range []struct {
		domain, u, f int
		wantU, wantF int
		clamped      bool
	}{
		{5, 0, 0, 2, 2, false},
		{3, 0, 0, 1, 1, false},
		{2, 0, 0, 0, 1, false},
		{1, 0, 0, 0, 0, false},
		{10, 0, 0, 4, 5, false},
		{10, 3, 0, 3, 6, false},
		{10, 0, 8, 1, 8, false},
		{5, 4, 4, 0, 4, true},
		{0, 0, 0, 5, 10, false},
		{0, 7, 20, 7, 20, false},
	} {
		l := DeriveLimits(DomainPolicy{Threshold: c.domain, ObservationWindow: time.Hour},
			LockoutConfig{UnfamiliarThreshold: c.u, FamiliarThreshold: c.f, Window: 10 * time.Minute})
		if l.Unfamiliar != c.wantU || l.Familiar != c.wantF || l.Clamped != c.clamped {
			t.Errorf("domain %d, configured %d/%d: got %d/%d clamped %v, want %d/%d clamped %v",
				c.domain, c.u, c.f, l.Unfamiliar, l.Familiar, l.Clamped, c.wantU, c.wantF, c.clamped)
		}
		if c.domain > 0 && l.Unfamiliar+l.Familiar >= c.domain {
			t.Errorf("domain %d: %d + %d failures could lock the account", c.domain, l.Unfamiliar, l.Familiar)
		}
		if l.Window != time.Hour {
			t.Errorf("window %s, want the domain's observation window (the longer)", l.Window)
		}
	}
}

// Rules: first match by source and User-Agent (AD FS's syntax), else the default;
// the built-in rules give phones the form.
func TestRules(t *testing.T) {
	win, err := ParseUserAgent(`=~Windows\s*NT.*Edg`)
	if err != nil {
		t.Fatal(err)
	}
	trident, _ := ParseUserAgent("trident/7.0")
	rs := Rules{Default: FormOnly, Rules: []Rule{
		{Sources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, UserAgents: []UserAgent{win, trident}, Challenge: NegotiateForm},
		{Sources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Challenge: NegotiateOnly},
	}}
	edge := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36 Edg/120"
	ie := "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko"
	fe := frontend.New(nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	for _, c := range []struct {
		src, ua string
		want    Challenge
	}{
		{"10.1.2.3", edge, NegotiateForm},
		{"10.1.2.3", ie, NegotiateForm},
		{"10.1.2.3", "curl/7.88", NegotiateOnly},
		{"192.0.2.1", edge, FormOnly},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.RemoteAddr = "127.0.0.1:1234"
		r.Header.Set("X-Forwarded-For", c.src)
		r.Header.Set("User-Agent", c.ua)
		var got Challenge
		fe.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r2 *http.Request) { got = rs.For(r2) })).ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s %q: %s, want %s", c.src, c.ua, got, c.want)
		}
	}
	d := DefaultRules()
	for ua, want := range map[string]Challenge{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)": FormOnly,
		"Mozilla/5.0 (Linux; Android 14; Pixel 8)":               FormOnly,
		edge:     NegotiateForm,
		"curl/8": NegotiateForm,
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("User-Agent", ua)
		if got := d.For(r); got != want {
			t.Errorf("default rules, %q: %s, want %s", ua, got, want)
		}
	}
	if _, err := ParseUserAgent("=~("); err == nil {
		t.Error("a broken regular expression was accepted")
	}
}

// The CSRF token opens only with the browser's own form cookie.
func TestCSRFBoundToTheBrowser(t *testing.T) {
	keys := keyset.Random()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/whoami", nil)
	token := csrf(w, r, keys)
	cookie := w.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Errorf("form cookie %+v", cookie)
	}
	post := httptest.NewRequest("POST", "/whoami", nil)
	post.AddCookie(cookie)
	if !csrfValid(post, keys, token) {
		t.Error("the browser's own token refused")
	}
	other := httptest.NewRequest("POST", "/whoami", nil)
	w2 := httptest.NewRecorder()
	csrf(w2, httptest.NewRequest("GET", "/", nil), keys)
	other.AddCookie(w2.Result().Cookies()[0])
	if csrfValid(other, keys, token) {
		t.Error("a token accepted with another browser's cookie")
	}
	if csrfValid(post, keyset.Random(), token) {
		t.Error("a token accepted under other keys")
	}
	if csrfValid(httptest.NewRequest("POST", "/", nil), keys, token) {
		t.Error("a token accepted without the cookie")
	}
}
