package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkRedeemFlood is issue 13's measurement of the client-secret check under
// attack: a real `kerbgate serve` process (built from cmd/kerbgate), FLOOD
// concurrent clients (500 by default; KERBGATE_FLOOD overrides) sending bad-secret
// POST /sso/redeem in a loop for KERBGATE_FLOOD_SECONDS (10), half with an unknown
// client id and half with the good app's id and a wrong secret, while one good
// client signs in (browser session cookie) and redeems its ssoToken in a loop. It
// samples the server's VmRSS and VmHWM from /proc/PID/status every 20 ms and prints
// the peak, the answers the flood got, and the good client's redeem p50/p99.
// A server whose RSS passes 4 GiB is killed (the run reports it) so that the
// measurement cannot take the machine down.
//
//	go test -run '^$' -bench RedeemFlood -benchtime 1x ./internal/server
func BenchmarkRedeemFlood(b *testing.B) {
	r := testrealm.Require(b)
	flood := envInt("KERBGATE_FLOOD", 500)
	seconds := envInt("KERBGATE_FLOOD_SECONDS", 10)
	dir := b.TempDir()
	bin := testrealm.GoBuild(b, "../../cmd/kerbgate")
	port := testrealm.FreePort(b)
	dh, _ := secretHashes(b)
	cfg := fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [%s]
  spns: [HTTP/sso.example.test]
store:
  path: %s
sso:
  apps:
    - id: demo
      redirect_uris: [http://app.example.test:9/callback]
      secret_hash: '%s'
log:
  level: error
  format: json
  expose_reasons: true
`, port, r.GatewayKeytab, filepath.Join(dir, "kerbgate.db"), dh)
	path := filepath.Join(dir, "kerbgate.yaml")
	mustWriteFile(b, path, cfg)
	srv := exec.Command(bin, "serve", "--config", path)
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			b.Fatalf("kerbgate did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The good client: one Negotiate sign-in gives the browser session cookie.
	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, "HTTP/sso.example.test")
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	good := &http.Client{CheckRedirect: noRedirect, Transport: &http.Transport{}}
	req, _ := http.NewRequest("GET", base+"/sso/login?app=demo", nil)
	req.Header.Set("Authorization", negotiateHeader(b, cc, "HTTP/sso.example.test", initiator.Options{}))
	resp, err := good.Do(req)
	if err != nil || resp.StatusCode != 302 {
		b.Fatalf("sign-in: %v %v\n%s", err, resp, logs.String())
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	redeemOnce := func() (time.Duration, error) {
		req, _ := http.NewRequest("GET", base+"/sso/login?app=demo", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := good.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || err != nil {
			return 0, errors.New("login: " + resp.Status)
		}
		form := url.Values{"ssoToken": {loc.Query().Get("ssoToken")}}.Encode()
		req, _ = http.NewRequest("POST", base+"/sso/redeem", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo", demoSecret)
		t0 := time.Now()
		resp, err = good.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			return d, errors.New("redeem: " + resp.Status)
		}
		return d, nil
	}
	if _, err := redeemOnce(); err != nil { // the good secret is verified once, before the flood
		b.Fatal(err)
	}

	var (
		stop      atomic.Bool
		peakRSS   atomic.Int64
		hwm       atomic.Int64
		killed    atomic.Bool
		samplerWG sync.WaitGroup
	)
	samplerWG.Add(1)
	go func() {
		defer samplerWG.Done()
		for !stop.Load() {
			rss, high := procStatus(srv.Process.Pid)
			if rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			hwm.Store(max(hwm.Load(), high))
			if rss > 4<<30 {
				killed.Store(true)
				srv.Process.Kill()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	b.ResetTimer()
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	floodTr := &http.Transport{MaxIdleConns: flood, MaxIdleConnsPerHost: flood, MaxConnsPerHost: flood}
	bad := &http.Client{Transport: floodTr, Timeout: 60 * time.Second}
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		wg      sync.WaitGroup
	)
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := "no-such-app-" + strconv.Itoa(i)
			if i%2 == 0 {
				id = "demo"
			}
			for time.Now().Before(deadline) && !killed.Load() {
				req, _ := http.NewRequest("POST", base+"/sso/redeem", strings.NewReader("ssoToken=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, "wrong-secret-"+strconv.Itoa(i))
				resp, err := bad.Do(req)
				key := "error"
				if err == nil {
					key = strconv.Itoa(resp.StatusCode) + " " + resp.Header.Get("Kerbgate-Reason")
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				answers[key]++
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}(i)
	}
	var lat []time.Duration
	goodErrs := map[string]int{}
	time.Sleep(500 * time.Millisecond) // let the flood build up
	for time.Now().Before(deadline) && !killed.Load() {
		d, err := redeemOnce()
		if err != nil {
			goodErrs[err.Error()]++
			continue
		}
		lat = append(lat, d)
	}
	wg.Wait()
	b.StopTimer()
	stop.Store(true)
	samplerWG.Wait()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p int) string {
		if len(lat) == 0 {
			return "n/a"
		}
		return lat[(len(lat)-1)*p/100].Round(time.Microsecond).String()
	}
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ans []string
	for _, k := range keys {
		ans = append(ans, fmt.Sprintf("%s: %d", k, answers[k]))
	}
	fmt.Printf("redeem flood: %d concurrent bad-secret clients for %ds against a real kerbgate serve (pid %d)\n", flood, seconds, srv.Process.Pid)
	if killed.Load() {
		fmt.Printf("  server KILLED: VmRSS passed 4 GiB\n")
	}
	fmt.Printf("  server peak VmRSS %d MiB, VmHWM %d MiB\n", peakRSS.Load()>>20, hwm.Load()>>20)
	fmt.Printf("  flood answers: %s\n", strings.Join(ans, ", "))
	fmt.Printf("  good client: %d redeems served, p50 %s, p99 %s, failures %v\n", len(lat), pct(50), pct(99), goodErrs)
	b.ReportMetric(float64(peakRSS.Load()>>20), "peak-RSS-MiB")
	b.ReportMetric(float64(len(lat)), "good-redeems")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Microseconds()), "good-p99-µs")
	}
}

// procStatus reads VmRSS and VmHWM (bytes) of a process.
func procStatus(pid int) (rss, hwm int64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
