package idheaders

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

var alice = &identity.Identity{
	Principal: "alice@EXAMPLE.TEST", UPN: "alice@example.test", SAMAccountName: "alice", Mail: "alice@example.test",
	SID: "S-1-5-21-1-2-3-1105", Groups: []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1110"},
	GroupNames: []string{"Domain Users", "staff"},
}

func prepared(t *testing.T, p Policy) *Policy {
	t.Helper()
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestForgedHeadersAreStrippedWhateverTheMapping(t *testing.T) {
	p := prepared(t, Policy{Headers: []Mapping{{User, "X-Remote-User"}}})
	h := http.Header{}
	for _, n := range []string{"X-Auth-Request-User", "x-auth-request-groups", "X-Auth-Request-Groups-Overage", "X-Remote-User", "X-Auth-Request-Assertion", "X-Other"} {
		h.Set(n, "admin")
	}
	p.Strip(h)
	if len(h) != 1 || h.Get("X-Other") != "admin" {
		t.Fatalf("left %v", h)
	}
	if err := p.Set(h, alice, "app.example.test"); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Remote-User") != "alice" || h.Get("X-Auth-Request-User") != "" {
		t.Fatalf("headers %v", h)
	}
}

func TestDefaultHeaders(t *testing.T) {
	p := prepared(t, Policy{Headers: Defaults()})
	h := http.Header{}
	if err := p.Set(h, alice, "app.example.test"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"X-Auth-Request-User": "alice", "X-Auth-Request-Email": "alice@example.test",
		"X-Auth-Request-Groups": "Domain Users,staff", "X-Auth-Request-Sid": alice.SID,
		"X-Auth-Request-Preferred-Username": "alice@example.test",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers %v", h)
	}
}

func TestGroupOverageIsSignalledNotTruncated(t *testing.T) {
	p := prepared(t, Policy{Headers: Defaults(), Groups: signin.GroupFilter{Max: 1}})
	h := http.Header{}
	p.Set(h, alice, "app.example.test")
	if h.Get("X-Auth-Request-Groups") != "" || h.Get("X-Auth-Request-Groups-Overage") != "true" {
		t.Fatalf("headers %v", h)
	}
	p = prepared(t, Policy{Headers: Defaults(), Groups: signin.GroupFilter{Include: []string{"STAFF"}, Max: 1}})
	h = http.Header{}
	p.Set(h, alice, "app.example.test")
	if h.Get("X-Auth-Request-Groups") != "staff" || h.Get("X-Auth-Request-Groups-Overage") != "" {
		t.Fatalf("headers %v", h)
	}
}

func TestNoDirectoryMeansNoGroupNamesHeader(t *testing.T) {
	p := prepared(t, Policy{Headers: append(Defaults(), Mapping{GroupSIDs, "X-Auth-Request-Group-Sids"})})
	id := *alice
	id.GroupNames = nil
	h := http.Header{}
	p.Set(h, &id, "app.example.test")
	if _, ok := h["X-Auth-Request-Groups"]; ok {
		t.Errorf("groups header %v", h)
	}
	if h.Get("X-Auth-Request-Group-Sids") != "S-1-5-21-1-2-3-513,S-1-5-21-1-2-3-1110" {
		t.Errorf("group sids %v", h)
	}
}

func TestControlCharactersNeverReachAHeader(t *testing.T) {
	p := prepared(t, Policy{Headers: []Mapping{{Name, "X-Name"}}})
	id := *alice
	id.DisplayName = "Al\r\nX-Injected: 1\x00ice"
	h := http.Header{}
	p.Set(h, &id, "a")
	if h.Get("X-Name") != "AlX-Injected: 1ice" {
		t.Errorf("%q", h.Get("X-Name"))
	}
}

func TestAssertionVerifiesWithThePublishedKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	signingkeys.Add(path, time.Now())
	keys, err := signingkeys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	p := prepared(t, Policy{Now: func() time.Time { return now },
		Assertion: &Assertion{TTL: 5 * time.Minute, Issuer: "https://sso.example.test/oidc", Keys: keys}})
	h := http.Header{}
	if err := p.Set(h, alice, "app.example.test"); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(h.Get(DefaultAssertionHeader), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.Public()
	b, err := jws.Verify(pub.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c Claims
	json.Unmarshal(b, &c)
	if c.Issuer != "https://sso.example.test/oidc" || c.Audience != "app.example.test" || c.Subject != signingkeys.Subject(c.Issuer, alice.SID) ||
		c.IssuedAt != now.Unix() || c.Expiry != now.Unix()+300 || c.Email != "alice@example.test" || len(c.Groups) != 2 || c.User != "alice" {
		t.Fatalf("claims %+v", c)
	}
	if err := (&Policy{Assertion: &Assertion{TTL: 6 * time.Minute, Issuer: "x", Keys: keys}}).Prepare(); err == nil {
		t.Error("a 6 minute assertion was accepted")
	}
}

// An assertion is reused for the same claims while it has half its life left, and
// never for other claims.
func TestAssertionIsReusedForHalfItsLifeOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	signingkeys.Add(path, time.Now())
	keys, _ := signingkeys.Load(path)
	now := time.Unix(1_800_000_000, 0)
	p := prepared(t, Policy{Now: func() time.Time { return now },
		Assertion: &Assertion{TTL: 4 * time.Minute, Issuer: "https://sso.example.test/oidc", Keys: keys}})
	get := func(id *identity.Identity, aud string) string {
		h := http.Header{}
		if err := p.Set(h, id, aud); err != nil {
			t.Fatal(err)
		}
		return h.Get(DefaultAssertionHeader)
	}
	first := get(alice, "app.example.test")
	now = now.Add(2 * time.Minute)
	if get(alice, "app.example.test") != first {
		t.Error("not reused at half its life")
	}
	if get(alice, "other.example.test") == first {
		t.Error("reused for another audience")
	}
	bob := *alice
	bob.SID, bob.SAMAccountName = "S-1-5-21-1-2-3-1106", "bob"
	if get(&bob, "app.example.test") == first {
		t.Error("reused for another user")
	}
	fewer := *alice
	fewer.GroupNames = []string{"Domain Users"}
	if get(&fewer, "app.example.test") == first {
		t.Error("reused for other groups")
	}
	now = now.Add(time.Second)
	if get(alice, "app.example.test") == first {
		t.Error("reused past half its life")
	}
}

// A Rendered set on many answers writes what Set writes, and a header added to one
// answer never shows in another (the shared values have no room to grow into).
func TestRenderedIsSetOnManyAnswersAlike(t *testing.T) {
	p := prepared(t, Policy{Headers: append(Defaults(), Mapping{User, "x-remote-user"}, Mapping{Email, "X-Remote-User"})})
	want := http.Header{}
	if err := p.Set(want, alice, "app.example.test"); err != nil {
		t.Fatal(err)
	}
	rd := p.Render(alice)
	one, two := http.Header{}, http.Header{}
	for _, h := range []http.Header{one, two} {
		if err := rd.Set(h, "app.example.test"); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(one) != fmt.Sprint(want) || want.Get("X-Remote-User") != "alice@example.test" {
		t.Fatalf("rendered %v, Set %v", one, want)
	}
	one.Add("X-Auth-Request-User", "admin")
	if v := two.Values("X-Auth-Request-User"); len(v) != 1 || v[0] != "alice" {
		t.Fatalf("another answer changed: %q", v)
	}
	if v := rd.headers[0].value; len(v) != 1 || v[0] != "alice" {
		t.Fatalf("the rendered value changed: %q", v)
	}
}
