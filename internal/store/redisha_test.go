package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/internal/store/storetest"
)

// Redis with replicas, against real Sentinel and Cluster set-ups (redistest):
// kerbgate follows a failover without being restarted, a write is reported done
// only once the replicas it needs hold it, and no fault loses what was reported
// done. The long runs under load are in internal/server (BenchmarkRedisHA).

// haACL is the least a kerbgate user needs with replicas: WAIT, and with a
// Cluster the slot map and ASKING (to follow a slot being migrated). It is the
// rule docs/farm.md gives.
const haACL = kerbgateACL + " +wait +cluster|slots +asking"

// timeouts are a store's Timeout (each operation) and ReplicaAckTimeout (WAIT).
type timeouts struct{ op, ack time.Duration }

var (
	// steady leaves room for a loaded machine: nothing here should time out.
	steady = timeouts{op: 3 * time.Second, ack: time.Second}
	// refusing is for tests that expect WAIT to time out.
	refusing = timeouts{op: 3 * time.Second, ack: 200 * time.Millisecond}
	// faulty bounds what a dead or hung primary costs each write.
	faulty = timeouts{op: 600 * time.Millisecond, ack: 300 * time.Millisecond}
)

func haUsers() []string { return []string{"kerbgate " + haACL} }

func openSentinel(t *testing.T, s *redistest.Sentinel, acks int, tm timeouts) *store.Redis {
	t.Helper()
	return openRedis(t, store.RedisOptions{
		Addrs: s.SentinelAddrs(), MasterName: s.MasterName, Username: "kerbgate", Password: "kerbgate-redis-pw",
		MinReplicaAcks: acks, ReplicaAckTimeout: tm.ack, Timeout: tm.op, DialTimeout: tm.op,
	})
}

func openCluster(t *testing.T, c *redistest.Cluster, acks int, tm timeouts) *store.Redis {
	t.Helper()
	return openRedis(t, store.RedisOptions{
		Addrs: c.Addrs(), Username: "kerbgate", Password: "kerbgate-redis-pw",
		MinReplicaAcks: acks, ReplicaAckTimeout: tm.ack, Timeout: tm.op, DialTimeout: tm.op,
	})
}

// ledger is what a store reported done, to check after a fault that none of it
// was lost: tokens issued (to be taken now), tokens taken (to stay used),
// sessions made and revoked, and authenticators recorded (to stay replays). A
// write that failed has an unknown fate and is not checked.
type ledger struct {
	mu                sync.Mutex
	seq               int
	tokens, taken     []string
	sessions, revoked []string
	replays           []replay.Key
	ok, failed        int
	errs              []string
}

// step does one of each write and records what succeeded; it returns whether
// all did.
func (l *ledger) step(st store.Store) bool {
	now := time.Now()
	l.mu.Lock()
	l.seq++
	n := l.seq
	l.mu.Unlock()
	all := true
	note := func(what string, err error, record func()) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err == nil {
			l.ok++
			if record != nil {
				record()
			}
			return
		}
		all = false
		l.failed++
		// The first errors and the last.
		if len(l.errs) < 6 {
			l.errs = append(l.errs, what+": "+err.Error())
		} else {
			l.errs[5] = what + ": " + err.Error()
		}
	}

	tok, _ := store.NewID(nil)
	err := st.PutToken(ctx, tok, storetest.SampleToken(now, 10*time.Minute))
	switch {
	case err != nil:
		note("put_token", err, nil)
	case n%4 == 0: // redeemed as the OIDC token endpoint does, reading sessions in the same operation
		note("put_token", nil, nil)
		// The previous step's session and one never made: in a Cluster their
		// keys are most likely on other primaries than the token's.
		ids := []string{fmt.Sprintf("session-%p-%d", l, n-1), fmt.Sprintf("no-session-%p-%d", l, n)}
		_, reads, err := st.TakeTokenReading(ctx, tok, "wiki", now, ids)
		if err == nil && (len(reads) != 2 || !errors.Is(reads[1].Err, store.ErrNotFound)) {
			err = fmt.Errorf("reads %+v, want two, the second ErrNotFound", reads)
		}
		note("take_token_reading", err, func() { l.taken = append(l.taken, tok) })
	case n%2 == 0: // every other token is redeemed at once: its tombstone must survive
		note("put_token", nil, nil)
		_, err := st.TakeToken(ctx, tok, "wiki", now)
		note("take_token", err, func() { l.taken = append(l.taken, tok) })
	default:
		note("put_token", nil, func() { l.tokens = append(l.tokens, tok) })
	}

	sid := fmt.Sprintf("session-%p-%d", l, n)
	err = st.PutSession(ctx, sid, storetest.SampleSession(now, time.Hour))
	switch {
	case err != nil:
		note("put_session", err, nil)
	case n%3 == 0: // every third is revoked: the revocation must survive
		note("put_session", nil, nil)
		note("delete_session", st.DeleteSession(ctx, sid), func() { l.revoked = append(l.revoked, sid) })
	default:
		note("put_session", nil, func() { l.sessions = append(l.sessions, sid) })
	}

	var k replay.Key
	rand.Read(k[:])
	seen, err := st.SeenBefore(ctx, k, now, now.Add(10*time.Minute))
	if err == nil && seen {
		err = errors.New("a new authenticator was reported seen")
	}
	note("replay_check", err, func() { l.replays = append(l.replays, k) })
	return all
}

