package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/loadgen"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkCompare is the side-by-side table of docs/PERFORMANCE.md: the same load
// (16 connections, a fresh authenticator per request, the same keytab and SPN)
// against Apache mod_auth_gssapi and kerbgate, kerbgate's unauthenticated /healthz
// (the HTTP floor) and kerbgate with a session cookie, in alternating rounds so that
// machine drift hits every target.
//
//	go test -run '^$' -bench Compare -benchtime 1x ./internal/server   (scripts/bench.sh)
func BenchmarkCompare(b *testing.B) {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	apache := r.StartApache(b, testrealm.ApacheOptions{Keytab: r.GatewayKeytab})
	cfg := handoffConfig(b, r, "http://app.example.test:9")
	cfg.Log.Level = slog.LevelInfo
	cfg.Directory.CacheTTL = time.Minute
	g := startGateway(b, cfg)
	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, testrealm.GatewaySPN)
	cred, err := initiator.FromCCache(cc, testrealm.GatewaySPN)
	if err != nil {
		b.Fatal(err)
	}
	// kerbgate's browser session cookie, from one real sign-in at /sso/login.
	req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/sso/login?app=demo"), nil)
	req.Header.Set("Authorization", negotiateHeader(b, cc, testrealm.GatewaySPN, initiator.Options{}))
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil || resp.StatusCode != 302 || len(resp.Cookies()) == 0 {
		b.Fatalf("login for the session cookie: %v %v", err, resp)
	}
	cookie := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value

	rate, _ := loadgen.TokenRate(cred, time.Second)
	targets := []struct {
		name string
		o    loadgen.Options
	}{
		{"apache-negotiate", loadgen.Options{URL: apache.URL + "/private/", Credential: cred}},
		{"kerbgate-negotiate", loadgen.Options{URL: g.url("127.0.0.1", "/whoami"), Credential: cred}},
		{"kerbgate-floor", loadgen.Options{URL: g.url("127.0.0.1", "/healthz")}},
		{"kerbgate-session-cookie", loadgen.Options{URL: g.url("127.0.0.1", "/sso/login?app=demo"), Cookie: cookie}},
	}
	const rounds = 2
	results := map[string][]*loadgen.Result{}
	for round := 0; round < rounds; round++ {
		for _, tg := range targets {
			o := tg.o
			o.Connections, o.Duration = 16, 4*time.Second
			res, err := loadgen.Run(context.Background(), o)
			if err != nil {
				b.Fatalf("%s: %v", tg.name, err)
			}
			ok := res.Status[200] + res.Status[302]
			if res.Errors > 0 || ok != res.Requests {
				b.Fatalf("%s: %s", tg.name, res)
			}
			results[tg.name] = append(results[tg.name], res)
		}
	}
	best := func(name string) *loadgen.Result {
		var m *loadgen.Result
		for _, r := range results[name] {
			if m == nil || r.RPS > m.RPS {
				m = r
			}
		}
		return m
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n| target (16 connections, best of %d alternating 4 s rounds) | req/s | p50 | p99 |\n|---|---|---|---|\n", rounds)
	for _, tg := range targets {
		for i, res := range results[tg.name] {
			fmt.Fprintf(&tbl, "| %s (round %d) | %.0f | %s | %s |\n", tg.name, i+1, res.RPS, res.P50.Round(10*time.Microsecond), res.P99.Round(10*time.Microsecond))
		}
	}
	kn, ap, fl, ck := best("kerbgate-negotiate").RPS, best("apache-negotiate").RPS, best("kerbgate-floor").RPS, best("kerbgate-session-cookie").RPS
	fmt.Fprintf(&tbl, "\nkerbgate Negotiate / Apache mod_auth_gssapi: %.2f×\n", kn/ap)
	fmt.Fprintf(&tbl, "kerbgate Negotiate / kerbgate floor (/healthz): %.0f %%\n", 100*kn/fl)
	fmt.Fprintf(&tbl, "kerbgate session cookie (/sso/login, 302 with a token) / floor: %.0f %%\n", 100*ck/fl)
	fmt.Fprintf(&tbl, "load generator token rate (one core): %.0f tokens/s\n", rate)
	fmt.Fprintf(&tbl, "\n| kerbgate Negotiate, connections | req/s | p50 | p99 |\n|---|---|---|---|\n")
	for _, n := range []int{1, 16, 64} {
		res, err := loadgen.Run(context.Background(), loadgen.Options{URL: g.url("127.0.0.1", "/whoami"), Credential: cred, Connections: n, Duration: 3 * time.Second})
		if err != nil || res.Errors > 0 {
			b.Fatalf("%d connections: %v %v", n, err, res)
		}
		fmt.Fprintf(&tbl, "| %d | %.0f | %s | %s |\n", n, res.RPS, res.P50.Round(10*time.Microsecond), res.P99.Round(10*time.Microsecond))
	}
	fmt.Print(tbl.String())
	b.ReportMetric(kn/ap, "kerbgate/apache")
	b.ReportMetric(kn/fl, "negotiate/floor")
}

// The load generator makes a fresh authenticator for every request: a few hundred
// requests against a real kerbgate all sign in, none is a replay.
func TestLoadgenSendsFreshTokens(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)
	cred, err := initiator.FromCCache(cc, testrealm.GatewaySPN)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []bool{false, true} {
		res, err := loadgen.Run(context.Background(), loadgen.Options{URL: g.url("127.0.0.1", "/whoami"), Credential: cred, Raw: raw, Connections: 8, Requests: 300})
		if err != nil || res.Requests != 300 || res.Status[200] != 300 {
			t.Fatalf("raw=%v: %v %v", raw, err, res)
		}
	}
	if n := g.counter(t, "kerbgate_refusals_total", "reason", "replay"); n != 0 {
		t.Fatalf("%v replays", n)
	}
	// A ticket from a password (or keytab) through the KDC instead of a ccache.
	pw, err := loadgen.CredentialFromKeytab("alice", "EXAMPLE.TEST", "", testrealm.Password("alice"), testrealm.GatewaySPN, []string{"127.0.0.1:88"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := loadgen.Run(context.Background(), loadgen.Options{URL: g.url("127.0.0.1", "/whoami"), Credential: pw, Requests: 50}); err != nil || res.Status[200] != 50 {
		t.Fatalf("password ticket: %v %v", err, res)
	}
	// The generator measures its own token rate (printed by kerbgate bench); here it
	// must make tokens at all. How fast is a figure for the benchmarks, not a test.
	rate, err := loadgen.TokenRate(cred, 200*time.Millisecond)
	if err != nil || rate <= 0 {
		t.Fatalf("token rate %v %v", rate, err)
	}
}
