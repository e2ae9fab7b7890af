package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/loadgen"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkForwardAuth is the forward-auth table of docs/forward-auth.md and
// docs/PERFORMANCE.md, side by side in one run (16 connections, alternating rounds):
//
//   - the hot path, a request with a valid session cookie, asked of kerbgate as
//     nginx asks it, against kerbgate's /healthz floor asked with the very same
//     request headers (cookie and X-Forwarded-*, keep-alive); with the defaults
//     (session_cache_ttl 1s), with the assertion, and with the store read on every
//     request (session_cache_ttl 0s);
//
//   - nginx + kerbgate forward-auth (the documented snippet) against nginx alone,
//     in front of the same upstream, both sent the same cookie;
//
//   - a fresh Negotiate through nginx + kerbgate (a new authenticator per request,
//     a session started each time) beside Apache mod_auth_gssapi with the same
//     keytab and SPN.
//
//     go test -run '^$' -bench ForwardAuth -benchtime 1x ./internal/server   (scripts/bench.sh)
//
// With KERBGATE_BENCH_BASELINE=REV it also builds `kerbgate` at REV and from the
// working tree and runs both as processes with the same configuration file, and
// prints the cookie hot path and floor of each side by side (before and after).
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
	uncached := startForwardAuth(b, r, quiet, func(c *config.Config) { c.ForwardAuth.SessionCacheTTL = 0 })
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
	c1 := faBenchCookie(b, s.g.url("127.0.0.1", ""), cc)
	c2 := faBenchCookie(b, uncached.g.url("127.0.0.1", ""), cc)
	plain := http.Header{"X-Forwarded-Host": {"plain.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	app := func(port int) string { return fmt.Sprintf("http://app.example.test:%d/", port) }

	targets := []struct {
		name string
		o    loadgen.Options
	}{
		// The floor gets the cookie target's request: same headers, same size.
		{"kerbgate-floor", loadgen.Options{URL: s.g.url("127.0.0.1", "/healthz"), Header: plain, Cookie: c1}},
		{"forward-auth-cookie", loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: plain, Cookie: c1}},
		{"forward-auth-cookie+assertion", loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Cookie: c1}},
		{"forward-auth-cookie-uncached", loadgen.Options{URL: uncached.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: plain, Cookie: c2}},
		{"nginx-alone", loadgen.Options{URL: app(alone.Port), Cookie: c1}},
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
	fl, fa, fj, fu := best("kerbgate-floor"), best("forward-auth-cookie"), best("forward-auth-cookie+assertion"), best("forward-auth-cookie-uncached")
	na, nf := best("nginx-alone"), best("nginx+forward-auth-cookie")
	nn, ap := best("nginx+forward-auth-negotiate"), best("apache-negotiate")
	fmt.Fprintf(&tbl, "\nforward-auth with a session cookie, default headers / kerbgate floor (/healthz, same request headers): %.0f %% (p99 %s; floor's %s)\n", 100*fa.RPS/fl.RPS, fa.P99.Round(10*time.Microsecond), fl.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers and the assertion / floor: %.0f %% (p99 %s)\n", 100*fj.RPS/fl.RPS, fj.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers, session_cache_ttl 0s (the store read each time) / floor: %.0f %% (p99 %s)\n", 100*fu.RPS/fl.RPS, fu.P99.Round(10*time.Microsecond))
	fmt.Fprintf(&tbl, "nginx + kerbgate forward-auth (cookie) / nginx alone: %.0f %%\n", 100*nf.RPS/na.RPS)
	fmt.Fprintf(&tbl, "fresh Negotiate: nginx + kerbgate forward-auth / Apache mod_auth_gssapi: %.2f×\n", nn.RPS/ap.RPS)
	fmt.Print(tbl.String())
	b.ReportMetric(fa.RPS/fl.RPS, "cookie/floor")
	b.ReportMetric(nf.RPS/na.RPS, "nginx+fa/nginx")
	if rev := os.Getenv("KERBGATE_BENCH_BASELINE"); rev != "" {
		benchForwardAuthBaseline(b, r, rev, cc)
	}
}