// verify checks that nothing the store reported done was lost: every issued
// token is taken now, once; every taken token stays used; every session is
// there; every revoked session stays gone; every authenticator is a replay.
func (l *ledger) verify(t *testing.T, st store.Store) {
	t.Helper()
	now := time.Now()
	lost := 0
	// A check the store cannot answer (a slow moment) is asked again; only an
	// answer counts.
	retry := func(op func() error) error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := op()
			if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, tok := range l.tokens {
		refused := false
		err := retry(func() error {
			_, err := st.TakeToken(ctx, tok, "wiki", now)
			if errors.Is(err, store.ErrUnavailable) {
				refused = true
			}
			return err
		})
		if refused && errors.Is(err, store.ErrTokenUsed) {
			err = nil // a refused redemption that reached the primary: it was there
		}
		if err != nil {
			lost++
			t.Errorf("an issued token does not redeem: %v", err)
		}
	}
	for _, tok := range l.taken {
		if err := retry(func() error { _, err := st.TakeToken(ctx, tok, "wiki", now); return err }); !errors.Is(err, store.ErrTokenUsed) {
			lost++
			t.Errorf("a redeemed token redeems again or is gone: %v", err)
		}
	}
	for _, sid := range l.sessions {
		if err := retry(func() error { _, err := st.GetSession(ctx, sid, now); return err }); err != nil {
			lost++
			t.Errorf("a session is lost: %v", err)
		}
	}
	for _, sid := range l.revoked {
		if err := retry(func() error { _, err := st.GetSession(ctx, sid, now); return err }); !errors.Is(err, store.ErrNotFound) {
			lost++
			t.Errorf("a revoked session came back: %v", err)
		}
	}
	for _, k := range l.replays {
		var seen bool
		if err := retry(func() (err error) { seen, err = st.SeenBefore(ctx, k, now, now.Add(time.Minute)); return err }); err != nil || !seen {
			lost++
			t.Errorf("a recorded authenticator is accepted again: seen=%v %v", seen, err)
		}
	}
	t.Logf("checked after the fault: %d tokens issued, %d redeemed, %d sessions, %d revoked, %d authenticators; %d lost",
		len(l.tokens), len(l.taken), len(l.sessions), len(l.revoked), len(l.replays), lost)
}

// underFault writes with workers until stop, recording what succeeded.
func (l *ledger) underFault(st store.Store, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.step(st)
			}
		}()
	}
	return &wg
}

// waitRecovered steps until a full step succeeds after the fault; it returns
// how long that took.
func waitRecovered(t *testing.T, l *ledger, st store.Store, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for !l.step(st) {
		if time.Since(since) > limit {
			t.Fatalf("the store did not recover within %v: %v", limit, l.errs)
		}
	}
	return time.Since(since)
}

func TestRedisSentinelSuite(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{Server: redistest.Options{Users: haUsers()}})
	storetest.RunSuite(t, func(t *testing.T) store.Store {
		r := openSentinel(t, s, 2, steady)
		if err := s.Primary(t).Client(t).FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		return r
	})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		return openSentinel(t, s, 1, steady), openSentinel(t, s, 1, steady)
	})
}

