package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// farm is N kerbgate nodes sharing one Redis behind HAProxy (TCP mode, health
// checks), as docs/farm.md describes.
type farm struct {
	r     *testrealm.Realm
	redis *redistest.Server
	nodes []*gateway
	lb    *testrealm.HAProxy
}

func startFarm(t *testing.T, n int, edit func(i int, cfgKeytab string) []string) *farm {
	t.Helper()
	r := testrealm.Require(t)
	f := &farm{r: r, redis: redistest.Start(t, redistest.Options{})}
	var backends []string
	for i := 0; i < n; i++ {
		cfg := withRedis(handoffConfig(t, r, "http://app.example.test:9"), f.redis)
		if edit != nil {
			cfg.Kerberos.Keytabs = edit(i, cfg.Kerberos.Keytabs[0])
			cfg.Kerberos.KeytabReloadInterval = 100 * time.Millisecond
		}
		g := startGateway(t, cfg)
		f.nodes = append(f.nodes, g)
		backends = append(backends, fmt.Sprintf("127.0.0.1:%d", g.port))
	}
	f.lb = testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTCP, Backends: backends, Check: true})
	return f
}

func (f *farm) url(path string) string {
	return fmt.Sprintf("http://sso.example.test:%d%s", f.lb.Port, path)
}

func (g *gateway) signins(t *testing.T) float64 {
	return g.counter(t, "kerbgate_signins_total", "enctype", "aes256-cts-hmac-sha1-96")
}

// One FQDN, three nodes, one SPN on a shared service account, shared state.
func TestFarmThreeNodesBehindHAProxy(t *testing.T) {
	f := startFarm(t, 3, nil)
	f.r.LockGateway(t, false)
	cc := f.r.Kinit(t, "alice")
	f.r.Kvno(t, cc, testrealm.GatewaySPN)

	// Sign-in through the balancer works on every node (round robin, a new
	// connection each time).
	for i := 0; i < 9; i++ {
		req, _ := http.NewRequest("GET", f.url("/whoami"), nil)
		req.Header.Set("Authorization", negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{}))
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "alice@EXAMPLE.TEST") {
			t.Fatalf("sign-in %d through HAProxy: %d %s", i, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
	}
	for i, n := range f.nodes {
		if got := n.signins(t); got < 1 {
			t.Errorf("node %d signed nobody in (round robin should reach it)", i+1)
		}
	}
	// curl --negotiate through the balancer, the real client.
	if c := f.nodes[0].curl(f.r, cc, "", f.url("/whoami")); c.status != 200 {
		t.Fatalf("curl through HAProxy: %d", c.status)
	}

	// An ssoToken issued by node 1 is redeemed on node 2; the session made on node 2
	// validates on node 3.
	status, loc, why := f.nodes[0].login(f.r, cc, "app=demo")
	if status != http.StatusFound {
		t.Fatalf("login on node 1: %d %s", status, why)
	}
	resp, body := f.nodes[1].redeem("demo", demoSecret, loc.Query().Get("ssoToken"))
	if resp.StatusCode != 200 {
		t.Fatalf("redeem on node 2: %d %s", resp.StatusCode, body)
	}
	var got sso.Response
	json.Unmarshal(body, &got)
	if s := f.nodes[2].sessionRequest("GET", "demo", demoSecret, got.Session.ID); s.StatusCode != 200 {
		t.Fatalf("node 2's session on node 3: %d", s.StatusCode)
	}

	// A token captured on its way to node 1 and replayed to node 2 is refused.
	h := negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{})
	if resp := f.nodes[0].get("/whoami", h); resp.StatusCode != 200 {
		t.Fatalf("node 1: %d", resp.StatusCode)
	}
	wantReason(t, f.nodes[1].get("/whoami", h), 401, "replay")
}

// loadStats counts a load run's outcomes.
type loadStats struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	tokens     []string // issued, not yet redeemed
	sessions   []string // made by redemption
	errors     []string
}

