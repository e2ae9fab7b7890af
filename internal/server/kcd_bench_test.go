package server

import (
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkProxyKCD measures, in one run, a KCD route (IWA pre-auth by proxy session
// cookie, a delegated ticket from the cache and a fresh authenticator per request)
// to an upstream that verifies Kerberos cheaply — a second kerbgate serving /whoami
// as HTTP/app.example.test — against a passthrough route to that upstream's
// unauthenticated /healthz, and, for reference, the KCD route to Apache
// mod_auth_gssapi. 32 concurrent clients.
//
//	go test -run '^$' -bench ProxyKCD -benchtime 20000x ./internal/server
func BenchmarkProxyKCD(b *testing.B) {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	upCfg := baseConfig(r)
	upCfg.Kerberos.Keytabs = []string{r.AppKeytab}
	upCfg.Kerberos.SPNs = []string{"HTTP/app.example.test"}
	upCfg.Log.Level = slog.LevelInfo
	up := startGateway(b, upCfg)
	apache := r.StartApache(b, testrealm.ApacheOptions{})

	cfg := kcdConfig(b, r, up.url("127.0.0.1", ""), "svc-gw", r.GatewayAccountKeytab)
	kcdApp := cfg.Proxy.Apps[2] // sam_account_name, raw Kerberos token, send always
	apacheApp := kcdApp
	apacheApp.ID, apacheApp.PathPrefix, apacheApp.Upstream = "apache", "/apps/apache/", mustURL(b, apache.URL)
	pass := config.ProxyApp{ID: "pass", Host: "sso.example.test", PathPrefix: "/apps/pass/", Upstream: mustURL(b, up.url("127.0.0.1", "")),
		Timeout: 10 * time.Second, PreAuth: "passthrough"}
	cfg.Proxy.Apps = []config.ProxyApp{kcdApp, apacheApp, pass}
	cfg.Log.Level = slog.LevelInfo // as in production: no per-request debug lines
	g := startGateway(b, cfg)

	alice := r.Kinit(b, "alice")
	cookies := map[string]*http.Cookie{}
	for _, app := range []string{"sam", "apache"} {
		jar := filepath.Join(b.TempDir(), "jar")
		if c := g.curl(r, alice, "", g.url("sso.example.test", "/apps/"+app+"/whoami"), "-c", jar); c.status != 200 {
			b.Fatalf("%s: %d %s", app, c.status, c.headers.Get("Kerbgate-Reason"))
		}
		cookies[app] = proxyCookie(b, jar)
	}

	for _, c := range []struct{ name, path, app string }{
		{"passthrough-healthz", "/apps/pass/healthz", ""},
		{"kcd-kerbgate-upstream", "/apps/sam/whoami", "sam"},
		{"kcd-apache-upstream", "/apps/apache/whoami", "apache"},
	} {
		b.Run(c.name, func(b *testing.B) {
			url := g.url("127.0.0.1", c.path)
			var (
				mu   sync.Mutex
				lat  = make([]time.Duration, 0, b.N)
				fail int
			)
			transport := &http.Transport{MaxIdleConnsPerHost: 64}
			b.SetParallelism(16) // 32 clients on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: transport}
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.Host = "sso.example.test"
					if c.app != "" {
						req.AddCookie(cookies[c.app])
					}
					t0 := time.Now()
					resp, err := client.Do(req)
					ok := err == nil && resp.StatusCode == 200
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					if !ok {
						fail++
					}
					mu.Unlock()
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if fail > 0 {
				b.Fatalf("%d of %d requests failed", fail, b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