// A write is reported done only once the replicas hold it: with both replicas
// paused, or one with min_replica_acks 2, every write is refused with
// ErrUnavailable within the acknowledgement timeout, and works again when they
// resume. What was reported done is on the replicas.
func TestRedisSentinelRefusesWritesReplicasDoNotConfirm(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{Server: redistest.Options{Users: haUsers()}})
	one, two := openSentinel(t, s, 1, refusing), openSentinel(t, s, 2, refusing)
	replicas := s.Nodes[1:]
	now := time.Now()

	// Acknowledged by both: both replicas hold the token at once.
	tok, _ := store.NewID(nil)
	if err := two.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(tok))
	for _, r := range replicas {
		if n, err := r.Client(t).Exists(ctx, "kerbgate:tok:"+hex.EncodeToString(h[:])).Result(); err != nil || n != 1 {
			t.Fatalf("replica %s does not hold an acknowledged token: %d %v", r.Addr, n, err)
		}
	}
	for _, id := range []string{"kept", "revoke-1", "revoke-2"} {
		if err := one.PutSession(ctx, id, storetest.SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tok1, tok2 := newToken(t, one, now), newToken(t, one, now)
	// Taken with sessions read in the same operation (the OIDC token endpoint).
	read1, read2 := newToken(t, one, now), newToken(t, one, now)

	refused := func(st store.Store, what, tok, read, revoke string, k replay.Key) {
		t.Helper()
		fresh, _ := store.NewID(nil)
		start := time.Now()
		errs := map[string]error{"put_token": st.PutToken(ctx, fresh, storetest.SampleToken(now, time.Minute))}
		_, errs["take_token"] = st.TakeToken(ctx, tok, "wiki", now)
		_, _, errs["take_token_reading"] = st.TakeTokenReading(ctx, read, "wiki", now, []string{"kept", "absent"})
		errs["put_session"] = st.PutSession(ctx, "another", storetest.SampleSession(now, time.Hour))
		errs["delete_session"] = st.DeleteSession(ctx, revoke)
		_, errs["replay_check"] = st.SeenBefore(ctx, k, now, now.Add(time.Minute))
		errs["ping"] = st.(*store.Redis).Ping(ctx)
		// Smart lockout's counts: a count lost in a failover is a guess more.
		_, errs["take_attempt"] = st.(*store.Redis).TakeAttempt(ctx, "u:"+what, now, store.AttemptLimit{Max: 5, Window: time.Minute})
		errs["return_attempt"] = st.(*store.Redis).ReturnAttempt(ctx, "u:"+what)
		errs["reset_attempts"] = st.(*store.Redis).ResetAttempts(ctx, "u:"+what)
		errs["put_familiar"] = st.(*store.Redis).PutFamiliar(ctx, "f:"+what, now.Add(time.Hour))
		for op, err := range errs {
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "replica(s) required within 200ms") {
				t.Errorf("%s: %s: %v, want ErrUnavailable for missing acknowledgements", what, op, err)
			}
		}
		// Redis times WAIT out on its own timer (hz 10: in steps of 100ms).
		if d := time.Since(start); d > time.Duration(len(errs))*(refusing.ack+300*time.Millisecond) {
			t.Errorf("%s: %d refusals took %v (acknowledgement timeout %v)", what, len(errs), d, refusing.ack)
		}
		// Reads do not wait for replicas.
		if _, err := st.GetSession(ctx, "kept", now); err != nil {
			t.Errorf("%s: reading a session: %v", what, err)
		}
		t.Logf("%s: %v", what, errs["put_token"])
	}

	replicas[0].Pause()
	refused(two, "one replica paused, min_replica_acks 2", tok1, read1, "revoke-1", replay.Key{1})
	if err := one.PutSession(ctx, "with-one", storetest.SampleSession(now, time.Hour)); err != nil {
		t.Fatalf("one replica paused, min_replica_acks 1: %v", err)
	}
	replicas[1].Pause()
	refused(one, "both replicas paused, min_replica_acks 1", tok2, read2, "revoke-2", replay.Key{2})
	// A refused write may have reached the primary: the refused redemption
	// leaves the token used (refused, never accepted: fail closed), the refused
	// authenticator is a replay from now on.
	replicas[0].Resume()
	replicas[1].Resume()
	for _, tok := range []string{tok2, read2} {
		if _, err := one.TakeToken(ctx, tok, "wiki", now); !errors.Is(err, store.ErrTokenUsed) {
			t.Errorf("the token whose refused take reached the primary: %v, want ErrTokenUsed", err)
		}
	}
	if seen, err := one.SeenBefore(ctx, replay.Key{2}, now, now.Add(time.Minute)); err != nil || !seen {
		t.Errorf("the authenticator whose refused check reached the primary: seen=%v %v", seen, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := two.PutToken(ctx, "after-resume-"+time.Now().String(), storetest.SampleToken(now, time.Minute))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still refused after the replicas resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Why: without acknowledgements, a token the primary alone holds (its
	// replicas cut off, as in a partition) is lost when it fails; with them,
	// the write is refused instead of promised.
	none := openSentinel(t, s, 0, refusing)
	old := s.Primary(t)
	replicas[0].Pause()
	replicas[1].Pause()
	if err := old.Client(t).Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	promised := newToken(t, none, now)
	if err := one.PutSession(ctx, "refused", storetest.SampleSession(now, time.Hour)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a session with the replicas cut off: %v, want ErrUnavailable", err)
	}
	old.Kill()
	replicas[0].Resume()
	replicas[1].Resume()
	s.WaitFailover(t, old, 20*time.Second)
	if _, err := none.TakeToken(ctx, promised, "wiki", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("min_replica_acks 0: a token only the failed primary held: %v after the failover, want ErrNotFound (lost)", err)
	}
	if _, err := one.TakeToken(ctx, tok, "wiki", now); err != nil {
		t.Errorf("min_replica_acks 2: a token acknowledged before: %v after the failover", err)
	}
}

func newToken(t *testing.T, st store.Store, now time.Time) string {
	t.Helper()
	tok, _ := store.NewID(nil)
	if err := st.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
		t.Fatal(err)
	}
	return tok
}

// Open says so at start-up when the primary has fewer replicas than
// min_replica_acks (every write would be refused), and stops when the ACL
// refuses WAIT.
func TestRedisOpenChecksReplicasAndCommands(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1, Server: redistest.Options{
		Users: append(haUsers(), "nowait on >pw ~kerbgate:* resetchannels -@all +get +set +del +eval +evalsha +ping")}})
	var logs strings.Builder
	open := func(user string, acks int) (store.Store, error) {
		return openLogged(&logs, &store.RedisOptions{
			Addrs: s.SentinelAddrs(), MasterName: s.MasterName, Username: user, Password: map[string]string{"kerbgate": "kerbgate-redis-pw", "nowait": "pw"}[user],
			MinReplicaAcks: acks, ReplicaAckTimeout: refusing.ack, Timeout: refusing.op,
		})
	}
	st, err := open("kerbgate", 2)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !strings.Contains(logs.String(), "fewer replicas acknowledging writes than store.redis.min_replica_acks") ||
		!strings.Contains(logs.String(), "acknowledged by 1 of the 2 replica(s)") {
		t.Errorf("start-up with 1 replica and min_replica_acks 2 logged:\n%s", logs.String())
	}
	if _, err := open("nowait", 1); !errors.Is(err, store.ErrRedisAuth) || !strings.Contains(err.Error(), "+wait") || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("start-up as a user without +wait: %v", err)
	}
	if st, err := open("nowait", 0); err != nil {
		t.Errorf("start-up as a user without +wait, min_replica_acks 0: %v", err)
	} else {
		st.Close()
	}
}

