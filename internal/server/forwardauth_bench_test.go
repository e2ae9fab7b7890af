package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/loadgen"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkForwardAuth is the forward-auth table of docs/forward-auth.md and
// docs/PERFORMANCE.md, side by side in one run (16 connections, alternating rounds):
//
//   - the hot path, a request with a valid session cookie, asked of kerbgate as
//     nginx asks it, against kerbgate's /healthz floor; with the session read from
//     the store (bbolt) on every request, and with session_cache_ttl;
//
//   - nginx + kerbgate forward-auth (the documented snippet) against nginx alone,
//     in front of the same upstream;
//
//   - a fresh Negotiate through nginx + kerbgate (a new authenticator per request,
//     a session started each time) beside Apache mod_auth_gssapi with the same
//     keytab and SPN.
//
//     go test -run '^$' -bench ForwardAuth -benchtime 1x ./internal/server   (scripts/bench.sh)
func BenchmarkForwardAuth(b *testing.B) {
	r := testrealm.Require(b)
	recordSecrets = false
	defer func() { recordSecrets = true }()
	quiet := func(c *config.Config) {
		c.Log.Level = slog.LevelInfo
		c.Directory.CacheTTL = time.Minute
		// A host with the default headers only, beside app.example.test's assertion.
		c.ForwardAuth.Hosts = append(c.ForwardAuth.Hosts, config.ForwardAuthHost{Host: "plain.example.test", SignIn: "negotiate",
			IdentityHeaders: config.IdentityHeaders{Headers: config.DefaultHeaders(), GroupNames: config.GroupNames{Max: config.DefaultGroupNamesMax}}})
	}
	s := startForwardAuth(b, r, quiet)
	cached := startForwardAuth(b, r, quiet, func(c *config.Config) { c.ForwardAuth.SessionCacheTTL = 2 * time.Second })
	n := s.nginx(b, true)
	alone := testrealm.StartNginxWith(b, testrealm.NginxConfig{Server: "    server_name app.example.test;\n    location / {\n      proxy_pass " + s.upstream.URL + ";\n    }\n"})
	apache := r.StartApache(b, testrealm.ApacheOptions{Keytab: r.AppKeytab})

	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, testrealm.AppSPN)
	cred, err := initiator.FromCCache(cc, testrealm.AppSPN)
	if err != nil {
		b.Fatal(err)
	}
	forwarded := http.Header{"X-Forwarded-Host": {"app.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	cookie := func(g *gateway) string {
		req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/forward-auth/auth-request"), nil)
		req.Header = forwarded.Clone()
		req.Header.Set("Authorization", negotiateHeader(b, cc, testrealm.AppSPN, initiator.Options{}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 || len(resp.Cookies()) == 0 {
			b.Fatalf("sign-in for the cookie: %v %v", err, resp)
		}
		resp.Body.Close()
		return resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	}
	c1, c2 := cookie(s.g), cookie(cached.g)
	plain := http.Header{"X-Forwarded-Host": {"plain.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	app := func(port int) string { return fmt.Sprintf("http://app.example.test:%d/", port) }

	targets := []struct {
		name string
		o    loadgen.Options
	}{
		{"kerbgate-floor", loadgen.Options{URL: s.g.url("127.0.0.1", "/healthz")}},
		{"forward-auth-cookie", loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: plain, Cookie: c1}},
		{"forward-auth-cookie+assertion", loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Cookie: c1}},
		{"forward-auth-cookie-cached", loadgen.Options{URL: cached.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Cookie: c2}},
		{"nginx-alone", loadgen.Options{URL: app(alone.Port)}},
		{"nginx+forward-auth-cookie", loadgen.Options{URL: app(n.Port), Cookie: c1}},
		{"forward-auth-negotiate", loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Credential: cred}},
		{"nginx+forward-auth-negotiate", loadgen.Options{URL: app(n.Port), Credential: cred}},
		{"apache-negotiate", loadgen.Options{URL: apache.URL + "/private/", Credential: cred}},
	}
	const rounds = 2
	results := map[string][]*loadgen.Result{}
	for round := 0; round < rounds; round++ {
		for _, tg := range targets {
			o := tg.o
			o.Connections, o.Duration = 16, 3*time.Second
			res, err := loadgen.Run(context.Background(), o)
			if err != nil {
				b.Fatalf("%s: %v", tg.name, err)
			}
			if res.Errors > 0 || res.Status[200] != res.Requests {
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
	fmt.Fprintf(&tbl, "\n| target (16 connections, %d alternating 3 s rounds) | req/s | p50 | p99 |\n|---|---|---|---|\n", rounds)
	for _, tg := range targets {
		for i, res := range results[tg.name] {
			fmt.Fprintf(&tbl, "| %s (round %d) | %.0f | %s | %s |\n", tg.name, i+1, res.RPS, res.P50.Round(10*time.Microsecond), res.P99.Round(10*time.Microsecond))
		}
	}
	fl, fa, fj, fc := best("kerbgate-floor"), best("forward-auth-cookie"), best("forward-auth-cookie+assertion"), best("forward-auth-cookie-cached")
	na, nf := best("nginx-alone"), best("nginx+forward-auth-cookie")
	nn, ap := best("nginx+forward-auth-negotiate"), best("apache-negotiate")
	fmt.Fprintf(&tbl, "\nforward-auth with a session cookie, default headers / kerbgate floor (/healthz): %.0f %% (p99 %s)\n", 100*fa.RPS/fl.RPS, fa.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers and the assertion / floor: %.0f %% (p99 %s)\n", 100*fj.RPS/fl.RPS, fj.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, headers and assertion, session_cache_ttl 2s / floor: %.0f %% (p99 %s)\n", 100*fc.RPS/fl.RPS, fc.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "nginx + kerbgate forward-auth (cookie) / nginx alone: %.0f %%\n", 100*nf.RPS/na.RPS)
	fmt.Fprintf(&tbl, "fresh Negotiate: nginx + kerbgate forward-auth / Apache mod_auth_gssapi: %.2f×\n", nn.RPS/ap.RPS)
	fmt.Print(tbl.String())
	b.ReportMetric(fa.RPS/fl.RPS, "cookie/floor")
	b.ReportMetric(nf.RPS/na.RPS, "nginx+fa/nginx")
}
