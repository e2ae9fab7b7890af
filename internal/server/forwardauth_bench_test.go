package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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
// Each target runs for half a second, then the next, in twelve rounds: a load on the
// shared machine that comes and goes hits every target alike. Rates and ratios are
// over all rounds; p50 and p99 are the medians of the rounds'.
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
	// The same two with an upstream that answers "ok" whatever it receives: the
	// echo's work grows with the identity headers it echoes, this one's does not.
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }))
	b.Cleanup(static.Close)
	withStatic := *s
	withStatic.upstream = static
	nStatic := withStatic.nginx(b, true)
	aloneStatic := testrealm.StartNginxWith(b, testrealm.NginxConfig{Server: "    server_name app.example.test;\n    location / {\n      proxy_pass " + static.URL + ";\n    }\n"})
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

	targets := []benchTarget{
		// The floor gets the cookie target's request: same headers, same size.
		{name: "kerbgate-floor", o: loadgen.Options{URL: s.g.url("127.0.0.1", "/healthz"), Header: plain, Cookie: c1}},
		{name: "forward-auth-cookie", o: loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: plain, Cookie: c1}},
		{name: "forward-auth-cookie+assertion", o: loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Cookie: c1}},
		{name: "forward-auth-cookie-uncached", o: loadgen.Options{URL: uncached.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: plain, Cookie: c2}},
		{name: "nginx-alone", o: loadgen.Options{URL: app(alone.Port), Cookie: c1}, nginx: alone},
		{name: "nginx+forward-auth-cookie", o: loadgen.Options{URL: app(n.Port), Cookie: c1}, nginx: n},
		{name: "nginx-alone, static upstream", o: loadgen.Options{URL: app(aloneStatic.Port), Cookie: c1}, nginx: aloneStatic},
		{name: "nginx+forward-auth-cookie, static upstream", o: loadgen.Options{URL: app(nStatic.Port), Cookie: c1}, nginx: nStatic},
		{name: "forward-auth-negotiate", o: loadgen.Options{URL: s.g.url("127.0.0.1", "/forward-auth/auth-request"), Header: forwarded, Credential: cred}},
		{name: "nginx+forward-auth-negotiate", o: loadgen.Options{URL: app(n.Port), Credential: cred}},
		{name: "apache-negotiate", o: loadgen.Options{URL: apache.URL + "/private/", Credential: cred}},
	}
	const rounds = 12
	results := runRounds(b, targets, rounds, 500*time.Millisecond)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n| target (16 connections, %d alternating rounds of 0.5 s; p50 and p99: medians of the rounds') | req/s | p50 | p99 | CPU per request: nginx / this process (kerbgate, load generator, upstream) |\n|---|---|---|---|---|\n", rounds)
	for _, tg := range targets {
		rs := results[tg.name]
		cpu := ""
		if tg.nginx != nil {
			nc, sc := rs.cpuPerRequest()
			cpu = fmt.Sprintf("%.0f µs / %.0f µs", nc, sc)
		}
		fmt.Fprintf(&tbl, "| %s | %.0f | %s | %s | %s |\n", tg.name, rs.rate(), rs.medianDuration(p50), rs.medianDuration(p99), cpu)
	}
	fl := results["kerbgate-floor"]
	ratio := func(a, b string) float64 { return 100 * results[a].ratio(results[b]) }
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers / kerbgate floor (/healthz, same request headers): %.0f %% (p99 %s; floor's %s)\n",
		ratio("forward-auth-cookie", "kerbgate-floor"), results["forward-auth-cookie"].medianDuration(p99), fl.medianDuration(p99))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers and the assertion / floor: %.0f %% (p99 %s)\n",
		ratio("forward-auth-cookie+assertion", "kerbgate-floor"), results["forward-auth-cookie+assertion"].medianDuration(p99))
	fmt.Fprintf(&tbl, "forward-auth with a session cookie, default headers, session_cache_ttl 0s (the store read each time) / floor: %.0f %% (p99 %s)\n",
		ratio("forward-auth-cookie-uncached", "kerbgate-floor"), results["forward-auth-cookie-uncached"].medianDuration(p99))
	fmt.Fprintf(&tbl, "nginx + kerbgate forward-auth (cookie) / nginx alone, echo upstream: %.0f %%\n", ratio("nginx+forward-auth-cookie", "nginx-alone"))
	fmt.Fprintf(&tbl, "nginx + kerbgate forward-auth (cookie) / nginx alone, static upstream: %.0f %%\n", ratio("nginx+forward-auth-cookie, static upstream", "nginx-alone, static upstream"))
	fmt.Fprintf(&tbl, "fresh Negotiate: nginx + kerbgate forward-auth / Apache mod_auth_gssapi: %.2f×\n", results["nginx+forward-auth-negotiate"].ratio(results["apache-negotiate"]))
	fmt.Print(tbl.String())
	b.ReportMetric(results["forward-auth-cookie"].ratio(fl), "cookie/floor")
	b.ReportMetric(results["nginx+forward-auth-cookie"].ratio(results["nginx-alone"]), "nginx+fa/nginx")
	if rev := os.Getenv("KERBGATE_BENCH_BASELINE"); rev != "" {
		benchForwardAuthBaseline(b, r, rev, cc)
	}
}

