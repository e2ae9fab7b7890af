package server

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/loadgen"
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
			o := loadgen.Options{URL: g.url("127.0.0.1", c.path), Host: "sso.example.test", Connections: 32, Requests: b.N}
			if c.app != "" {
				o.Cookie = cookies[c.app].Name + "=" + cookies[c.app].Value
			}
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), o)
			b.StopTimer()
			if err != nil || res.Errors > 0 || res.Status[200] != res.Requests {
				b.Fatalf("%v %v", err, res)
			}
			b.ReportMetric(res.RPS, "req/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
}
