package server

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkPasswordSignIn is the password fallback's figures, against a real
// `kerbgate serve` process (built from cmd/kerbgate) whose KDC is reached through a
// relay that counts the messages:
//
//   - form sign-ins per second (a fresh browser each time: GET the form, POST it,
//     303 to /whoami with a session), beside Negotiate sign-ins per second (a fresh
//     authenticator each time) in alternating rounds, and their ratio;
//   - AS and TGS exchanges per form sign-in;
//   - memory under attack: 10,000 parallel wrong-password attempts (half against one
//     account from 5,000 addresses, half with made-up names from one address), the
//     server's VmRSS and VmHWM sampled every 20 ms, and the AS exchanges that
//     reached the KDC.
//
// The per-source rate limit is raised for the throughput rounds (all clients come
// from 127.0.0.1); the attack runs against a second process with the defaults.
//
//	go test -run '^$' -bench PasswordSignIn -benchtime 1x ./internal/server
func BenchmarkPasswordSignIn(b *testing.B) {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	conns := envInt("KERBGATE_PW_CONNS", 8)
	round := time.Duration(envInt("KERBGATE_PW_SECONDS", 4)) * time.Second
	bin := testrealm.GoBuild(b, "../../cmd/kerbgate")
	relay := startKDCRelay(b, r.KDC)
	fast := startPasswordServe(b, r, bin, relay.addr, "  rate_burst: 10000\n  rate_refill: 10ms\n  lockout: {source_threshold: 100000}\n")

	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, testrealm.GatewaySPN)
	// One account per connection: attempts for one account are taken one at a time
	// (smart lockout's back-off), as a person signs in once.
	var users []string
	for i := 0; i < conns; i++ {
		users = append(users, r.TempUser(b, "benchpw"))
	}
	kt, err := keytab.Load(r.GatewayAccountKeytab)
	if err != nil {
		b.Fatal(err)
	}
	bare, err := logon.New(logon.Config{Realm: r.Realm, KDCs: []string{r.KDC}, Keytab: kt, Principal: "svc-gw", ServiceSPN: testrealm.GatewaySPN})
	if err != nil {
		b.Fatal(err)
	}
	bareOnce := func(i int) error {
		a, err := bare.Begin(context.Background(), logon.User{Name: users[i%len(users)]})
		if err != nil {
			return err
		}
		_, err = a.Password(context.Background(), testrealm.TempUserPassword)
		return err
	}
	formOnce := func(i int) error {
		// A fresh browser: its own cookie jar, so its own form cookie and session.
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(fast + "/whoami")
		if err != nil {
			return err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := formCSRFRe.FindSubmatch(page)
		if m == nil {
			return fmt.Errorf("no form: %d", resp.StatusCode)
		}
		body := url.Values{"kerbgate_signin": {"password"}, "kerbgate_csrf": {html.UnescapeString(string(m[1]))},
			"username": {users[i%len(users)]}, "password": {testrealm.TempUserPassword}}.Encode()
		req, _ := http.NewRequest("POST", fast+"/whoami", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err = c.Do(req); err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("form sign-in: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		return nil
	}
	negotiateOnce := func(int) error {
		h, err := tryNegotiateHeader(cc, testrealm.GatewaySPN, initiator.Options{})
		if err != nil {
			return err
		}
		req, _ := http.NewRequest("GET", fast+"/whoami", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("negotiate: %d", resp.StatusCode)
		}
		return nil
	}
	run := func(name string, once func(int) error) (float64, []time.Duration) {
		var n atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		var errs atomic.Int64
		deadline := time.Now().Add(round)
		var wg sync.WaitGroup
		for w := 0; w < conns; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; time.Now().Before(deadline); i += conns {
					t0 := time.Now()
					if err := once(i); err != nil {
						if errs.Add(1) == 1 {
							fmt.Printf("  %s: %v\n", name, err)
						}
						continue
					}
					d := time.Since(t0)
					n.Add(1)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return float64(n.Load()) / round.Seconds(), lat
	}
	pct := func(lat []time.Duration, p int) string {
		if len(lat) == 0 {
			return "n/a"
		}
		return lat[(len(lat)-1)*p/100].Round(100 * time.Microsecond).String()
	}
	b.ResetTimer()
	fmt.Printf("password sign-in: %d connections, %s rounds, against kerbgate serve (FAST-armoured AS exchanges, Samba 4.17 KDC on loopback)\n", conns, round)
	var formRates, negRates, bareRates []float64
	var asPerSignIn, tgsPerSignIn float64
	for rnd := 1; rnd <= 2; rnd++ {
		rate, lat := run("bare", bareOnce)
		bareRates = append(bareRates, rate)
		fmt.Printf("  round %d  bare AS+AS+TGS      %7.1f/s  p50 %s  p99 %s  (logon client alone: no HTTP, no store, no acceptor)\n", rnd, rate, pct(lat, 50), pct(lat, 99))
		as0, tgs0 := relay.as.Load(), relay.tgs.Load()
		rate, lat = run("form", formOnce)
		signIns := rate * round.Seconds()
		asPerSignIn, tgsPerSignIn = float64(relay.as.Load()-as0)/signIns, float64(relay.tgs.Load()-tgs0)/signIns
		formRates = append(formRates, rate)
		fmt.Printf("  round %d  form sign-ins      %7.1f/s  p50 %s  p99 %s  (%.2f AS + %.2f TGS exchanges per sign-in)\n",
			rnd, rate, pct(lat, 50), pct(lat, 99), asPerSignIn, tgsPerSignIn)
		rate, lat = run("negotiate", negotiateOnce)
		negRates = append(negRates, rate)
		fmt.Printf("  round %d  Negotiate sign-ins %7.1f/s  p50 %s  p99 %s\n", rnd, rate, pct(lat, 50), pct(lat, 99))
	}
	for i := range formRates {
		fmt.Printf("  round %d  form / bare exchanges = %.2f, form / Negotiate = %.3f\n", i+1, formRates[i]/bareRates[i], formRates[i]/negRates[i])
	}
	b.ReportMetric(formRates[len(formRates)-1], "form-signins/s")
	b.ReportMetric(asPerSignIn, "AS/signin")

	// Memory under attack, against a process with the default limits.
	attackRelay := startKDCRelay(b, r.KDC)
	user := r.TempUser(b, "benchflood")
	target := startPasswordServe(b, r, bin, attackRelay.addr, "")
	pid := servePIDs[target]
	rss0, _ := procStatus(pid)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{MaxConnsPerHost: 1000, MaxIdleConnsPerHost: 1000},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f := &formClient{t: b, c: client, ua: "Mozilla/5.0 bench", headers: http.Header{}}
	_, token := f.get(target + "/whoami").form(b)
	as0 := attackRelay.as.Load()
	var stop atomic.Bool
	var peak, hwm atomic.Int64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for !stop.Load() {
			rss, high := procStatus(pid)
			peak.Store(max(peak.Load(), rss))
			hwm.Store(max(hwm.Load(), high))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	const attempts = 10000
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name, src := user, fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
			if i%2 == 1 {
				name, src = "nobody-"+strconv.Itoa(i), "198.51.100.1"
			}
			body := url.Values{"kerbgate_signin": {"password"}, "kerbgate_csrf": {token}, "username": {name}, "password": {"Wrong#Pass1"}}.Encode()
			req, _ := http.NewRequest("POST", target+"/whoami", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", src)
			req.Header.Set("User-Agent", "Mozilla/5.0 bench")
			resp, err := client.Do(req)
			key := "error"
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				key = strconv.Itoa(resp.StatusCode) + " " + resp.Header.Get("Kerbgate-Reason")
			}
			mu.Lock()
			answers[key]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	sampler.Wait()
	b.StopTimer()
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ans []string
	for _, k := range keys {
		ans = append(ans, fmt.Sprintf("%s: %d", k, answers[k]))
	}
	fmt.Printf("password attack: %d parallel wrong-password attempts in %s (1,000 connections)\n", attempts, elapsed.Round(time.Millisecond))
	fmt.Printf("  server VmRSS before %d MiB, peak %d MiB, VmHWM %d MiB\n", rss0>>20, peak.Load()>>20, hwm.Load()>>20)
	fmt.Printf("  AS exchanges that reached the KDC: %d\n", attackRelay.as.Load()-as0)
	fmt.Printf("  answers: %s\n", strings.Join(ans, ", "))
	b.ReportMetric(float64(peak.Load()>>20), "attack-peak-RSS-MiB")
}

// servePIDs maps a started serve process's base URL to its pid.
var servePIDs = map[string]int{}

// startPasswordServe starts `kerbgate serve` with the password fallback (kerbgate's
// account svc-gw, KDC kdc), trusting 127.0.0.1's X-Forwarded-For, with extra
// password_signin lines; it returns the base URL.
func startPasswordServe(b *testing.B, r *testrealm.Realm, bin, kdc, extra string) string {
	b.Helper()
	dir := b.TempDir()
	port := testrealm.FreePort(b)
	cfg := fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
  trusted_proxies: [127.0.0.1]
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [%s]
  spns: [HTTP/sso.example.test]
directory:
  url: ldaps://dc1.example.test
  ca_file: %s
  tls_legacy_cn: true
  base_dn: DC=example,DC=test
  bind:
    method: simple
    dn: %s
    password_file: %s
store:
  path: %s
password_signin:
  principal: svc-gw
  keytab: %s
  kdcs: ["%s"]
%slog:
  level: error
  format: json
  expose_reasons: true
`, port, r.GatewayKeytab, r.CACert, testrealm.LDAPBindDN, r.LDAPBindPasswordFile, filepath.Join(dir, "kerbgate.db"),
		r.GatewayAccountKeytab, kdc, extra)
	path := filepath.Join(dir, "kerbgate.yaml")
	mustWriteFile(b, path, cfg)
	srv := exec.Command(bin, "serve", "--config", path)
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	base := "http://sso.example.test:" + strconv.Itoa(port)
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
	servePIDs[base] = srv.Process.Pid
	return base
}
