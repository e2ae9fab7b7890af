package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/internal/store/storetest"
)

func TestBoltAttempts(t *testing.T) {
	storetest.RunAttempts(t, func(t *testing.T) store.Attempts {
		return openBolt(t, filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	})
}

// Purge forgets counts whose window ended and familiar sources that expired.
func TestBoltPurgesAttempts(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	ctx, t0 := t.Context(), time.Now()
	l := store.AttemptLimit{Max: 5, Window: time.Minute}
	if _, err := b.TakeAttempt(ctx, "acct:alice", t0, l); err != nil {
		t.Fatal(err)
	}
	if err := b.PutFamiliar(ctx, "fam:alice|192.0.2.1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Purge(t0.Add(30 * time.Second)); err != nil || n != 0 {
		t.Fatalf("purge within the window removed %d (%v)", n, err)
	}
	if n, err := b.Purge(t0.Add(2 * time.Hour)); err != nil || n != 2 {
		t.Fatalf("purge after both ended removed %d (%v), want 2", n, err)
	}
}

func TestRedisAttempts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.RunAttempts(t, func(t *testing.T) store.Attempts {
		return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()})
	})
	storetest.RunAttemptsShared(t, func(t *testing.T) (store.Attempts, store.Attempts) {
		p := uniquePrefix()
		return openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: p}),
			openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: p})
	})
}

// The ACL of docs/farm.md is enough for smart lockout's commands.
func TestRedisAttemptsUnderTheDocumentedACL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "admin-pw", Users: []string{"kerbgate " + kerbgateACL}})
	storetest.RunAttempts(t, func(t *testing.T) store.Attempts {
		r := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}, Username: "kerbgate", Password: "kerbgate-redis-pw"})
		flush(t, srv)
		return r
	})
}
