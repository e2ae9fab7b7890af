package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkHandoffHTTP measures the handoff over HTTP against a real kerbgate with
// the embedded (bbolt) store and the real directory: per operation, one
// GET /sso/login (browser session cookie, so no Negotiate round trip; directory check
// from its cache) that issues a token, and one POST /sso/redeem that consumes it and
// creates the app session. It reports issue+redeem pairs per second and the latency
// percentiles of a pair.
//
//	go test -run '^$' -bench HandoffHTTP -benchtime 2000x ./internal/server
func BenchmarkHandoffHTTP(b *testing.B) {
	r := testrealm.Require(b)
	cfg := handoffConfig(b, r, "http://app.example.test:9")
	cfg.Directory.CacheTTL = time.Minute
	g := startGateway(b, cfg)

	// One real Negotiate sign-in gives the browser session cookie.
	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, "HTTP/sso.example.test")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loginURL := g.url("127.0.0.1", "/sso/login?app=demo")
	req, _ := http.NewRequest("GET", loginURL, nil)
	req.Header.Set("Authorization", negotiateHeader(b, cc, "HTTP/sso.example.test", initiator.Options{}))
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 302 {
		b.Fatalf("first login: %v %v", err, resp)
	}
	resp.Body.Close()
	cookies := jar.Cookies(mustURL(b, loginURL))
	if len(cookies) == 0 {
		b.Fatal("no browser session cookie")
	}

	pair := func(c *http.Client) error {
		req, _ := http.NewRequest("GET", loginURL, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || err != nil {
			return errors.New("login: " + resp.Status)
		}
		form := url.Values{"ssoToken": {loc.Query().Get("ssoToken")}}
		req, _ = http.NewRequest("POST", g.url("127.0.0.1", "/sso/redeem"), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo", demoSecret)
		resp, err = c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New("redeem: " + resp.Status)
		}
		return nil
	}
	if err := pair(client); err != nil { // warm the secret and directory caches
		b.Fatal(err)
	}

	var (
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, b.N)
		first error
	)
	b.SetParallelism(4) // 8 concurrent clients on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := &http.Client{CheckRedirect: client.CheckRedirect}
		for pb.Next() {
			t0 := time.Now()
			err := pair(c)
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "pairs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
