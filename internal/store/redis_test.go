package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/internal/store/storetest"
)

// These tests run against a real redis-server (package redistest) and never skip.

var prefixSeq atomic.Int64

// The client's own messages (failed dials while a test keeps Redis down) would only
// clutter the output, and no RedisOptions.Logger is set, so they are discarded: the
// tests check the errors the store returns.

// uniquePrefix gives each store of a test run a fresh, empty key space in one server.
func uniquePrefix() string {
	return fmt.Sprintf("kgtest%d:", prefixSeq.Add(1))
}

func openRedis(t testing.TB, o store.RedisOptions) *store.Redis {
	t.Helper()
	r, err := store.OpenRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisSuite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.RunSuite(t, func(t *testing.T) store.Store {
		return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()})
	})
}

// kerbgateACL is the least a kerbgate user needs, confined to the default prefix; it
// is the rule docs/farm.md gives.
const kerbgateACL = "on >kerbgate-redis-pw ~kerbgate:* resetchannels -@all +get +set +del +eval +evalsha +ping"

// TestRedisSuiteTLSAndACL runs the suite over TLS with a client certificate, as an
// ACL user allowed only the commands and keys kerbgate needs.
func TestRedisSuiteTLSAndACL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{
		ClientCert: true,
		Password:   "admin-pw",
		Users:      []string{"kerbgate " + kerbgateACL},
	})
	tlsConf, err := store.RedisTLSConfig(srv.CAFile, srv.ClientCertFile, srv.ClientKeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunSuite(t, func(t *testing.T) store.Store {
		// The ACL confines the user to the default prefix, so the server is
		// emptied for each case instead.
		r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Username: "kerbgate", Password: "kerbgate-redis-pw", TLS: tlsConf})
		flush(t, srv)
		return r
	})
}

// flush empties the server between suite cases that share a key space.
func flush(t *testing.T, srv *redistest.Server) {
	t.Helper()
	if err := srv.Client(t).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRedisShared is two nodes, each with its own client, sharing one Redis.
func TestRedisShared(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		p := uniquePrefix()
		return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: p}),
			openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: p})
	})
}

func TestRedisPrefixesAreSeparate(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: "farm-a:"})
	b := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: "farm-b:"})
	now := time.Now()
	tok, _ := store.NewID(nil)
	if err := a.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeToken(ctx, tok, "wiki", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other farm's token: %v, want ErrNotFound", err)
	}
	var k replay.Key
	if _, err := a.SeenBefore(context.Background(), k, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if seen, err := b.SeenBefore(context.Background(), k, now, now.Add(time.Minute)); err != nil || seen {
		t.Fatalf("other farm's replay entry: seen=%v err=%v", seen, err)
	}
}

// TestRedisHoldsOnlyHashes checks every key and value in Redis: no raw token or
// session id (as text or as its random bytes), and keys are their SHA-256 hashes.
func TestRedisHoldsOnlyHashes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}})
	now := time.Now()
	want := map[string]bool{}
	var secrets []string
	for i := range 10 {
		tok, _ := store.NewID(nil)
		sid, _ := store.NewID(nil)
		secrets = append(secrets, tok, sid)
		if err := r.PutToken(ctx, tok, storetest.SampleToken(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := r.TakeToken(ctx, tok, "wiki", now); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.PutSession(ctx, sid, storetest.SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		th, sh := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(sid))
		want["kerbgate:tok:"+hex.EncodeToString(th[:])] = true
		want["kerbgate:ses:"+hex.EncodeToString(sh[:])] = true
	}
	var k replay.Key
	copy(k[:], "replay-key-00001")
	if _, err := r.SeenBefore(context.Background(), k, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want["kerbgate:rpl:"+hex.EncodeToString(k[:])] = true

	admin := srv.Client(t)
	keys, err := admin.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Fatalf("%d keys in Redis, want %d: %v", len(keys), len(want), keys)
	}
	for _, key := range keys {
		if !want[key] {
			t.Errorf("unexpected key %q", key)
		}
		v, err := admin.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			dec, _ := base64.RawURLEncoding.DecodeString(s)
			if strings.Contains(key, s) || strings.Contains(v, s) || strings.Contains(v, string(dec)) {
				t.Fatalf("key %q or its value holds a raw secret id", key)
			}
		}
	}
}