func (s *loadStats) fail(format string, args ...any) {
	s.failed.Add(1)
	s.mu.Lock()
	if len(s.errors) < 20 {
		s.errors = append(s.errors, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

// handoffLoad runs workers that, through the balancer, sign in at /sso/login (a
// fresh Kerberos authenticator each time), collect the ssoToken, and redeem every
// other token at /sso/redeem, until stop is closed.
func handoffLoad(f *farm, cc string, workers int, stop <-chan struct{}, st *loadStats) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				h, err := tryNegotiateHeader(cc, testrealm.GatewaySPN, initiator.Options{})
				if err != nil {
					st.fail("token: %v", err)
					return
				}
				req, _ := http.NewRequest("GET", f.url("/sso/login?app=demo"), nil)
				req.Header.Set("Authorization", h)
				resp, err := client.Do(req)
				if err != nil {
					st.fail("login: %v", err)
					continue
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("ssoToken") == "" {
					st.fail("login: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
					continue
				}
				st.ok.Add(1)
				token := loc.Query().Get("ssoToken")
				if i%2 == 0 {
					st.mu.Lock()
					st.tokens = append(st.tokens, token)
					st.mu.Unlock()
					continue
				}
				form := url.Values{"ssoToken": {token}}
				rreq, _ := http.NewRequest("POST", f.url("/sso/redeem"), strings.NewReader(form.Encode()))
				rreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rreq.SetBasicAuth("demo", demoSecret)
				rresp, err := client.Do(rreq)
				if err != nil {
					st.fail("redeem: %v", err) // in flight when a node died: the token's fate is unknown
					continue
				}
				body, _ := io.ReadAll(rresp.Body)
				rresp.Body.Close()
				var got sso.Response
				if rresp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
					st.fail("redeem: %d %s", rresp.StatusCode, body)
					continue
				}
				st.ok.Add(1)
				st.mu.Lock()
				st.sessions = append(st.sessions, got.Session.ID)
				st.mu.Unlock()
			}
		}()
	}
	return &wg
}

// A node dies during a load run: no issued token and no session is lost (they are
// in Redis), and only requests in flight on that node fail.
func TestFarmNodeDeathLosesNothing(t *testing.T) {
	f := startFarm(t, 3, nil)
	f.r.LockGateway(t, false)
	cc := f.r.Kinit(t, "alice")
	f.r.Kvno(t, cc, testrealm.GatewaySPN)

	const workers = 6
	st := &loadStats{}
	stop := make(chan struct{})
	wg := handoffLoad(f, cc, workers, stop, st)
	waitFor(t, 30*time.Second, "the load to run on the farm", func() bool { return st.ok.Load() >= 20 })
	before := st.ok.Load()
	f.nodes[1].kill()
	waitFor(t, 30*time.Second, "handoffs after the node died", func() bool { return st.ok.Load() >= before+20 })
	close(stop)
	wg.Wait()
	after := st.ok.Load() - before
	t.Logf("load: %d ok before the kill, %d after, %d failed: %v", before, after, st.failed.Load(), st.errors)
	if after == 0 {
		t.Fatal("no request succeeded after the node died")
	}
	if n := st.failed.Load(); n > workers {
		t.Errorf("%d requests failed; at most the %d in flight on the dead node may: %v", n, workers, st.errors)
	}

	// Every token issued, by any node, redeems on the survivors; every session
	// validates.
	if len(st.tokens) == 0 || len(st.sessions) == 0 {
		t.Fatalf("load made %d tokens and %d sessions", len(st.tokens), len(st.sessions))
	}
	for _, tok := range st.tokens {
		resp, body := f.nodes[2].redeem("demo", demoSecret, tok)
		if resp.StatusCode != 200 {
			t.Fatalf("token issued during the run does not redeem: %d %s", resp.StatusCode, body)
		}
	}
	for _, sid := range st.sessions {
		if s := f.nodes[0].sessionRequest("GET", "demo", demoSecret, sid); s.StatusCode != 200 {
			t.Fatalf("session made during the run: %d", s.StatusCode)
		}
	}
	t.Logf("%d tokens redeemed and %d sessions validated after the node died", len(st.tokens), len(st.sessions))
}

