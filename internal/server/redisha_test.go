package server

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// A kerbgate node configured with store.redis.master_name follows a Sentinel
// failover without a restart: the primary is killed, requests are refused with
// store_unavailable until a replica is promoted, then succeed; the token issued
// before redeems, and the authenticator accepted before is still a replay. The
// store's own tests and BenchmarkRedisHAFailover go further.
func TestFarmOnSentinelFollowsFailover(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	s := redistest.StartSentinel(t, redistest.SentinelOptions{DownAfter: 500 * time.Millisecond})
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Store = config.Store{Redis: &config.Redis{
		Addrs: s.SentinelAddrs(), MasterName: s.MasterName, Prefix: "kerbgate:",
		DialTimeout: time.Second, Timeout: redisTimeout, MinReplicaAcks: 1, ReplicaAckTimeout: 200 * time.Millisecond,
	}, CookieKeysFile: farmCookieKeys(s.SentinelAddrs()[0])}
	g := startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.GatewaySPN)

	status, loc, why := g.login(r, cc, "app=demo")
	if status != http.StatusFound {
		t.Fatalf("login: %d %s", status, why)
	}
	accepted := negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{})
	if resp := g.get("/whoami", accepted); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}

	old := s.Primary(t)
	old.Kill()
	start := time.Now()
	refused := 0
	for {
		resp := g.get("/whoami", negotiateHeader(t, cc, testrealm.GatewaySPN, initiator.Options{}))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Kerbgate-Reason") != "store_unavailable" {
			t.Fatalf("during the failover: %d %s, want 503 store_unavailable", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		refused++
		if time.Since(start) > 20*time.Second {
			t.Fatalf("sign-ins still refused 20s after the primary died: %d refused", refused)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("sign-ins refused for %v (%d requests), then accepted; the Sentinels name %s", time.Since(start).Round(time.Millisecond), refused, s.Primary(t).Addr)
	if g.refusals("store_unavailable") != refused {
		t.Errorf("refusals counted: %d, want %d", g.refusals("store_unavailable"), refused)
	}

	if resp, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken")); resp.StatusCode != 200 {
		t.Errorf("the token issued before the failover: %d %s", resp.StatusCode, body)
	}
	wantReason(t, g.get("/whoami", accepted), 401, "replay")
}