// TestRedisKeysExpire checks that Redis itself purges records: each key lives for
// the record's remaining validity plus Grace.
func TestRedisKeysExpire(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const grace = 50 * time.Millisecond
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Grace: grace})
	admin := srv.Client(t)
	now := time.Now()

	// Lifetimes as set: validity plus grace (a token's tombstone keeps its TTL).
	tok, _ := store.NewID(nil)
	if err := r.PutToken(ctx, tok, storetest.SampleToken(now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TakeToken(ctx, tok, "wiki", now); err != nil {
		t.Fatal(err)
	}
	th := sha256.Sum256([]byte(tok))
	ttl, err := admin.PTTL(ctx, "kerbgate:tok:"+hex.EncodeToString(th[:])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 59*time.Minute || ttl > time.Hour+grace {
		t.Errorf("used token's tombstone TTL %v, want about 1h + %v", ttl, grace)
	}
	var k replay.Key
	copy(k[:], "ttl-replay-key-1")
	if _, err := r.SeenBefore(context.Background(), k, now, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ttl, err = admin.PTTL(ctx, "kerbgate:rpl:"+hex.EncodeToString(k[:])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 9*time.Minute || ttl > 10*time.Minute+grace {
		t.Errorf("replay entry TTL %v, want about 10m + %v", ttl, grace)
	}

	// Short records disappear from Redis on their own (at least a second).
	sid, tok2 := "short-session-id", "short-token"
	if err := r.PutSession(ctx, sid, storetest.SampleSession(now, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := r.PutToken(ctx, tok2, storetest.SampleToken(now, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var k2 replay.Key
	copy(k2[:], "ttl-replay-key-2")
	if _, err := r.SeenBefore(context.Background(), k2, now, now.Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := admin.Exists(ctx, "kerbgate:rpl:"+hex.EncodeToString(k2[:])).Result()
		if err != nil {
			t.Fatal(err)
		}
		_, serr := r.GetSession(ctx, sid, now)
		_, terr := r.TakeToken(ctx, tok2, "wiki", now)
		if n == 0 && errors.Is(serr, store.ErrNotFound) && errors.Is(terr, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not purged by Redis: replay entry %d, session %v, token %v", n, serr, terr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisWrongPasswordIsAClearError(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Users: []string{"kerbgate " + kerbgateACL}})
	const wrong = "not-the-password-6f1e"
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Username: "kerbgate", Password: wrong})
	err := r.Ping(ctx)
	if err == nil {
		t.Fatal("Ping with a wrong password succeeded")
	}
	if !errors.Is(err, store.ErrRedisAuth) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("error %v is not ErrRedisAuth and ErrUnavailable", err)
	}
	msg := err.Error()
	t.Logf("wrong password: %s", msg)
	if !strings.Contains(msg, "WRONGPASS") || !strings.Contains(msg, srv.Addr) || strings.Contains(msg, wrong) {
		t.Fatalf("error %q: want WRONGPASS and the address, without the password", msg)
	}
	// Requests fail closed the same way.
	tok, _ := store.NewID(nil)
	if err := r.PutToken(ctx, tok, storetest.SampleToken(time.Now(), time.Minute)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("PutToken: %v, want ErrUnavailable", err)
	}

	// Right password, but an ACL without EVAL: refused as a permission error.
	srv2 := redistest.Start(t, redistest.Options{Users: []string{"kerbgate on >pw ~kerbgate:* -@all +get +set +del +ping"}})
	r2 := openRedis(t, store.RedisOptions{Addrs: []string{srv2.Addr}, Username: "kerbgate", Password: "pw"})
	if err := r2.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = r2.SeenBefore(context.Background(), replay.Key{}, time.Now(), time.Now().Add(time.Minute))
	if !errors.Is(err, store.ErrRedisAuth) || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SeenBefore without +eval: %v, want NOPERM as ErrRedisAuth", err)
	}
}

func TestRedisTLSNeedsTheCA(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	other := redistest.Start(t, redistest.Options{TLS: true}) // another CA
	tlsConf, err := store.RedisTLSConfig(other.CAFile, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, TLS: tlsConf})
	err = r.Ping(ctx)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ping with the wrong CA: %v", err)
	}
	good, err := store.RedisTLSConfig(srv.CAFile, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, TLS: good}).Ping(ctx); err != nil {
		t.Fatalf("Ping with the right CA: %v", err)
	}
	if _, err := store.RedisTLSConfig(srv.CAFile, srv.ClientCertFile, "", ""); err == nil {
		t.Fatal("RedisTLSConfig accepted a certificate without its key")
	}
}

// allOps runs every store operation once and returns their errors.
func allOps(s store.Store, tok string) []error {
	now := time.Now()
	_, errTake := s.TakeToken(ctx, tok, "wiki", now)
	_, errGet := s.GetSession(ctx, "sid", now)
	_, errSeen := s.SeenBefore(context.Background(), replay.Key{1}, now, now.Add(time.Minute))
	_, errGets := s.GetSessions(ctx, []string{"sid", "other"}, now)
	_, _, errTakeReading := s.TakeTokenReading(ctx, tok, "wiki", now, []string{"sid"})
	return []error{
		errGets,
		errTakeReading,
		s.PutToken(ctx, "another-token", storetest.SampleToken(now, time.Minute)),
		errTake,
		s.PutSession(ctx, "sid", storetest.SampleSession(now, time.Hour)),
		errGet,
		s.DeleteSession(ctx, "sid"),
		errSeen,
	}
}

// A Redis that lost its scripts (restarted, SCRIPT FLUSH) answers NOSCRIPT to the
// take in TakeTokenReading's pipeline without running it: the store sends the
// script's source, and the token is taken once.
func TestRedisTakeTokenReadingAfterScriptFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()})
	now := time.Now()
	for i := range 2 {
		tok, _ := store.NewID(nil)
		if err := r.PutToken(ctx, tok, storetest.SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := srv.Client(t).ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, reads, err := r.TakeTokenReading(ctx, tok, "wiki", now, []string{"sid"}); err != nil || !errors.Is(reads[0].Err, store.ErrNotFound) {
			t.Fatalf("take %d after SCRIPT FLUSH: %v %v", i, reads, err)
		}
		if _, _, err := r.TakeTokenReading(ctx, tok, "wiki", now, nil); !errors.Is(err, store.ErrTokenUsed) {
			t.Fatalf("second take %d: %v, want ErrTokenUsed", i, err)
		}
	}
}

// TestRedisDownFailsClosedAndRecovers kills Redis: every operation fails quickly with
// ErrUnavailable (which is also replay.ErrUnavailable); once Redis is back on the
// same port, the same store works again.
func TestRedisDownFailsClosedAndRecovers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const timeout = 300 * time.Millisecond
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Timeout: timeout, DialTimeout: timeout})
	tok, _ := store.NewID(nil)
	if err := r.PutToken(ctx, tok, storetest.SampleToken(time.Now(), time.Minute)); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	start := time.Now()
	for i, err := range allOps(r, tok) {
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, replay.ErrUnavailable) {
			t.Errorf("operation %d with Redis down: %v, want ErrUnavailable", i, err)
		} else if !strings.Contains(err.Error(), srv.Addr) {
			t.Errorf("error %q does not name the address", err)
		}
	}
	if d := time.Since(start); d > 8*timeout {
		t.Errorf("8 operations against a dead Redis took %v (timeout %v each)", d, timeout)
	}

	srv.Restart() // empty: the token is gone with the old process
	if _, err := r.TakeToken(ctx, tok, "wiki", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take after restart: %v, want ErrNotFound", err)
	}
	if err := r.PutToken(ctx, tok, storetest.SampleToken(time.Now(), time.Minute)); err != nil {
		t.Fatalf("put after restart: %v", err)
	}
	if _, err := r.TakeToken(ctx, tok, "wiki", time.Now()); err != nil {
		t.Fatalf("take after restart: %v", err)
	}
}