func openLogged(logs *strings.Builder, ro *store.RedisOptions) (store.Store, error) {
	st, _, err := store.Open(store.Options{Log: slog.New(slog.NewTextHandler(logs, nil)), Redis: ro})
	return st, err
}

// kerbgate follows a Sentinel failover without a restart, and loses nothing it
// reported done: the primary is killed (SIGKILL), or paused (SIGSTOP) past the
// Sentinels' down-after time and then resumed, while four writers run.
func TestRedisSentinelFailoverLosesNothingAcknowledged(t *testing.T) {
	for _, fault := range []string{"kill", "pause"} {
		t.Run(fault, func(t *testing.T) {
			s := redistest.StartSentinel(t, redistest.SentinelOptions{DownAfter: 500 * time.Millisecond, Server: redistest.Options{Users: haUsers(), Persist: true}})
			st := openSentinel(t, s, 1, faulty)
			l := &ledger{}
			for range 20 {
				if !l.step(st) {
					t.Fatalf("before the fault: %v", l.errs)
				}
			}
			old := s.Primary(t)
			stop := make(chan struct{})
			wg := l.underFault(st, 4, stop)
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			if fault == "kill" {
				old.Kill()
			} else {
				old.Pause()
			}
			next := s.WaitFailover(t, old, 20*time.Second)
			failover := time.Since(start)
			recovered := waitRecovered(t, l, st, start, 20*time.Second)
			time.Sleep(200 * time.Millisecond)
			close(stop)
			wg.Wait()
			if fault == "pause" {
				old.Resume() // it comes back a primary, until the Sentinels demote it
				for range 10 {
					l.step(st)
				}
			}
			t.Logf("%s %s: the Sentinels promoted %s after %v; writes succeed again after %v; %d writes failed, %d succeeded; %v",
				fault, old.Addr, next.Addr, failover.Round(time.Millisecond), recovered.Round(time.Millisecond), l.failed, l.ok, l.errs)
			l.verify(t, st)
			if t.Failed() {
				t.Log(s.Log())
			}
		})
	}
}

