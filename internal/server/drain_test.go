package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/loadgen"
	"github.com/kerbgate/kerbgate/testrealm"
)

// heldUpstream is an upstream whose answers wait until release: a request kerbgate
// proxies to it stays in flight as long as the test wants.
type heldUpstream struct {
	*httptest.Server
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHeldUpstream(t *testing.T) *heldUpstream {
	u := &heldUpstream{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- struct{}{}
		<-u.release
		io.WriteString(w, "finished")
	}))
	t.Cleanup(func() { u.let(); u.Close() })
	return u
}

func (u *heldUpstream) let() { u.once.Do(func() { close(u.release) }) }

// drainingGateway is a gateway with a passthrough proxy app to up at /held/.
func drainingGateway(t *testing.T, r *testrealm.Realm, up *heldUpstream, drain, timeout time.Duration) *gateway {
	cfg := baseConfig(r)
	cfg.Listen.DrainDelay, cfg.Listen.ShutdownTimeout = drain, timeout
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour, Apps: []config.ProxyApp{{
		ID: "held", Host: "sso.example.test", PathPrefix: "/held/", PreAuth: "passthrough",
		Upstream: mustURL(t, up.URL), Timeout: time.Minute,
	}}}
	return startGateway(t, cfg)
}

// inFlight starts a GET of /held/x and returns where its outcome arrives, once the
// upstream has it.
func inFlight(t *testing.T, g *gateway, up *heldUpstream) <-chan string {
	out := make(chan string, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(g.url("sso.example.test", "/held/x"))
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	select {
	case <-up.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the held request did not reach the upstream")
	}
	return out
}

// stopAsync shuts g down as SIGTERM does and returns when Serve has returned.
func stopAsync(g *gateway) <-chan struct{} {
	done := make(chan struct{})
	go func() { g.stop(); close(done) }()
	return done
}

// On shutdown, /readyz answers 503 at once while the listener still accepts (and
// answers with Connection: close); after listen.drain_delay the listener refuses new
// connections; a request in flight then still finishes; each step is logged.
func TestShutdownDrainsInOrder(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	up := newHeldUpstream(t)
	const drain = 800 * time.Millisecond
	g := drainingGateway(t, r, up, drain, 10*time.Second)
	held := inFlight(t, g, up)

	began := time.Now()
	stopped := stopAsync(g)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, time.Second, "/readyz to answer 503 draining", func() bool {
		resp, err := fresh.Get(g.url("127.0.0.1", "/readyz"))
		if err != nil {
			t.Fatalf("/readyz right after shutdown began: %v", err)
		}
		defer resp.Body.Close()
		var body struct{ Status string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode == 503 && body.Status == "draining"
	})
	// Still accepting: a new connection is served, and told to close.
	resp, err := fresh.Get(g.url("127.0.0.1", "/healthz"))
	if err != nil {
		t.Fatalf("a new connection during the drain delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("during the drain delay: %d, Connection: close %v", resp.StatusCode, resp.Close)
	}
	if time.Since(began) > drain/2 {
		t.Fatalf("the checks above took %s, too long to say the listener waited %s", time.Since(began), drain)
	}
	// After the delay, new connections are refused.
	waitFor(t, drain+2*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if d := time.Since(began); d < drain {
		t.Errorf("the listener closed after %s, before drain_delay %s", d, drain)
	}
	// The request in flight finishes, and Serve returns only then.
	select {
	case <-stopped:
		t.Fatal("Serve returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	up.let()
	if got := <-held; got != "200 finished" {
		t.Errorf("the request in flight got %q", got)
	}
	<-stopped
	logs := g.logs.String()
	for _, want := range []string{`"msg":"shutdown: draining, /readyz answers 503; the listener closes after drain_delay","drain_delay":"800ms","in_flight":1`,
		`"msg":"shutdown: listener closed, waiting for the requests in flight","in_flight":1,"shutdown_timeout":"10s"`,
		`"msg":"shutdown: done"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs, "cutting") {
		t.Error("the request in flight was cut")
	}
}

// A request still in flight at listen.shutdown_timeout is cut, the log says so, and
// Serve returns.
func TestShutdownTimeoutCutsRequests(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	up := newHeldUpstream(t)
	g := drainingGateway(t, r, up, 0, 300*time.Millisecond)
	held := inFlight(t, g, up)
	select {
	case <-stopAsync(g):
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown_timeout")
	}
	if got := <-held; !strings.HasPrefix(got, "error: ") {
		t.Errorf("the request still in flight got %q; expected its connection cut", got)
	}
	if !strings.Contains(g.logs.String(), `"msg":"shutdown: shutdown_timeout passed, cutting the requests still in flight","in_flight":1,"shutdown_timeout":"300ms"`) {
		t.Error("the cut is not logged")
	}
}

// Three nodes behind HAProxy, which routes by /readyz and neither retries nor
// redispatches (so that it hides nothing), under Negotiate load: a rolling restart
// (each node shut down as SIGTERM does, then started again on its port) fails no
// request. With drain_delay 0 the same run fails requests: HAProxy still sends new
// ones to a node whose listener has closed.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	cfg := baseConfig(r)
	cfg.Log.Level = 0 // info: a line per request would be most of the test's time
	cfg.Listen.DrainDelay, cfg.Listen.ShutdownTimeout = 500*time.Millisecond, 5*time.Second
	nodes := make([]*gateway, 3)
	var backends []string
	for i := range nodes {
		c := *cfg
		c.Listen.Address = fmt.Sprintf("127.0.0.1:%d", testrealm.FreePort(t))
		nodes[i] = startGateway(t, &c)
		backends = append(backends, c.Listen.Address)
	}
	lb := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyHTTP, Backends: backends, Check: true, HealthPath: "/readyz",
		NoRetry: true})
	cred, err := loadgen.CredentialFromKeytab("alice", "EXAMPLE.TEST", "", testrealm.Password("alice"), testrealm.GatewaySPN, []string{"127.0.0.1:88"})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res *loadgen.Result
		err error
	}
	load := make(chan outcome, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Options{URL: fmt.Sprintf("http://sso.example.test:%d/whoami", lb.Port),
			Credential: cred, Connections: 6, Duration: time.Minute})
		load <- outcome{res, err}
	}()
	time.Sleep(300 * time.Millisecond) // load on all three first
	for i, old := range nodes {
		addr := backends[i]
		old.stop()
		c := *cfg
		c.Listen.Address = addr
		nodes[i] = startGateway(t, &c)
		waitFor(t, 5*time.Second, "the restarted node to be ready", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		// HAProxy checks every 100 ms: let it see the node back before the next goes.
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	o := <-load
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Logf("rolling restart of 3 nodes under load: %s", o.res)
	if o.res.Errors != 0 || o.res.Status[200] != o.res.Requests || o.res.Requests < 100 {
		t.Errorf("during the rolling restart: %s", o.res)
	}
	for i, n := range nodes {
		if n.signins(t) == 0 {
			t.Errorf("restarted node %d served no sign-in: HAProxy did not take it back", i)
		}
	}
}