// TestRedisHungIsBounded pauses Redis (connections stay open, nothing answers):
// operations give up after Timeout instead of hanging, and work again once Redis
// resumes.
func TestRedisHungIsBounded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	const timeout = 300 * time.Millisecond
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Timeout: timeout})
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"take", func() error { _, err := r.TakeToken(ctx, "tok", "wiki", time.Now()); return err }},
		{"seen", func() error {
			_, err := r.SeenBefore(context.Background(), replay.Key{2}, time.Now(), time.Now().Add(time.Minute))
			return err
		}},
		{"get", func() error { _, err := r.GetSession(ctx, "sid", time.Now()); return err }},
		{"get several", func() error { _, err := r.GetSessions(ctx, []string{"sid", "other"}, time.Now()); return err }},
		{"take and read", func() error {
			_, _, err := r.TakeTokenReading(ctx, "tok", "wiki", time.Now(), []string{"sid"})
			return err
		}},
	} {
		start := time.Now()
		err := op.run()
		d := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis hung: %v, want ErrUnavailable", op.name, err)
		}
		if d > timeout+500*time.Millisecond {
			t.Errorf("%s with Redis hung took %v, want about %v", op.name, d, timeout)
		}
	}
	srv.Resume()
	resumed = true
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := r.SeenBefore(context.Background(), replay.Key{3}, time.Now(), time.Now().Add(time.Minute))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after Redis resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request whose own context ends is not a store outage.
func TestRedisCallerCancelIsNotUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Timeout: 5 * time.Second})
	srv.Pause()
	defer srv.Resume()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := r.TakeToken(cctx, "tok", "wiki", time.Now())
	if err == nil || errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take with the caller's deadline passed: %v, want context.DeadlineExceeded", err)
	}
}