// clusterSlot is Redis Cluster's hash slot of a key without a hash tag: CRC16
// (XMODEM) of the key, modulo 16384.
func clusterSlot(key string) int {
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

func tokenKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return "kerbgate:tok:" + hex.EncodeToString(h[:])
}

// tokensInSlot returns n new tokens whose keys are all in slot.
func tokensInSlot(slot, n int) []string {
	var out []string
	for len(out) < n {
		tok, _ := store.NewID(nil)
		if clusterSlot(tokenKey(tok)) == slot {
			out = append(out, tok)
		}
	}
	return out
}

// keysOf returns the keys a command names (the ones the store sends).
func keysOf(args []any) []string {
	var keys []string
	name := strings.ToLower(fmt.Sprint(args[0]))
	switch name {
	case "eval", "evalsha":
		n, _ := args[2].(int)
		for _, k := range args[3 : 3+n] {
			keys = append(keys, fmt.Sprint(k))
		}
	case "set", "get", "del", "exists":
		for _, k := range args[1:] {
			keys = append(keys, fmt.Sprint(k))
			if name != "del" && name != "exists" {
				break
			}
		}
	}
	return keys
}

// commandRecorder keeps the arguments of every command a client sends.
type commandRecorder struct {
	mu   sync.Mutex
	cmds [][]any
}

func (c *commandRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.cmds = append(c.cmds, cmd.Args())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (c *commandRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The behaviour suite against a Cluster, as the ACL user of docs/farm.md. Every
// command the store sends names one key (so no Lua script can span two slots),
// and the keys spread over every primary (no hash tag puts them in one slot).
func TestRedisClusterSuite(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Server: redistest.Options{
		Users: append(haUsers(), "noasking on >pw ~kerbgate:* resetchannels -@all +get +set +del +eval +evalsha +ping +wait +cluster|slots")}})
	// Start-up finds an ACL that would refuse to follow a slot migration.
	var logs strings.Builder
	if _, err := openLogged(&logs, &store.RedisOptions{Addrs: c.Addrs(), Username: "noasking", Password: "pw", MinReplicaAcks: 1, Timeout: steady.op}); !errors.Is(err, store.ErrRedisAuth) ||
		!strings.Contains(err.Error(), "+asking") || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("start-up as a user without +asking: %v", err)
	}
	if st, err := openLogged(&logs, &store.RedisOptions{Addrs: c.Addrs(), Username: "kerbgate", Password: "kerbgate-redis-pw", MinReplicaAcks: 1, Timeout: steady.op}); err != nil || logs.Len() == 0 || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("start-up as the documented user: %v\n%s", err, logs.String())
	} else {
		st.Close()
	}

	rec := &commandRecorder{}
	storetest.RunSuite(t, func(t *testing.T) store.Store {
		r := openCluster(t, c, 1, steady)
		store.ClientOf(r).AddHook(rec)
		c.FlushAll(t)
		return r
	})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		a, b := openCluster(t, c, 1, steady), openCluster(t, c, 1, steady)
		store.ClientOf(a).AddHook(rec)
		store.ClientOf(b).AddHook(rec)
		return a, b
	})
	// Smart lockout's counts, written with the replicas' acknowledgements.
	storetest.RunAttempts(t, func(t *testing.T) store.Attempts {
		r := openCluster(t, c, 1, steady)
		store.ClientOf(r).AddHook(rec)
		c.FlushAll(t)
		return r
	})
	scripts := 0
	for _, args := range rec.cmds {
		keys := keysOf(args)
		name := strings.ToLower(fmt.Sprint(args[0]))
		if name == "eval" || name == "evalsha" {
			scripts++
		}
		if len(keys) > 1 {
			t.Errorf("%s names %d keys: %v", name, len(keys), keys)
		}
	}
	if scripts < 20 {
		t.Errorf("only %d scripts recorded", scripts)
	}
	// Nor does the client ask for COMMAND's table (refused by the ACL, it would
	// be asked for again before every command).
	for _, n := range c.Nodes {
		info, err := n.Client(t).Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "cmdstat_command:") {
			t.Errorf("node %s was sent COMMAND: %s", n.Addr, info[strings.Index(info, "cmdstat_command:"):][:80])
		}
	}

	c.FlushAll(t)
	r := openCluster(t, c, 1, steady)
	for range 100 {
		newToken(t, r, time.Now())
	}
	for p, n := range c.Keys(t) {
		if n < 15 {
			t.Errorf("primary %s holds %d of 100 tokens", p.Addr, n)
		}
	}
	if want := c.Slot(t, tokenKey("x")); clusterSlot(tokenKey("x")) != want {
		t.Fatalf("clusterSlot disagrees with CLUSTER KEYSLOT: %d, want %d", clusterSlot(tokenKey("x")), want)
	}
}

