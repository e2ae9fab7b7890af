package server

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The farm's shared state on Redis with replicas, under load and under faults: two
// kerbgate nodes share a Sentinel set-up (1 primary, 2 replicas, 3 Sentinels) or a
// Cluster (3 primaries, 3 replicas), with min_replica_acks 1, while clients sign
// in, hand off to an application and go through the application proxy (KCD). Run
// by scripts/bench-redis-ha.sh; the figures are in docs/farm.md.

// haWorld is what every topology's nodes share: the realm, alice's ticket, and the
// upstream the proxy delegates to.
type haWorld struct {
	r        *testrealm.Realm
	cc       string
	upstream string
}

func newHAWorld(b *testing.B) *haWorld {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	cc := r.Kinit(b, "alice")
	r.Kvno(b, cc, testrealm.GatewaySPN)
	// The proxied application: a kerbgate serving /whoami as HTTP/app.example.test
	// (it verifies the delegated ticket cheaply, with its own replay cache).
	upCfg := baseConfig(r)
	upCfg.Kerberos.Keytabs = []string{r.AppKeytab}
	upCfg.Kerberos.SPNs = []string{"HTTP/app.example.test"}
	upCfg.Log.Level = slog.LevelWarn
	up := startGateway(b, upCfg)
	return &haWorld{r: r, cc: cc, upstream: up.url("127.0.0.1", "")}
}

// config is a node's configuration: handoff apps, the proxy's KCD route "sam" to
// the upstream, and store.redis as rc.
func (w *haWorld) config(b *testing.B, rc config.Redis, keysID string) *config.Config {
	cfg := kcdConfig(b, w.r, w.upstream, "svc-gw", w.r.GatewayAccountKeytab)
	cfg.Proxy.Apps = cfg.Proxy.Apps[2:3]        // sam_account_name, raw Kerberos token, send always
	cfg.SSO.Apps[0].TokenTTL = 10 * time.Minute // checked after the faults, a minute or two later
	cfg.Log.Level = slog.LevelWarn              // as in production: no per-request lines
	if rc.Prefix == "" {
		rc.Prefix = "kerbgate:"
	}
	if rc.DialTimeout == 0 {
		rc.DialTimeout, rc.Timeout = time.Second, time.Second
	}
	if rc.MinReplicaAcks > 0 && rc.ReplicaAckTimeout == 0 {
		rc.ReplicaAckTimeout = 500 * time.Millisecond
	}
	cfg.Store = config.Store{Redis: &rc, CookieKeysFile: farmCookieKeys(keysID)}
	return cfg
}

// startHANode starts a node of these benchmarks. Its log is checked at the end
// for id-shaped values (linear in the log) but not searched for each of the tens
// of thousands of tokens, session ids and cookies it saw (log lines × secrets:
// hours here); the test suite's gateways get that search.
func startHANode(b *testing.B, cfg *config.Config) *gateway {
	g := startGateway(b, cfg)
	b.Cleanup(func() {
		g.seen.mu.Lock()
		g.seen.values = nil
		g.seen.mu.Unlock()
	})
	return g
}

func sentinelRedis(s *redistest.Sentinel, acks int) config.Redis {
	return config.Redis{Addrs: s.SentinelAddrs(), MasterName: s.MasterName, MinReplicaAcks: acks}
}

func clusterRedis(c *redistest.Cluster, acks int) config.Redis {
	return config.Redis{Addrs: c.Addrs(), MinReplicaAcks: acks}
}

// haRequest is one request of the load and what came of it.
type haRequest struct {
	kind       string // signin, login, redeem, proxy, proxy-cookie
	start, end time.Time
	ok         bool
	why        string
}

// haAccepted is a request carrying a Kerberos authenticator that was accepted:
// sent again after the fault, it must be refused as a replay.
type haAccepted struct {
	path, authorization string
}

// haLoad is the load on the nodes and what it left to check: tokens issued (some
// redeemed), sessions made by redemption, proxy session cookies, and accepted
// authenticators.
type haLoad struct {
	w     *haWorld
	nodes []*gateway

	mu        sync.Mutex
	reqs      []haRequest
	tokens    []string // issued, not redeemed
	redeemed  []string // redeemed once
	refused   []string // a redemption answered 503: its fate is unknown to the app
	sessions  []string // application sessions (by redemption)
	cookies   []*http.Cookie
	accepted  []haAccepted
	stop      chan struct{}
	wg        sync.WaitGroup
	loadError string
}

