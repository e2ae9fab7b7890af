package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// Farm mode against the real domain and a real redis-server: nodes share tokens,
// sessions and the replay cache, and refuse with store_unavailable while Redis is
// away.

const redisTimeout = 500 * time.Millisecond

// withRedis returns cfg with its store in srv (as store.redis would configure it).
func withRedis(cfg *config.Config, srv *redistest.Server) *config.Config {
	c := *cfg
	c.Store = config.Store{Redis: &config.Redis{
		Addrs: []string{srv.Addr}, Prefix: "kerbgate:", DialTimeout: time.Second, Timeout: redisTimeout,
	}, CookieKeysFile: farmCookieKeys(srv.Addr)}
	return &c
}

// refusals returns kerbgate_refusals_total{reason=code} from /metrics.
func (g *gateway) refusals(code string) int {
	g.t.Helper()
	resp := g.get("/metrics", "")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`kerbgate_refusals_total\{reason="` + code + `"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		g.t.Fatalf("no refusal counter for %s", code)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// whoami signs in with a fresh authenticator from the service ticket in cc.
func (g *gateway) whoami(t *testing.T, cc string) *http.Response {
	t.Helper()
	resp := g.get("/whoami", negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{}))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// handoff runs GET /sso/login with curl --negotiate and redeems the token; it
// returns the redemption's status, or the login's if it did not redirect.
func (g *gateway) handoff(t *testing.T, r *testrealm.Realm, cc string) (int, string) {
	t.Helper()
	status, loc, why := g.login(r, cc, "app=demo")
	if status != http.StatusFound {
		return status, why
	}
	resp, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken"))
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Error
}

func TestRedisOutageRefusesWithStoreUnavailableAndRecovers(t *testing.T) {
	r := testrealm.Require(t)
	srv := redistest.Start(t, redistest.Options{})
	g := startGateway(t, withRedis(handoffConfig(t, r, "http://app.example.test:9"), srv))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)

	if resp := g.whoami(t, cc); resp.StatusCode != 200 {
		t.Fatalf("sign-in with Redis up: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	status, loc, why := g.login(r, cc, "app=demo")
	if status != http.StatusFound {
		t.Fatalf("login with Redis up: %d %s", status, why)
	}
	token := loc.Query().Get("ssoToken")

	srv.Kill()
	start := time.Now()
	resp := g.whoami(t, cc)
	wantReason(t, resp, http.StatusServiceUnavailable, "store_unavailable")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("sign-in refusal with Redis down took %v", d)
	}
	if status, why := g.handoff(t, r, cc); status != http.StatusServiceUnavailable || why != "store_unavailable" {
		t.Errorf("handoff with Redis down: %d %s, want 503 store_unavailable", status, why)
	}
	resp, body := g.redeem("demo", demoSecret, token)
	wantAPIError(t, resp, body, http.StatusServiceUnavailable, "store_unavailable")
	if got := g.sessionRequest("GET", "demo", demoSecret, "some-session-id"); got.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("session lookup with Redis down: %d, want 503", got.StatusCode)
	}
	if n := g.refusals("store_unavailable"); n < 4 {
		t.Errorf("kerbgate_refusals_total{reason=store_unavailable} = %d, want at least 4", n)
	}
	logs := g.logs.String()
	for _, want := range []string{`"reason":"store_unavailable"`, `"op":"replay_check"`, `"op":"take_token"`, `"level":"ERROR"`, srv.Addr} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}

	// A hung Redis (connections open, no answer) delays a request by about the
	// configured timeout, no more.
	srv.Restart()
	waitSignIn(t, g, cc)
	srv.Pause()
	start = time.Now()
	resp = g.whoami(t, cc)
	d := time.Since(start)
	srv.Resume()
	wantReason(t, resp, http.StatusServiceUnavailable, "store_unavailable")
	if d > redisTimeout+time.Second {
		t.Errorf("sign-in with Redis hung took %v (store.redis.timeout %v)", d, redisTimeout)
	}

	// Redis is back (empty, on the same port): the same kerbgate serves again.
	srv.Restart()
	waitSignIn(t, g, cc)
	if status, why := g.handoff(t, r, cc); status != http.StatusOK {
		t.Fatalf("handoff after Redis came back: %d %s", status, why)
	}
	// The token issued before the outage died with Redis's memory (no persistence).
	resp, body = g.redeem("demo", demoSecret, token)
	wantAPIError(t, resp, body, http.StatusBadRequest, "token_invalid")
}

// waitSignIn signs in until it works (Redis's client probes a dead server once a
// second), for at most 5 seconds.
func waitSignIn(t *testing.T, g *gateway, cc string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := g.whoami(t, cc)
		if resp.StatusCode == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign-in did not recover after Redis came back: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFarmTwoNodesShareRedis is two kerbgate instances behind a (notional) load
// balancer, sharing one Redis.
func TestFarmTwoNodesShareRedis(t *testing.T) {
	r := testrealm.Require(t)
	srv := redistest.Start(t, redistest.Options{})
	cfg := withRedis(handoffConfig(t, r, "http://app.example.test:9"), srv)
	node1, node2 := startGateway(t, cfg), startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)

	t.Run("ssoToken issued by node 1 is redeemed on node 2", func(t *testing.T) {
		status, loc, why := node1.login(r, cc, "app=demo")
		if status != http.StatusFound {
			t.Fatalf("login on node 1: %d %s", status, why)
		}
		token := loc.Query().Get("ssoToken")
		resp, body := node2.redeem("demo", demoSecret, token)
		if resp.StatusCode != 200 {
			t.Fatalf("redeem on node 2: %d %s", resp.StatusCode, body)
		}
		var got sso.Response
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Identity.Principal != "alice@EXAMPLE.TEST" {
			t.Fatalf("identity %+v", got.Identity)
		}
		resp, body = node1.redeem("demo", demoSecret, token)
		wantAPIError(t, resp, body, http.StatusBadRequest, "token_invalid")
		if !strings.Contains(node1.logs.String(), `"cause":"used"`) {
			t.Error("node 1 does not log the token as used")
		}

		// The session node 2 made is valid on node 1, and revoked for both.
		sid := got.Session.ID
		if s := node1.sessionRequest("GET", "demo", demoSecret, sid); s.StatusCode != 200 {
			t.Fatalf("node 2's session on node 1: %d", s.StatusCode)
		}
		if s := node1.sessionRequest("DELETE", "demo", demoSecret, sid); s.StatusCode != 204 {
			t.Fatalf("revoke on node 1: %d", s.StatusCode)
		}
		if s := node2.sessionRequest("GET", "demo", demoSecret, sid); s.StatusCode != 404 {
			t.Fatalf("revoked session on node 2: %d", s.StatusCode)
		}
	})

	t.Run("browser session from node 1 spares Negotiate on node 2", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", node1.url("127.0.0.1", "/sso/login?app=demo"), nil)
		req.Header.Set("Authorization", negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if resp.StatusCode != http.StatusFound || len(cookies) == 0 {
			t.Fatalf("login on node 1: %d, cookies %v", resp.StatusCode, cookies)
		}
		req, _ = http.NewRequest("GET", node2.url("127.0.0.1", "/sso/login?app=demo"), nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "ssoToken=") {
			t.Fatalf("login on node 2 with node 1's cookie: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
	})

	t.Run("authenticator accepted on node 1 is a replay on node 2", func(t *testing.T) {
		h := negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{})
		resp := node1.get("/whoami", h)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("first use on node 1: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		resp = node2.get("/whoami", h)
		resp.Body.Close()
		wantReason(t, resp, http.StatusUnauthorized, "replay")
		resp = node1.get("/whoami", h)
		resp.Body.Close()
		wantReason(t, resp, http.StatusUnauthorized, "replay")
	})
}

func TestRedisWrongPasswordStopsStartup(t *testing.T) {
	r := testrealm.Require(t)
	srv := redistest.Start(t, redistest.Options{Users: []string{"kerbgate on >right-password ~kerbgate:* -@all +get +set +del +eval +evalsha +ping"}})
	pwFile := filepath.Join(t.TempDir(), "redis.password")
	const wrong = "wrong-password-5d2c"
	mustWriteFile(t, pwFile, wrong+"\n")
	cfg := withRedis(baseConfig(r), srv)
	cfg.Store.Redis.Username, cfg.Store.Redis.PasswordFile = "kerbgate", pwFile
	logs := &lockedBuffer{}
	srvr, err := newFromConfig(cfg, slog.New(slog.NewJSONHandler(logs, nil)), Options{})
	if err == nil {
		srvr.Close()
		t.Fatal("kerbgate started with a wrong Redis password")
	}
	msg := err.Error()
	for _, want := range []string{"store.redis: Redis refused kerbgate's credentials", "WRONGPASS", srv.Addr, "store.redis.username"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg+logs.String(), wrong) {
		t.Error("the password appears in the error or the log")
	}

	// The right password: kerbgate starts and signs in through the ACL user.
	mustWriteFile(t, pwFile, "right-password\n")
	g := startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)
	if resp := g.whoami(t, cc); resp.StatusCode != 200 {
		t.Fatalf("sign-in as the ACL user: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
}

// TestRedisDownAtStartup: kerbgate starts without Redis, says so, refuses, and serves
// once Redis is up.
func TestRedisDownAtStartup(t *testing.T) {
	r := testrealm.Require(t)
	srv := redistest.Start(t, redistest.Options{})
	srv.Kill()
	g := startGateway(t, withRedis(baseConfig(r), srv))
	if !strings.Contains(g.logs.String(), "Redis cannot be reached") {
		t.Errorf("start-up log does not say Redis is unreachable:\n%s", g.logs.String())
	}
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)
	wantReason(t, g.whoami(t, cc), http.StatusServiceUnavailable, "store_unavailable")
	srv.Restart()
	waitSignIn(t, g, cc)
}

var farmKeysMu sync.Mutex

// farmCookieKeys returns the cookie key file that every node using the Redis at addr
// shares (a farm's store.cookie_keys_file).
func farmCookieKeys(addr string) string {
	farmKeysMu.Lock()
	defer farmKeysMu.Unlock()
	path := filepath.Join(os.TempDir(), "kerbgate-test-cookie-"+strings.NewReplacer(":", "_", ".", "_").Replace(addr)+".keys")
	if _, err := os.Stat(path); err != nil {
		os.WriteFile(path, []byte(keyset.NewKeyLine()+"\n"), 0o600)
	}
	return path
}