// A slot moves from one primary to another while the store writes to it: a write
// redirected with ASK (the slot migrating) or MOVED (migrated) is acknowledged by
// the replica of the primary that finally took it, not of the one first asked,
// and every token survives the move.
func TestRedisClusterSlotMigrationKeepsWritesDurable(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Server: redistest.Options{Users: haUsers()}})
	st := openCluster(t, c, 1, refusing)
	now := time.Now()
	toks := tokensInSlot(clusterSlot(tokenKey("seed")), 14)
	slot := clusterSlot(tokenKey(toks[0]))
	for _, tok := range toks[:8] {
		if err := st.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	from := c.PrimaryOfSlot(t, slot)
	var to *redistest.Server
	for _, p := range c.Primaries(t) {
		if p != from {
			to = p
			break
		}
	}
	toReplica := c.ReplicasOf(t, to)[0]

	// Half the keys moved: the rest are still served by the source.
	m := c.BeginMigration(t, slot, to)
	if n := m.MoveKeys(t, 4); n != 4 {
		t.Fatalf("moved %d keys", n)
	}
	for _, tok := range toks[:8] {
		if _, err := st.TakeToken(ctx, tok, "wiki", now); err != nil {
			t.Fatalf("take during the migration: %v", err)
		}
	}
	// A new key in a migrating slot belongs to the target (ASK): with the
	// target's replica paused, the write is refused even though the source's
	// replica answers.
	toReplica.Pause()
	if err := st.PutToken(ctx, toks[8], storetest.SampleToken(now, time.Minute)); !errors.Is(err, store.ErrUnavailable) ||
		!strings.Contains(err.Error(), "acknowledged by 0 of the 1") {
		t.Errorf("write redirected by ASK with the target's replica paused: %v, want refused", err)
	}
	toReplica.Resume()
	if err := st.PutToken(ctx, toks[9], storetest.SampleToken(now, time.Minute)); err != nil {
		t.Fatalf("write redirected by ASK: %v", err)
	}

	// The migration ends; the store still believes the source serves the slot,
	// so its next write there is redirected with MOVED.
	m.Finish(t)
	toReplica.Pause()
	if err := st.PutToken(ctx, toks[10], storetest.SampleToken(now, time.Minute)); !errors.Is(err, store.ErrUnavailable) ||
		!strings.Contains(err.Error(), "acknowledged by 0 of the 1") {
		t.Errorf("write redirected by MOVED with the target's replica paused: %v, want refused", err)
	}
	toReplica.Resume()
	if err := st.PutToken(ctx, toks[11], storetest.SampleToken(now, time.Minute)); err != nil {
		t.Fatalf("write after the migration: %v", err)
	}
	for _, tok := range toks[:8] {
		if _, err := st.TakeToken(ctx, tok, "wiki", now); !errors.Is(err, store.ErrTokenUsed) {
			t.Errorf("a token redeemed before or during the move: %v, want ErrTokenUsed", err)
		}
	}
	for _, tok := range []string{toks[9], toks[11]} {
		if _, err := st.TakeToken(ctx, tok, "wiki", now); err != nil {
			t.Errorf("a token issued during or after the move: %v", err)
		}
	}
	if p := c.PrimaryOfSlot(t, slot); p != to {
		t.Errorf("slot %d served by %s after the migration, want %s", slot, p.Addr, to.Addr)
	}

	// A take with reads (the OIDC token endpoint): the sessions read are on
	// the other primaries, so the one pipeline is split over the nodes; the
	// take is acknowledged by the replica of the primary that ran it.
	var ids []string
	var other *redistest.Server
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("elsewhere-%d", i)
		if p := c.PrimaryOfSlot(t, clusterSlot(sessionKey(id))); p != to && (other == nil || p == other) {
			ids, other = append(ids, id), p
		}
	}
	for _, id := range ids {
		if err := st.PutSession(ctx, id, storetest.SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range toks[12:] {
		if err := st.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	toReplica.Pause()
	if _, _, err := st.TakeTokenReading(ctx, toks[12], "wiki", now, ids); !errors.Is(err, store.ErrUnavailable) ||
		!strings.Contains(err.Error(), "acknowledged by 0 of the 1") {
		t.Errorf("take with reads elsewhere, the take's primary's replica paused: %v, want refused", err)
	}
	toReplica.Resume()
	otherReplica := c.ReplicasOf(t, other)[0]
	otherReplica.Pause()
	_, reads, err := st.TakeTokenReading(ctx, toks[13], "wiki", now, ids)
	otherReplica.Resume()
	if err != nil || len(reads) != 2 || reads[0].Err != nil || reads[1].Err != nil {
		t.Errorf("take with reads elsewhere, the readers' replica paused: %v %+v, want taken and read", err, reads)
	}
	for _, tok := range toks[12:] {
		if _, err := st.TakeToken(ctx, tok, "wiki", now); !errors.Is(err, store.ErrTokenUsed) {
			t.Errorf("a token taken with reads (refused or not): %v, want ErrTokenUsed", err)
		}
	}
}

func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return "kerbgate:ses:" + hex.EncodeToString(h[:])
}

// kerbgate follows a Cluster failover without a restart and loses nothing it
// reported done: a primary is killed (SIGKILL), or paused (SIGSTOP) past the
// node timeout, while four writers run over every slot; then it comes back (as
// a replica). With one replica per primary, the promoted replica's slots refuse
// writes (min_replica_acks 1) until the old primary is back as its replica.
func TestRedisClusterFailoverLosesNothingAcknowledged(t *testing.T) {
	for _, fault := range []string{"kill", "pause"} {
		t.Run(fault, func(t *testing.T) {
			c := redistest.StartCluster(t, redistest.ClusterOptions{NodeTimeout: 500 * time.Millisecond, Server: redistest.Options{Users: haUsers(), Persist: true}})
			st := openCluster(t, c, 1, faulty)
			l := &ledger{}
			for range 20 {
				if !l.step(st) {
					t.Fatalf("before the fault: %v", l.errs)
				}
			}
			slot := c.Slot(t, "kerbgate:tok:0")
			old := c.PrimaryOfSlot(t, slot)
			stop := make(chan struct{})
			wg := l.underFault(st, 4, stop)
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			if fault == "kill" {
				old.Kill()
			} else {
				old.Pause()
			}
			next := c.WaitFailover(t, old, slot, 20*time.Second)
			failover := time.Since(start)
			if fault == "kill" {
				old.Restart()
			} else {
				old.Resume()
			}
			// Recovered when a few full steps (keys on every primary, most
			// likely) succeed in a row.
			for range 5 {
				waitRecovered(t, l, st, start, 20*time.Second)
			}
			recovered := time.Since(start)
			close(stop)
			wg.Wait()
			t.Logf("%s %s: %s took over after %v, the old primary came back; writes succeed again after %v; %d writes failed, %d succeeded; %v",
				fault, old.Addr, next.Addr, failover.Round(time.Millisecond), recovered.Round(time.Millisecond), l.failed, l.ok, l.errs)
			l.verify(t, st)
			if t.Failed() {
				t.Log(c.Log())
			}
		})
	}
}
