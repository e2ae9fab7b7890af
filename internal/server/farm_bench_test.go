package server

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkFarmNegotiate measures Negotiate sign-ins (a fresh authenticator per
// request, GET /whoami) with the in-memory replay cache on one node, the Redis
// replay cache on one node, and three nodes behind HAProxy sharing Redis, in one run.
// Tokens are made before the timer starts. It reports sign-ins per second and
// latency percentiles at 16 concurrent clients.
//
//	go test -run '^$' -bench FarmNegotiate -benchtime 20000x ./internal/server
func BenchmarkFarmNegotiate(b *testing.B) {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, testrealm.GatewaySPN)
	redis := redistest.Start(b, redistest.Options{})

	memory := startGateway(b, baseConfig(r))
	oneRedis := startGateway(b, withRedis(baseConfig(r), redis))
	var backends []string
	for i := 0; i < 3; i++ {
		g := startGateway(b, withRedis(baseConfig(r), redis))
		backends = append(backends, fmt.Sprintf("127.0.0.1:%d", g.port))
	}
	lb := testrealm.StartHAProxy(b, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTCP, Backends: backends})

	for _, c := range []struct{ name, url string }{
		{"memory-replay-1node", memory.url("127.0.0.1", "/whoami")},
		{"redis-replay-1node", oneRedis.url("127.0.0.1", "/whoami")},
		{"redis-replay-3nodes-haproxy", fmt.Sprintf("http://127.0.0.1:%d/whoami", lb.Port)},
	} {
		b.Run(c.name, func(b *testing.B) {
			headers := make([]string, b.N)
			for i := range headers {
				headers[i] = negotiateHeader(b, cc, testrealm.GatewaySPN, initiator.Options{})
			}
			var (
				mu   sync.Mutex
				lat  = make([]time.Duration, 0, b.N)
				next int
				fail int
			)
			b.SetParallelism(8) // 16 clients on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
				for pb.Next() {
					mu.Lock()
					h := headers[next]
					next++
					mu.Unlock()
					req, _ := http.NewRequest("GET", c.url, nil)
					req.Header.Set("Authorization", h)
					t0 := time.Now()
					resp, err := client.Do(req)
					d := time.Since(t0)
					ok := err == nil && resp.StatusCode == 200
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
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
				b.Fatalf("%d of %d sign-ins failed", fail, b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "signins/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