// The shared service account's password changes in AD during a load run, with the
// procedure of docs/farm.md: the new key is added to every node's keytab first
// (ktutil with the account's salt and the next kvno; kerbgate reloads it), then the
// password is changed. Clients with old and new tickets sign in throughout: zero
// failures.
func TestFarmKeyRotationUnderLoadFailsNoSignIn(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, true)
	dir := t.TempDir()
	keytabs := make([]string, 3)
	f := startFarm(t, 3, func(i int, keytab string) []string {
		keytabs[i] = filepath.Join(dir, fmt.Sprintf("node%d.keytab", i+1))
		copyFile(t, keytab, keytabs[i])
		return []string{keytabs[i]}
	})
	oldKVNO := r.KVNO(t, "svc-gw")
	oldCC := r.Kinit(t, "alice")
	r.Kvno(t, oldCC, testrealm.GatewaySPN)

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		errs       []string
		ccache     atomic.Value // the ticket cache clients use now
	)
	ccache.Store(oldCC)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				cc := ccache.Load().(string)
				if w == 0 {
					cc = oldCC // one client keeps its old ticket throughout
				}
				h, err := tryNegotiateHeader(cc, testrealm.GatewaySPN, initiator.Options{})
				if err != nil {
					failed.Add(1)
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					return
				}
				req, _ := http.NewRequest("GET", f.url("/whoami"), nil)
				req.Header.Set("Authorization", h)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					mu.Lock()
					if err != nil {
						errs = append(errs, err.Error())
					} else {
						errs = append(errs, resp.Header.Get("Kerbgate-Reason"))
					}
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}(w)
	}
	waitFor(t, 30*time.Second, "sign-ins before the rotation", func() bool { return ok.Load() >= 5 })

	// 1. Pre-stage the next key on every node.
	const newPassword = "SvcGw#Farm2026"
	staged := filepath.Join(dir, "staged.keytab")
	addKey := fmt.Sprintf("addent -password -p %s@EXAMPLE.TEST -k %d -e aes256-cts-hmac-sha1-96 -s EXAMPLE.TESTsvc-gw\n%s\n"+
		"addent -password -p %s@EXAMPLE.TEST -k %d -e aes128-cts-hmac-sha1-96 -s EXAMPLE.TESTsvc-gw\n%s\nwkt %s\nquit\n",
		testrealm.GatewaySPN, oldKVNO+1, newPassword, testrealm.GatewaySPN, oldKVNO+1, newPassword, staged)
	cmd := exec.Command("ktutil")
	cmd.Stdin = strings.NewReader(addKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ktutil: %v\n%s", err, out)
	}
	old, _ := os.ReadFile(keytabs[0])
	add, _ := os.ReadFile(staged)
	both := append(append([]byte(nil), old...), add[2:]...) // one keytab: header once, then every entry
	for _, k := range keytabs {
		tmp := k + ".new"
		if err := os.WriteFile(tmp, both, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(tmp, k) // atomic replace, as a deployment tool would
	}
	for i, n := range f.nodes {
		waitKVNOs(t, n, oldKVNO, oldKVNO+1, i)
	}

	// 2. Change the password in AD; clients now get tickets of the new kvno.
	r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword="+newPassword)
	t.Cleanup(func() {
		r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword="+testrealm.Password("svc-gw"))
		r.ExportKeytab(t, testrealm.GatewaySPN, r.GatewayKeytab)
		r.ExportKeytab(t, "svc-gw", r.GatewayAccountKeytab)
	})
	if got := r.KVNO(t, "svc-gw"); got != oldKVNO+1 {
		t.Fatalf("AD's kvno after the change is %d, the staged key is %d", got, oldKVNO+1)
	}
	newCC := r.Kinit(t, "alice")
	r.Kvno(t, newCC, testrealm.GatewaySPN)
	ccache.Store(newCC)
	mark := ok.Load()
	waitFor(t, 30*time.Second, "sign-ins with tickets of the new key version", func() bool { return ok.Load() >= mark+10 })
	close(stop)
	wg.Wait()
	t.Logf("sign-ins across the rotation: %d ok, %d failed %v", ok.Load(), failed.Load(), errs)
	if failed.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("%d failed sign-ins (%d ok) across the rotation: %v", failed.Load(), ok.Load(), errs)
	}
	for i, n := range f.nodes {
		if n.signins(t) == 0 {
			t.Errorf("node %d took no sign-ins", i+1)
		}
	}
}

func waitKVNOs(t *testing.T, g *gateway, a, b uint32, i int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		kv := g.srv.Acceptor.Keyring().KVNOs(testrealm.GatewaySPN, "EXAMPLE.TEST")
		if len(kv) == 2 && kv[0] == a && kv[1] == b {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d holds kvnos %v, want [%d %d]", i+1, kv, a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