// faBenchCookie signs alice in at the forward-auth endpoint of the kerbgate at base
// (Negotiate, as nginx forwards it) and returns her session cookie.
func faBenchCookie(b *testing.B, base, cc string) string {
	b.Helper()
	req, _ := http.NewRequest("GET", base+"/forward-auth/auth-request", nil)
	req.Header = http.Header{"X-Forwarded-Host": {"app.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	req.Header.Set("Authorization", negotiateHeader(b, cc, testrealm.AppSPN, initiator.Options{}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || len(resp.Cookies()) == 0 {
		b.Fatalf("sign-in for the cookie: %v %v", err, resp)
	}
	resp.Body.Close()
	return resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
}

// benchForwardAuthBaseline builds kerbgate at rev and from the working tree, runs
// each as a process with the same configuration file (and each again with
// session_cache_ttl: 2s), and prints the cookie hot path against each one's floor,
// side by side in alternating rounds.
func benchForwardAuthBaseline(b *testing.B, r *testrealm.Realm, rev, cc string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	tree := filepath.Join(b.TempDir(), "baseline")
	if out, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", tree, rev).CombinedOutput(); err != nil {
		b.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	b.Cleanup(func() { exec.Command("git", "-C", root, "worktree", "remove", "--force", tree).Run() })
	bins := map[string]string{"before": filepath.Join(b.TempDir(), "kerbgate-before"), "after": filepath.Join(b.TempDir(), "kerbgate-after")}
	for side, dir := range map[string]string{"before": tree, "after": root} {
		build := exec.Command("go", "build", "-o", bins[side], "./cmd/kerbgate")
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build (%s): %v\n%s", side, err, out)
		}
	}
	keys := filepath.Join(b.TempDir(), "oidc-keys.json")
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		b.Fatal(err)
	}
	type proc struct{ base, cookie string }
	start := func(side, cacheTTL string) proc {
		dir := b.TempDir()
		port := testrealm.FreePort(b)
		cfg := fmt.Sprintf(`listen:
  address: 127.0.0.1:%[1]d
  trusted_proxies: [127.0.0.1]
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [%[2]s, %[3]s]
  spns: [HTTP/sso.example.test, HTTP/app.example.test]
directory:
  url: ldaps://dc1.example.test:636
  ca_file: %[4]s
  tls_legacy_cn: true
  base_dn: %[5]s
  bind:
    method: simple
    dn: %[6]s
    password_file: %[7]s
  cache_ttl: 1m
  timeout: 3s
store:
  path: %[8]s/kerbgate.db
log:
  level: info
  format: json
oidc_provider:
  issuer: http://sso.example.test:%[1]d/oidc
  signing_keys_file: %[9]s
forward_auth:
  cookie_domain: example.test
  session_ttl: 1h
%[10]s  hosts:
    - host: app.example.test
      assertion: {header: X-Auth-Request-Assertion, ttl: 5m}
    - host: plain.example.test
`, port, r.GatewayKeytab, r.AppKeytab, r.CACert, testrealm.BaseDN, testrealm.LDAPBindDN, r.LDAPBindPasswordFile, dir, keys, cacheTTL)
		path := filepath.Join(dir, "kerbgate.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bins[side], "serve", "--config", path)
		logs, err := os.Create(filepath.Join(dir, "kerbgate.log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logs.Close() })
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		for i := 0; ; i++ {
			resp, err := http.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if i == 100 {
				out, _ := os.ReadFile(logs.Name())
				b.Fatalf("kerbgate (%s) did not come up: %v\n%s", side, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return proc{base: base, cookie: faBenchCookie(b, base, cc)}
	}
	plain := http.Header{"X-Forwarded-Host": {"plain.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	withAssertion := http.Header{"X-Forwarded-Host": {"app.example.test"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Uri": {"/"}}
	type target struct {
		name string
		o    [2]loadgen.Options // before, after
	}
	var targets []target
	var p, c [2]proc
	for i, side := range []string{"before", "after"} {
		p[i], c[i] = start(side, ""), start(side, "  session_cache_ttl: 2s\n")
	}
	add := func(name string, o func(p, c proc) loadgen.Options) {
		targets = append(targets, target{name, [2]loadgen.Options{o(p[0], c[0]), o(p[1], c[1])}})
	}
	add("floor (/healthz, the cookie request's headers)", func(p, _ proc) loadgen.Options {
		return loadgen.Options{URL: p.base + "/healthz", Header: plain, Cookie: p.cookie}
	})
	add("forward-auth cookie, default headers, defaults", func(p, _ proc) loadgen.Options {
		return loadgen.Options{URL: p.base + "/forward-auth/auth-request", Header: plain, Cookie: p.cookie}
	})
	add("forward-auth cookie, headers + assertion, defaults", func(p, _ proc) loadgen.Options {
		return loadgen.Options{URL: p.base + "/forward-auth/auth-request", Header: withAssertion, Cookie: p.cookie}
	})
	add("forward-auth cookie, headers + assertion, session_cache_ttl 2s", func(_, c proc) loadgen.Options {
		return loadgen.Options{URL: c.base + "/forward-auth/auth-request", Header: withAssertion, Cookie: c.cookie}
	})
	const rounds = 2
	results := map[string]*[2]*loadgen.Result{}
	for round := 0; round < rounds; round++ {
		for _, tg := range targets {
			for i := range tg.o {
				o := tg.o[i]
				o.Connections, o.Duration = 16, 3*time.Second
				res, err := loadgen.Run(context.Background(), o)
				if err != nil || res.Errors > 0 || res.Status[200] != res.Requests {
					b.Fatalf("%s (%d): %v %v", tg.name, i, err, res)
				}
				if results[tg.name] == nil {
					results[tg.name] = &[2]*loadgen.Result{}
				}
				if m := results[tg.name][i]; m == nil || res.RPS > m.RPS {
					results[tg.name][i] = res
				}
			}
		}
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\nkerbgate %s (before) and this tree (after), each its own process with the same configuration file; 16 connections, best of %d alternating 3 s rounds:\n\n", rev, rounds)
	fmt.Fprintf(&tbl, "| target | before req/s | p99 | after req/s | p99 | after/before |\n|---|---|---|---|---|---|\n")
	for _, tg := range targets {
		bf, af := results[tg.name][0], results[tg.name][1]
		fmt.Fprintf(&tbl, "| %s | %.0f | %s | %.0f | %s | %.2f× |\n", tg.name, bf.RPS, bf.P99.Round(10*time.Microsecond), af.RPS, af.P99.Round(10*time.Microsecond), af.RPS/bf.RPS)
	}
	floor := results[targets[0].name]
	for _, tg := range targets[1:] {
		fmt.Fprintf(&tbl, "\n%s / floor: before %.0f %%, after %.0f %%", tg.name, 100*results[tg.name][0].RPS/floor[0].RPS, 100*results[tg.name][1].RPS/floor[1].RPS)
	}
	fmt.Println(tbl.String())
}
