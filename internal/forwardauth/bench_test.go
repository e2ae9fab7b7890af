package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/idheaders"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store"
)

// benchIdentity is a user in 20 groups (groupNamer names them).
func benchIdentity() identity.Identity {
	id := identity.Identity{Principal: "bob@EXAMPLE.TEST", UPN: "bob@example.test", SAMAccountName: "bob", Realm: "EXAMPLE.TEST",
		Mail: "bob@example.test", SID: "S-1-5-21-1-2-3-1106", AuthMethod: "kerberos"}
	for i := 0; i < 20; i++ {
		id.Groups = append(id.Groups, fmt.Sprintf("S-1-5-21-1-2-3-%d", 2000+i))
	}
	return id
}

// groupNamer names the groups of benchIdentity, as the directory does at sign-in.
type groupNamer struct{}

func (groupNamer) Check(context.Context, *identity.Identity) (*directory.User, error) {
	return nil, errors.New("not asked: no require_directory")
}

func (groupNamer) GroupNames(_ context.Context, sids []string) ([]string, error) {
	names := make([]string, len(sids))
	for i, sid := range sids {
		var n int
		fmt.Sscanf(sid, "S-1-5-21-1-2-3-%d", &n)
		names[i] = fmt.Sprintf("group-%02d", n-2000)
	}
	return names, nil
}

// discard is a ResponseWriter that keeps only the status: the benchmark measures
// the handler, not the HTTP stack that writes its answer.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkAuthWithCookie is the forward-auth hot path alone, without HTTP: the
// handler, behind the front end's middleware as it is served, answering nginx's
// subrequest with a valid session cookie for a user in 20 named groups, with the
// default headers (and the signed assertion). The session is in the bbolt store,
// read on every request ("bolt") or through the node's session cache
// ("bolt+cache"). The request is made once: its parsing is the HTTP server's.
//
//	go test -run '^$' -bench AuthWithCookie -benchmem ./internal/forwardauth
func BenchmarkAuthWithCookie(b *testing.B) {
	for _, cacheTTL := range []time.Duration{0, 2 * time.Second} {
		for _, assertion := range []bool{false, true} {
			name := "bolt"
			if cacheTTL > 0 {
				name += "+cache"
			}
			name += map[bool]string{false: "/headers", true: "/headers+assertion"}[assertion]
			b.Run(name, func(b *testing.B) {
				benchAuthWithCookie(b, cacheTTL, assertion)
			})
		}
	}
}

func benchAuthWithCookie(b *testing.B, cacheTTL time.Duration, assertion bool) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := newHarness(b, func(o *Options) {
		o.Store, o.SessionCacheTTL, o.Directory = st, cacheTTL, groupNamer{}
		p := &idheaders.Policy{Headers: idheaders.Defaults(), Groups: signin.GroupFilter{Max: 150}}
		if assertion {
			path := filepath.Join(b.TempDir(), "keys.json")
			if _, err := signingkeys.Add(path, time.Now()); err != nil {
				b.Fatal(err)
			}
			keys, err := signingkeys.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			p.Assertion = &idheaders.Assertion{TTL: time.Minute, Issuer: "https://sso.example.test/oidc", Keys: keys}
		}
		if err := p.Prepare(); err != nil {
			b.Fatal(err)
		}
		o.Hosts[0].Headers = p
	})
	h.signIn.Identity = benchIdentity()
	w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", nil)
	c := w.Result().Cookies()[0]

	r := httptest.NewRequest("GET", AuthRequestPath, nil)
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Set("X-Forwarded-Host", "app.example.test")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Uri", "/page?x=1")
	r.Header.Set("X-Forwarded-Method", "GET")
	r.Header.Set("Cookie", "other=1; "+c.Name+"="+c.Value)
	d := &discard{h: http.Header{}}
	h.h.ServeHTTP(d, r)
	if d.code != 200 || d.h.Get("X-Auth-Request-Groups") == "" {
		b.Fatalf("%d %v", d.code, d.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(d.h)
		d.code = 0
		h.h.ServeHTTP(d, r)
		if d.code != 200 {
			b.Fatal(d.code)
		}
	}
}