// start runs workers until stop: each, in turn, signs in (GET /whoami), hands off
// (GET /sso/login, and every other token redeemed on the other node), goes through
// the proxy with a fresh authenticator, and with a proxy session cookie.
func (l *haLoad) start(workers int) {
	l.stop = make(chan struct{})
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cred, err := initiator.FromCCache(l.w.cc, testrealm.GatewaySPN)
			if err != nil {
				l.mu.Lock()
				l.loadError = err.Error()
				l.mu.Unlock()
				return
			}
			client := &http.Client{Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				node, other := l.nodes[(w+i)%len(l.nodes)], l.nodes[(w+i+1)%len(l.nodes)]
				l.cycle(client, cred, node, other, i)
			}
		}()
	}
}

func (l *haLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

func header(cred *initiator.Credential) string {
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		return ""
	}
	gss := spnego.WrapKerberos(spnego.OIDKerberos, [2]byte{0x01, 0x00}, ap)
	return "Negotiate " + base64.StdEncoding.EncodeToString(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, gss))
}

// do sends one request and records it; ok is decided by want.
func (l *haLoad) do(client *http.Client, kind string, req *http.Request, want int) (*http.Response, []byte) {
	start := time.Now()
	resp, err := client.Do(req)
	var body []byte
	rec := haRequest{kind: kind, start: start}
	if err != nil {
		rec.why = err.Error()
	} else {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		rec.ok = resp.StatusCode == want
		rec.why = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	rec.end = time.Now()
	l.mu.Lock()
	l.reqs = append(l.reqs, rec)
	l.mu.Unlock()
	if err != nil {
		return nil, nil
	}
	return resp, body
}

func (l *haLoad) accept(path, h string) {
	l.mu.Lock()
	l.accepted = append(l.accepted, haAccepted{path, h})
	l.mu.Unlock()
}

func (l *haLoad) cycle(client *http.Client, cred *initiator.Credential, node, other *gateway, i int) {
	// Sign-in.
	h := header(cred)
	req, _ := http.NewRequest("GET", node.url("127.0.0.1", "/whoami"), nil)
	req.Header.Set("Authorization", h)
	if resp, _ := l.do(client, "signin", req, 200); resp != nil && resp.StatusCode == 200 {
		l.accept("/whoami", h)
	}

	// Handoff: a token, redeemed on the other node every other time.
	h = header(cred)
	req, _ = http.NewRequest("GET", node.url("sso.example.test", "/sso/login?app=demo"), nil)
	req.Header.Set("Authorization", h)
	if resp, _ := l.do(client, "login", req, http.StatusFound); resp != nil && resp.StatusCode == http.StatusFound {
		l.accept("/sso/login?app=demo", h)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if tok := loc.Query().Get("ssoToken"); tok != "" {
			if i%2 == 0 {
				l.mu.Lock()
				l.tokens = append(l.tokens, tok)
				l.mu.Unlock()
			} else {
				l.redeem(client, other, tok)
			}
		}
	}

	// The application proxy: a fresh authenticator (a new proxy session), then
	// a proxy session cookie made earlier.
	h = header(cred)
	req, _ = http.NewRequest("GET", node.url("127.0.0.1", "/apps/sam/whoami"), nil)
	req.Host = "sso.example.test"
	req.Header.Set("Authorization", h)
	if resp, _ := l.do(client, "proxy", req, 200); resp != nil && resp.StatusCode == 200 {
		l.accept("/apps/sam/whoami", h)
		for _, c := range resp.Cookies() {
			if c.Name == "kerbgate_proxy" && i%8 == 0 {
				l.mu.Lock()
				l.cookies = append(l.cookies, c)
				l.mu.Unlock()
			}
		}
	}
	l.mu.Lock()
	var c *http.Cookie
	if n := len(l.cookies); n > 0 {
		c = l.cookies[rand.IntN(n)]
	}
	l.mu.Unlock()
	if c != nil {
		req, _ = http.NewRequest("GET", other.url("127.0.0.1", "/apps/sam/whoami"), nil)
		req.Host = "sso.example.test"
		req.AddCookie(c)
		l.do(client, "proxy-cookie", req, 200)
	}
}

func (l *haLoad) redeem(client *http.Client, node *gateway, tok string) {
	req, _ := http.NewRequest("POST", node.url("127.0.0.1", "/sso/redeem"), strings.NewReader(url.Values{"ssoToken": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo", demoSecret)
	resp, body := l.do(client, "redeem", req, 200)
	l.mu.Lock()
	defer l.mu.Unlock()
	var got sso.Response
	switch {
	case resp != nil && resp.StatusCode == 200 && json.Unmarshal(body, &got) == nil:
		l.redeemed = append(l.redeemed, tok)
		l.sessions = append(l.sessions, got.Session.ID)
	case resp != nil && resp.StatusCode == http.StatusServiceUnavailable:
		l.refused = append(l.refused, tok)
	}
}

// haRow is what one fault did.
type haRow struct {
	topology, fault                    string
	requests, failed                   int
	switchTime, recovery               time.Duration
	tokens, tokensLost, doubleRedeemed int
	refusedRedeemsConsumed             int
	sessions, sessionsLost             int
	cookies, cookiesLost               int
	authenticators, replaysAccepted    int
	p99Before, p99During, p99After     time.Duration
	firstFailures                      []string
}

// haFault is one fault injected under load: inject at once, then settled reports
// when the topology has done what it does about it (a failover, a node back).
type haFault struct {
	name    string
	inject  func()
	settled func() bool
	// stuck: some writes stay refused until the next fault brings the node back
	// (a Cluster shard left without a replica, with min_replica_acks 1).
	stuck bool
}

const (
	haBefore = 3 * time.Second // load before a fault
	haAfter  = 3 * time.Second // load after it is over
	haQuiet  = time.Second     // no failure for this long: recovered
)

// runFault runs load, injects f, waits for the topology to settle and requests
// to succeed again (unless f is stuck), and runs load a while longer. The load it
// returns is checked by the caller once the topology is whole again.
func runFault(b *testing.B, w *haWorld, nodes []*gateway, topology string, f haFault) (*haRow, *haLoad) {
	l := &haLoad{w: w, nodes: nodes}
	l.start(4)
	time.Sleep(haBefore)
	t0 := time.Now()
	f.inject()
	deadline := t0.Add(90 * time.Second)
	var settledAt time.Time
	for {
		if settledAt.IsZero() && f.settled() {
			settledAt = time.Now()
		}
		last := l.lastFailure()
		if !settledAt.IsZero() && (f.stuck || time.Since(last) > haQuiet && time.Since(settledAt) > haQuiet) {
			break
		}
		if time.Now().After(deadline) {
			l.halt()
			b.Fatalf("%s, %s: not settled or still failing after 90s (settled %v): %v", topology, f.name, !settledAt.IsZero(), l.failures(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(haAfter)
	l.halt()
	if l.loadError != "" {
		b.Fatal(l.loadError)
	}
	end := time.Now()

	row := &haRow{topology: topology, fault: f.name, switchTime: settledAt.Sub(t0)}
	recovered := l.lastFailure()
	switch {
	case recovered.Before(t0):
		recovered = t0
	case end.Sub(recovered) < haAfter/2:
		row.recovery = -1 // still failing at the end
	}
	if row.recovery == 0 {
		row.recovery = recovered.Sub(t0)
	}
	during := settledAt
	if recovered.After(during) && row.recovery >= 0 {
		during = recovered
	}
	var before, in, after []time.Duration
	for _, r := range l.reqs {
		row.requests++
		d := r.end.Sub(r.start)
		switch {
		case r.start.Before(t0):
			before = append(before, d)
		case r.start.Before(during):
			in = append(in, d)
		default:
			after = append(after, d)
		}
		if !r.ok {
			row.failed++
		}
	}
	row.p99Before, row.p99During, row.p99After = durationP99(before), durationP99(in), durationP99(after)
	row.firstFailures = l.failures(3)
	fmt.Fprintf(os.Stdout, "%s, %s: %d requests, %d failed, settled after %v, recovery %v; checking\n",
		topology, f.name, row.requests, row.failed, row.switchTime.Round(10*time.Millisecond), row.recovery.Round(10*time.Millisecond))
	return row, l
}

// runFaults runs the faults in turn and then checks every load, the topology whole
// again.
func runFaults(b *testing.B, w *haWorld, nodes []*gateway, topology string, faults ...haFault) []haRow {
	var rows []haRow
	var loads []*haLoad
	for _, f := range faults {
		row, l := runFault(b, w, nodes, topology, f)
		rows = append(rows, *row)
		loads = append(loads, l)
	}
	for i, l := range loads {
		l.check(b, &rows[i])
		printHARows(rows[i : i+1])
	}
	return rows
}

func (l *haLoad) lastFailure() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, r := range l.reqs {
		if !r.ok && r.end.After(last) {
			last = r.end
		}
	}
	return last
}

func (l *haLoad) failures(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs {
		if !r.ok && len(out) < n {
			out = append(out, r.kind+": "+r.why)
		}
	}
	return out
}

func durationP99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)*99/100]
}

// check counts what was lost: tokens issued and not redeemed must redeem now,
// once; tokens redeemed must not redeem again; sessions and proxy session cookies
// must still be valid; every accepted authenticator, sent again to either node,
// must be refused as a replay.
func (l *haLoad) check(b *testing.B, row *haRow) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	node := func(i int) *gateway { return l.nodes[i%len(l.nodes)] }
	// send answers req, asked again while the store is unavailable (503): only
	// an answer counts.
	send := func(req func() *http.Request) (*http.Response, string) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Do(req())
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return resp, string(body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	redeem := func(i int, tok string) (int, string) {
		resp, body := send(func() *http.Request {
			req, _ := http.NewRequest("POST", node(i).url("127.0.0.1", "/sso/redeem"), strings.NewReader(url.Values{"ssoToken": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("demo", demoSecret)
			return req
		})
		return resp.StatusCode, body
	}
	row.tokens = len(l.tokens) + len(l.redeemed)
	for i, tok := range l.tokens {
		if st, body := redeem(i, tok); st != 200 {
			row.tokensLost++
			b.Logf("an issued token does not redeem: %d %s", st, body)
		}
	}
	for i, tok := range l.redeemed {
		if st, _ := redeem(i, tok); st == 200 {
			row.doubleRedeemed++
		}
	}
	for i, tok := range l.refused {
		if st, _ := redeem(i, tok); st != 200 {
			row.refusedRedeemsConsumed++
		}
	}
	row.sessions = len(l.sessions)
	for i, sid := range l.sessions {
		resp, _ := send(func() *http.Request {
			req, _ := http.NewRequest("GET", node(i).url("127.0.0.1", "/sso/sessions/"+sid), nil)
			req.SetBasicAuth("demo", demoSecret)
			return req
		})
		if resp.StatusCode != 200 {
			row.sessionsLost++
		}
	}
	row.cookies = len(l.cookies)
	for i, c := range l.cookies {
		resp, _ := send(func() *http.Request {
			req, _ := http.NewRequest("GET", node(i).url("127.0.0.1", "/apps/sam/whoami"), nil)
			req.Host = "sso.example.test"
			req.AddCookie(c)
			return req
		})
		if resp.StatusCode != 200 {
			row.cookiesLost++
		}
	}
	row.authenticators = len(l.accepted)
	for i, a := range l.accepted {
		resp, _ := send(func() *http.Request {
			req, _ := http.NewRequest("GET", node(i).url("sso.example.test", a.path), nil)
			if strings.HasPrefix(a.path, "/apps/") {
				req.Host = "sso.example.test" // as the load sent it
			}
			req.Header.Set("Authorization", a.authorization)
			return req
		})
		switch {
		case resp.StatusCode == 200 || resp.StatusCode == http.StatusFound:
			row.replaysAccepted++
		case resp.Header.Get("Kerbgate-Reason") != "replay":
			b.Logf("an authenticator sent again: %d %s, want 401 replay", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
	}
}

// BenchmarkRedisHAFailover injects each fault under load and prints one line per
// fault: requests failed during the switch, time to recover, what was lost
// (target 0), authenticators accepted twice (target 0), p99 before, during and
// after. It runs once whatever -benchtime says (about four minutes).
//
//	go test -run '^$' -bench RedisHAFailover -benchtime 1x -timeout 30m ./internal/server
func BenchmarkRedisHAFailover(b *testing.B) {
	w := newHAWorld(b)
	var rows []haRow

	// Sentinel: down-after 1s, persistence on.
	s := redistest.StartSentinel(b, redistest.SentinelOptions{DownAfter: time.Second, Server: redistest.Options{Persist: true}})
	var sn []*gateway
	for range 2 {
		sn = append(sn, startHANode(b, w.config(b, sentinelRedis(s, 1), s.SentinelAddrs()[0])))
	}
	primary := s.Primary(b)
	failedOver := func(old *redistest.Server) func() bool {
		return func() bool {
			p := s.Current()
			return p != nil && p != old
		}
	}
	rows = append(rows, runFaults(b, w, sn, "Sentinel 1+2",
		haFault{name: "primary killed (SIGKILL)", inject: primary.Kill, settled: failedOver(primary)},
		haFault{name: "killed primary restarted", inject: primary.Restart, settled: s.Ready})...)
	primary = s.Primary(b)
	rows = append(rows, runFaults(b, w, sn, "Sentinel 1+2",
		haFault{name: "primary stopped (SIGSTOP) past down-after", inject: primary.Pause, settled: failedOver(primary)},
		haFault{name: "stopped primary continued (SIGCONT)", inject: primary.Resume, settled: s.Ready})...)

	// Cluster: node timeout 1s, persistence on. With one replica per primary, the
	// promoted replica has none until the old primary is back: writes to its
	// slots are refused meanwhile (min_replica_acks 1).
	c := redistest.StartCluster(b, redistest.ClusterOptions{NodeTimeout: time.Second, Server: redistest.Options{Persist: true}})
	var cn []*gateway
	for range 2 {
		cn = append(cn, startHANode(b, w.config(b, clusterRedis(c, 1), c.Addrs()[0])))
	}
	const slot = 0
	movedAway := func(old *redistest.Server) func() bool {
		return func() bool { return c.Healthy() && c.PrimaryOfSlot(b, slot) != old }
	}
	victim := c.PrimaryOfSlot(b, slot)
	rows = append(rows, runFaults(b, w, cn, "Cluster 3+3",
		haFault{name: "primary killed (SIGKILL)", inject: victim.Kill, settled: movedAway(victim), stuck: true},
		haFault{name: "killed primary restarted", inject: victim.Restart, settled: c.Healthy})...)
	victim = c.PrimaryOfSlot(b, slot)
	rows = append(rows, runFaults(b, w, cn, "Cluster 3+3",
		haFault{name: "primary stopped (SIGSTOP) past node timeout", inject: victim.Pause, settled: movedAway(victim), stuck: true},
		haFault{name: "stopped primary continued (SIGCONT)", inject: victim.Resume, settled: c.Healthy})...)
	// 100 slots with their keys move from one primary to another, one at a time,
	// while the load runs (the injection lasts as long as the migration).
	rows = append(rows, runFaults(b, w, cn, "Cluster 3+3", haFault{
		name: "100 slots migrated",
		inject: func() {
			from := c.PrimaryOfSlot(b, slot)
			for _, to := range c.Primaries(b) {
				if to != from {
					for s := slot; s < slot+100; s++ {
						c.MigrateSlot(b, s, to)
					}
					return
				}
			}
		},
		settled: c.Healthy,
	})...)

	// Cluster with two replicas per primary: the promoted replica keeps one, so
	// writes resume without waiting for the old primary.
	c2 := redistest.StartCluster(b, redistest.ClusterOptions{Replicas: 2, NodeTimeout: time.Second, Server: redistest.Options{Persist: true}})
	var cn2 []*gateway
	for range 2 {
		cn2 = append(cn2, startHANode(b, w.config(b, clusterRedis(c2, 1), c2.Addrs()[0])))
	}
	victim2 := c2.PrimaryOfSlot(b, slot)
	rows = append(rows, runFaults(b, w, cn2, "Cluster 3+6",
		haFault{name: "primary killed (SIGKILL)", inject: victim2.Kill, settled: func() bool { return c2.Healthy() && c2.PrimaryOfSlot(b, slot) != victim2 }},
		haFault{name: "killed primary restarted", inject: victim2.Restart, settled: c2.Healthy})...)

	fmt.Fprintln(os.Stdout, "\nAll faults:")
	printHARows(rows)
	// The targets are 0: anything else fails the run.
	for _, r := range rows {
		if r.tokensLost+r.sessionsLost+r.cookiesLost+r.replaysAccepted+r.doubleRedeemed > 0 {
			b.Errorf("%s, %s: %d tokens, %d sessions, %d proxy sessions lost; %d replays accepted; %d tokens redeemed twice",
				r.topology, r.fault, r.tokensLost, r.sessionsLost, r.cookiesLost, r.replaysAccepted, r.doubleRedeemed)
		}
	}
}

func printHARows(rows []haRow) {
	fmt.Fprintf(os.Stdout, "\n%-13s %-45s %8s %6s %9s %9s %14s %10s %10s %14s %8s %8s %8s\n",
		"topology", "fault", "requests", "failed", "settled", "recovery", "tokens lost", "sessions", "cookies", "replays", "p99", "p99", "p99")
	fmt.Fprintf(os.Stdout, "%-13s %-45s %8s %6s %9s %9s %14s %10s %10s %14s %8s %8s %8s\n",
		"", "", "", "", "", "", "", "lost", "lost", "accepted", "before", "during", "after")
	for _, r := range rows {
		fmt.Fprintf(os.Stdout, "%-13s %-45s %8d %6d %9s %9s %14s %10s %10s %14s %8s %8s %8s\n",
			r.topology, r.fault, r.requests, r.failed, r.switchTime.Round(10*time.Millisecond), recovery(r.recovery),
			fmt.Sprintf("%d/%d", r.tokensLost, r.tokens), fmt.Sprintf("%d/%d", r.sessionsLost, r.sessions),
			fmt.Sprintf("%d/%d", r.cookiesLost, r.cookies), fmt.Sprintf("%d/%d", r.replaysAccepted, r.authenticators),
			ms(r.p99Before), ms(r.p99During), ms(r.p99After))
	}
	for _, r := range rows {
		if r.doubleRedeemed > 0 || r.refusedRedeemsConsumed > 0 || len(r.firstFailures) > 0 {
			fmt.Fprintf(os.Stdout, "%s, %s: %d tokens redeemed twice; %d redemptions answered 503 consumed their token; first failures %v\n",
				r.topology, r.fault, r.doubleRedeemed, r.refusedRedeemsConsumed, r.firstFailures)
		}
	}
}

// recovery renders a time to recover; "none" while still failing at the end.
func recovery(d time.Duration) string {
	if d < 0 {
		return "when back"
	}
	return d.Round(10 * time.Millisecond).String()
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}

// BenchmarkRedisHAThroughput measures, side by side in one run, one kerbgate node
// with each store: one Redis; Sentinel (1 primary, 2 replicas) with
// min_replica_acks 0, 1 and 2; a Cluster (3 primaries, 3 replicas) with 0 and 1.
// Every Redis keeps an append-only file (fsync every second). Two operations at 16
// concurrent clients: a sign-in (GET /whoami with a fresh authenticator: one
// replay-cache write) and a handoff (GET /sso/login, then POST /sso/redeem on the
// same node: five writes — replay entry, browser session, token, redemption,
// application session). Authenticators are made before the timer starts. The b.N
// operations of each kind and store run in five rounds, the stores in turn within
// each round, so that load from elsewhere on the machine falls on all of them; the
// table gives each store's median round and its ratio to one Redis.
//
//	go test -run '^$' -bench RedisHAThroughput -benchtime 20000x ./internal/server
func BenchmarkRedisHAThroughput(b *testing.B) {
	w := newHAWorld(b)
	plain := redistest.Start(b, redistest.Options{Persist: true})
	s := redistest.StartSentinel(b, redistest.SentinelOptions{Server: redistest.Options{Persist: true}})
	c := redistest.StartCluster(b, redistest.ClusterOptions{Server: redistest.Options{Persist: true}})
	var targets []haTarget
	for _, st := range []struct {
		name string
		rc   config.Redis
		id   string
	}{
		{"one Redis", config.Redis{Addrs: []string{plain.Addr}}, plain.Addr},
		{"Sentinel 1+2, acks 0", sentinelRedis(s, 0), s.SentinelAddrs()[0]},
		{"Sentinel 1+2, acks 1", sentinelRedis(s, 1), s.SentinelAddrs()[0]},
		{"Sentinel 1+2, acks 2", sentinelRedis(s, 2), s.SentinelAddrs()[0]},
		{"Cluster 3+3, acks 0", clusterRedis(c, 0), c.Addrs()[0]},
		{"Cluster 3+3, acks 1", clusterRedis(c, 1), c.Addrs()[0]},
	} {
		targets = append(targets, haTarget{st.name, startHANode(b, w.config(b, st.rc, st.id))})
	}
	cred, err := initiator.FromCCache(w.cc, testrealm.GatewaySPN)
	if err != nil {
		b.Fatal(err)
	}
	// One handoff each first: the application's secret is then checked from the
	// cache, not with argon2id (of which only two run at once).
	once := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tg := range targets {
		if err := benchOp(once, tg.g, "handoff", header(cred)); err != nil {
			b.Fatalf("%s: %v", tg.name, err)
		}
	}
	// The stores are set up once; the sub-benchmark runs first with b.N = 1
	// (rounds of 16 operations), then with -benchtime's count.
	b.Run("rounds", func(b *testing.B) { throughputRounds(b, targets, cred) })
}

func throughputRounds(b *testing.B, targets []haTarget, cred *initiator.Credential) {
	const rounds = 5
	per := max(b.N/rounds, 16)
	type result struct {
		rates []float64
		lat   []time.Duration
	}
	results := map[string]*result{}
	for round := range rounds {
		for _, op := range []string{"signin", "handoff"} {
			for _, tg := range targets {
				key := op + "/" + tg.name
				if results[key] == nil {
					results[key] = &result{}
				}
				rate, lat, err := benchRound(tg.g, op, per, cred)
				if err != nil {
					b.Fatalf("round %d, %s: %v", round+1, key, err)
				}
				results[key].rates = append(results[key].rates, rate)
				results[key].lat = append(results[key].lat, lat...)
			}
		}
	}
	fmt.Fprintf(os.Stdout, "\none kerbgate node, 16 clients, %d rounds of %d operations per store (median round)\n", rounds, per)
	fmt.Fprintf(os.Stdout, "%-22s %11s %7s %8s %8s %11s %7s %8s %8s\n", "store", "sign-ins/s", "ratio", "p50", "p99", "handoffs/s", "ratio", "p50", "p99")
	median := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	base := map[string]float64{}
	for _, tg := range targets {
		line := fmt.Sprintf("%-22s", tg.name)
		for _, op := range []string{"signin", "handoff"} {
			r := results[op+"/"+tg.name]
			rate := median(r.rates)
			if _, ok := base[op]; !ok {
				base[op] = rate
			}
			sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
			line += fmt.Sprintf(" %11.0f %7.2f %8s %8s", rate, rate/base[op], ms(r.lat[len(r.lat)/2]), ms(r.lat[len(r.lat)*99/100]))
		}
		fmt.Fprintln(os.Stdout, line)
	}
}

// haTarget is a kerbgate node on one of the stores compared.
type haTarget struct {
	name string
	g    *gateway
}

// benchRound runs n operations of op against g with 16 clients, each with an
// authenticator made beforehand, and returns operations per second and every
// operation's latency.
func benchRound(g *gateway, op string, n int, cred *initiator.Credential) (float64, []time.Duration, error) {
	headers := make([]string, n)
	for i := range headers {
		headers[i] = header(cred)
	}
	var (
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, n)
		next  int
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for {
				mu.Lock()
				if next == n {
					mu.Unlock()
					return
				}
				h := headers[next]
				next++
				mu.Unlock()
				t0 := time.Now()
				err := benchOp(client, g, op, h)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), lat, first
}

// benchOp runs one sign-in or handoff with the Authorization header h.
func benchOp(client *http.Client, g *gateway, op, h string) error {
	path, want := "/whoami", 200
	if op == "handoff" {
		path, want = "/sso/login?app=demo", http.StatusFound
	}
	req, _ := http.NewRequest("GET", g.url("sso.example.test", path), nil)
	req.Header.Set("Authorization", h)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	if op != "handoff" {
		return nil
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	req, _ = http.NewRequest("POST", g.url("127.0.0.1", "/sso/redeem"), strings.NewReader(url.Values{"ssoToken": {loc.Query().Get("ssoToken")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo", demoSecret)
	resp, err = client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("redeem: %d", resp.StatusCode)
	}
	return nil
}