func TestOpenRedisRefusesClusterDB(t *testing.T) {
	if _, err := store.OpenRedis(store.RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, DB: 3}); err == nil {
		t.Fatal("OpenRedis accepted a database number for a Cluster")
	}
	if _, err := store.OpenRedis(store.RedisOptions{}); err == nil {
		t.Fatal("OpenRedis accepted no address")
	}
}

func TestOpenRedisRefusesBadReplicaAcks(t *testing.T) {
	addrs := []string{"127.0.0.1:1"}
	if _, err := store.OpenRedis(store.RedisOptions{Addrs: addrs, MinReplicaAcks: -1}); err == nil {
		t.Error("OpenRedis accepted a negative number of replica acknowledgements")
	}
	if _, err := store.OpenRedis(store.RedisOptions{Addrs: addrs, MinReplicaAcks: 1, ReplicaAckTimeout: time.Second, Timeout: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "not shorter than the operation timeout") {
		t.Errorf("an acknowledgement timeout as long as the operation's: %v", err)
	}
	if _, err := store.OpenRedis(store.RedisOptions{Addrs: addrs, MinReplicaAcks: 1, Timeout: 400 * time.Millisecond}); err == nil {
		t.Error("OpenRedis accepted the default acknowledgement timeout (500ms) with a 400ms operation timeout")
	}
}

// A cancelled request stops waiting on a hung Redis for its replay check at once,
// not after the store's Timeout, and the error is the request's, not an outage.
func TestRedisSeenBeforeStopsWhenCancelled(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Timeout: 30 * time.Second})
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.SeenBefore(cctx, replay.Key{4}, time.Now(), time.Now().Add(time.Minute))
		done <- err
	}()
	// The check is waiting on Redis: cancel the request.
	select {
	case err := <-done:
		t.Fatalf("SeenBefore returned while Redis is stopped: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("SeenBefore after cancel: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("SeenBefore returned %v after the cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SeenBefore still waits on Redis after the request was cancelled")
	}
	// An already cancelled request does not reach Redis.
	if _, err := r.SeenBefore(cctx, replay.Key{5}, time.Now(), time.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Errorf("SeenBefore with a cancelled context: %v", err)
	}
}

// Open gives the embedded file an in-memory replay cache, and Redis for both; it
// logs a Redis it cannot reach and refuses one that refuses the credentials.
func TestOpen(t *testing.T) {
	st, rc, err := store.Open(store.Options{Path: t.TempDir() + "/kg.db", ReplayCacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.(*store.Bolt); !ok {
		t.Errorf("store %T, want *store.Bolt", st)
	}
	if _, ok := rc.(*replay.Memory); !ok {
		t.Errorf("replay cache %T, want *replay.Memory", rc)
	}

	srv := redistest.Start(t, redistest.Options{Password: "right-pw"})
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	st, rc, err = store.Open(store.Options{Redis: &store.RedisOptions{Addrs: []string{srv.Addr}, Password: "right-pw", Prefix: uniquePrefix()}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rs, ok := st.(*store.Redis); !ok || rc != replay.Cache(rs) {
		t.Errorf("store %T and replay cache %T, want one *store.Redis", st, rc)
	}
	if !strings.Contains(logs.String(), "store: Redis") {
		t.Errorf("no reachability line: %s", logs.String())
	}

	_, _, err = store.Open(store.Options{Redis: &store.RedisOptions{Addrs: []string{srv.Addr}, Password: "wrong-pw"}, Log: log})
	if !errors.Is(err, store.ErrRedisAuth) || !strings.Contains(err.Error(), "refused kerbgate's credentials") {
		t.Errorf("wrong password: %v, want ErrRedisAuth", err)
	}

	logs.Reset()
	srv.Kill()
	st, _, err = store.Open(store.Options{Redis: &store.RedisOptions{Addrs: []string{srv.Addr}, DialTimeout: 200 * time.Millisecond, Timeout: 200 * time.Millisecond}, Log: log})
	if err != nil {
		t.Fatalf("an unreachable Redis stops start-up: %v", err)
	}
	defer st.Close()
	if !strings.Contains(logs.String(), "Redis cannot be reached") {
		t.Errorf("unreachable Redis not logged: %s", logs.String())
	}
}