// benchTarget is one load of a benchmark table; with nginx, the CPU time nginx
// and this process spend per request is measured too.
type benchTarget struct {
	name  string
	o     loadgen.Options
	nginx *testrealm.Nginx
}

// roundResult is one round of one target.
type roundResult struct {
	*loadgen.Result
	nginxCPU, selfCPU time.Duration // used during the round
}

// rounds are a target's results, one per round.
type rounds []roundResult

func p50(r roundResult) float64 { return float64(r.P50) }
func p99(r roundResult) float64 { return float64(r.P99) }

func (rs rounds) median(f func(roundResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (rs rounds) medianDuration(f func(roundResult) float64) time.Duration {
	return time.Duration(rs.median(f)).Round(10 * time.Microsecond)
}

// rate is the target's requests per second over all its rounds.
func (rs rounds) rate() float64 {
	var n int
	var d time.Duration
	for _, r := range rs {
		n, d = n+r.Requests, d+r.Elapsed
	}
	return float64(n) / d.Seconds()
}

// ratio is rs's rate over base's. The rounds are short and alternate, so a load
// on the shared machine that comes and goes hits both alike.
func (rs rounds) ratio(base rounds) float64 { return rs.rate() / base.rate() }

// cpuPerRequest is the nginx and this process's processor time per request, in µs.
func (rs rounds) cpuPerRequest() (nginx, self float64) {
	var n int
	var nd, sd time.Duration
	for _, r := range rs {
		n, nd, sd = n+r.Requests, nd+r.nginxCPU, sd+r.selfCPU
	}
	return float64(nd.Microseconds()) / float64(n), float64(sd.Microseconds()) / float64(n)
}

// runRounds runs every target for d, 16 connections, round after round.
func runRounds(b *testing.B, targets []benchTarget, n int, d time.Duration) map[string]rounds {
	b.Helper()
	results := map[string]rounds{}
	for round := 0; round < n; round++ {
		for _, tg := range targets {
			o := tg.o
			o.Connections, o.Duration = 16, d
			var n0, s0 time.Duration
			if tg.nginx != nil {
				n0, s0 = tg.nginx.CPU(), selfCPU()
			}
			res, err := loadgen.Run(context.Background(), o)
			if err != nil {
				b.Fatalf("%s: %v", tg.name, err)
			}
			if res.Errors > 0 || res.Status[200] != res.Requests {
				b.Fatalf("%s: %s", tg.name, res)
			}
			rr := roundResult{Result: res}
			if tg.nginx != nil {
				rr.nginxCPU, rr.selfCPU = tg.nginx.CPU()-n0, selfCPU()-s0
			}
			results[tg.name] = append(results[tg.name], rr)
		}
	}
	return results
}

// selfCPU is the processor time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
	var p, c [2]proc
	for i, side := range []string{"before", "after"} {
		p[i], c[i] = start(side, ""), start(side, "  session_cache_ttl: 2s\n")
	}
	names := []string{"floor (/healthz, the cookie request's headers)", "forward-auth cookie, default headers, defaults",
		"forward-auth cookie, headers + assertion, defaults", "forward-auth cookie, headers + assertion, session_cache_ttl 2s"}
	// Before and after of each target one after the other: a passing load on the
	// shared machine hits both alike.
	var targets []benchTarget
	for i, name := range names {
		for j, side := range []string{"before", "after"} {
			o := loadgen.Options{URL: p[j].base + "/forward-auth/auth-request", Header: plain, Cookie: p[j].cookie}
			switch i {
			case 0:
				o.URL = p[j].base + "/healthz"
			case 2:
				o.Header = withAssertion
			case 3:
				o = loadgen.Options{URL: c[j].base + "/forward-auth/auth-request", Header: withAssertion, Cookie: c[j].cookie}
			}
			targets = append(targets, benchTarget{name: side + " " + name, o: o})
		}
	}
	const rounds = 12
	results := runRounds(b, targets, rounds, 500*time.Millisecond)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\nkerbgate %s (before) and this tree (after), each its own process with the same configuration file; 16 connections, %d alternating rounds of 0.5 s:\n\n", rev, rounds)
	fmt.Fprintf(&tbl, "| target | before req/s | p99 | after req/s | p99 | after/before | before / its floor | after / its floor |\n|---|---|---|---|---|---|---|---|\n")
	for _, name := range names {
		bf, af := results["before "+name], results["after "+name]
		fmt.Fprintf(&tbl, "| %s | %.0f | %s | %.0f | %s | %.2f× | %.0f %% | %.0f %% |\n", name, bf.rate(), bf.medianDuration(p99), af.rate(), af.medianDuration(p99),
			af.ratio(bf), 100*bf.ratio(results["before "+names[0]]), 100*af.ratio(results["after "+names[0]]))
	}
	fmt.Println(tbl.String())
}
