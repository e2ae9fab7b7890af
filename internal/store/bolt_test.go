package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/store/storetest"
)

var ctx = context.Background()

func openBolt(t testing.TB, path string, opts store.BoltOptions) *store.Bolt {
	t.Helper()
	b, err := store.OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBoltSuite(t *testing.T) {
	t.Run("NoPurge", func(t *testing.T) {
		storetest.RunSuite(t, func(t *testing.T) store.Store {
			return openBolt(t, filepath.Join(t.TempDir(), "state", "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
		})
	})
	// The same suite with the purge goroutine running often (wall clock), so the race
	// detector sees it interleave with every operation.
	t.Run("BackgroundPurge", func(t *testing.T) {
		storetest.RunSuite(t, func(t *testing.T) store.Store {
			return openBolt(t, filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: time.Millisecond})
		})
	})
}

func TestBoltPersistence(t *testing.T) {
	storetest.RunPersistence(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "kerbgate.db")
		return openBolt(t, path, store.BoltOptions{}), func(t *testing.T) store.Store {
			return openBolt(t, path, store.BoltOptions{})
		}
	})
}

// TestBoltFileHoldsOnlyHashes checks that no raw token or session id (as text or as
// the decoded random bytes) appears anywhere in the file, and that the keys are
// their SHA-256 hashes.
func TestBoltFileHoldsOnlyHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kerbgate.db")
	b := openBolt(t, path, store.BoltOptions{PurgeInterval: -1})
	now := time.Now()
	var tokens, sessions []string
	for i := range 20 {
		tok, _ := store.NewID(nil)
		sid, _ := store.NewID(nil)
		tokens, sessions = append(tokens, tok), append(sessions, sid)
		if err := b.PutToken(ctx, tok, storetest.SampleToken(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // leave a mix of live tokens and tombstones
			if _, err := b.TakeToken(ctx, tok, "wiki", now); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.PutSession(ctx, sid, storetest.SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DeleteSession(ctx, sessions[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range append(append([]string(nil), tokens...), sessions...) {
		dec, _ := base64.RawURLEncoding.DecodeString(secret)
		if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, dec) {
			t.Fatalf("file contains a raw secret id")
		}
	}
	if !bytes.Contains(raw, []byte("alice@EXAMPLE.TEST")) {
		t.Fatal("sanity: file does not contain the stored identity")
	}

	hashes := func(ids []string) map[string]bool {
		m := make(map[string]bool)
		for _, id := range ids {
			h := sha256.Sum256([]byte(id))
			m[string(h[:])] = true
		}
		return m
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for _, c := range []struct {
			bucket string
			want   map[string]bool
			n      int
		}{{"tokens", hashes(tokens), len(tokens)}, {"sessions", hashes(sessions), len(sessions) - 1}} {
			bk := tx.Bucket([]byte(c.bucket))
			if bk == nil {
				t.Fatalf("no bucket %q", c.bucket)
			}
			n := 0
			bk.ForEach(func(k, v []byte) error {
				n++
				if !c.want[string(k)] {
					t.Errorf("%s: key %x is not the SHA-256 of a stored id", c.bucket, k)
				}
				return nil
			})
			if n != c.n {
				t.Errorf("%s: %d keys, want %d", c.bucket, n, c.n)
			}
		}
		if tx.Bucket([]byte("replay")) == nil {
			t.Error("no replay bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBoltFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	dir := filepath.Join(t.TempDir(), "var", "kerbgate")
	path := filepath.Join(dir, "kerbgate.db")
	openBolt(t, path, store.BoltOptions{})
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", p, got, want)
		}
	}
}

func TestBoltPurge(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0.Add(time.Hour)
	id := func() string { s, _ := store.NewID(nil); return s }

	put := func(tok string, ttl time.Duration, take bool) {
		t.Helper()
		if err := b.PutToken(ctx, tok, storetest.SampleToken(t0, ttl)); err != nil {
			t.Fatal(err)
		}
		if take {
			if _, err := b.TakeToken(ctx, tok, "wiki", t0); err != nil {
				t.Fatal(err)
			}
		}
	}
	liveTok, liveTomb, deadTok, deadTomb := id(), id(), id(), id()
	put(liveTok, 2*time.Hour, false)
	put(liveTomb, 2*time.Hour, true)
	put(deadTok, time.Minute, false)
	put(deadTomb, time.Hour, true) // expires exactly at now: purged
	liveSess, deadSess := id(), id()
	if err := b.PutSession(ctx, liveSess, storetest.SampleSession(t0, 8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutSession(ctx, deadSess, storetest.SampleSession(t0, 30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var liveKey, deadKey replay.Key
	copy(liveKey[:], "live-replay-key!")
	copy(deadKey[:], "dead-replay-key!")
	b.SeenBefore(context.Background(), liveKey, t0, now.Add(time.Minute))
	b.SeenBefore(context.Background(), deadKey, t0, now.Add(-time.Minute))

	n, err := b.Purge(now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("Purge removed %d, want 4", n)
	}
	if n, err := b.Purge(now); err != nil || n != 0 {
		t.Fatalf("second Purge = %d, %v; want 0", n, err)
	}

	// Purged records are unknown; live ones are untouched.
	for _, tok := range []string{deadTok, deadTomb} {
		if _, err := b.TakeToken(ctx, tok, "wiki", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("purged token: %v, want ErrNotFound", err)
		}
	}
	if _, err := b.GetSession(ctx, deadSess, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("purged session: %v, want ErrNotFound", err)
	}
	if _, err := b.TakeToken(ctx, liveTomb, "wiki", now); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("live tombstone: %v, want ErrTokenUsed", err)
	}
	if _, err := b.TakeToken(ctx, liveTok, "wiki", now); err != nil {
		t.Errorf("live token: %v", err)
	}
	if _, err := b.GetSession(ctx, liveSess, now); err != nil {
		t.Errorf("live session: %v", err)
	}
	if seen, err := b.SeenBefore(context.Background(), liveKey, now, now.Add(time.Minute)); err != nil || !seen {
		t.Errorf("live replay entry: seen=%v err=%v", seen, err)
	}
}

func TestBoltBackgroundPurge(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := openBolt(t, filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{
		PurgeInterval: 5 * time.Millisecond,
		Now:           func() time.Time { return t0.Add(24 * time.Hour) },
	})
	sid, _ := store.NewID(nil)
	if err := b.PutSession(ctx, sid, storetest.SampleSession(t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.GetSession(ctx, sid, t0)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background purge did not remove the expired session: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kerbgate.db")
	openBolt(t, path, store.BoltOptions{})
	start := time.Now()
	b, err := store.OpenBolt(path, store.BoltOptions{Timeout: 200 * time.Millisecond})
	if err == nil {
		b.Close()
		t.Fatal("second open of a held file succeeded")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("second open took %v", elapsed)
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "store file is locked by another kerbgate process") {
		t.Fatalf("error %q, want ErrLocked", err)
	}
}

func BenchmarkPutTakeToken(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	now := time.Now()
	tk := storetest.SampleToken(now, time.Minute)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i], _ = store.NewID(nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.PutToken(ctx, ids[i], tk); err != nil {
			b.Fatal(err)
		}
		if _, err := s.TakeToken(ctx, ids[i], "wiki", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetSession(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	now := time.Now()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i], _ = store.NewID(nil)
		if err := s.PutSession(ctx, ids[i], storetest.SampleSession(now, time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.GetSession(ctx, ids[i%len(ids)], now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeenBefore(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	now := time.Now()
	exp := now.Add(5 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var k replay.Key
		k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		if seen, err := s.SeenBefore(context.Background(), k, now, exp); err != nil || seen {
			b.Fatal(seen, err)
		}
	}
}

// BenchmarkSeenBeforeReplayed measures the replay case (no write, no fsync).
func BenchmarkSeenBeforeReplayed(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	now := time.Now()
	var k replay.Key
	s.SeenBefore(context.Background(), k, now, now.Add(time.Hour))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if seen, err := s.SeenBefore(context.Background(), k, now, now.Add(time.Hour)); err != nil || !seen {
			b.Fatal(seen, err)
		}
	}
}

// BenchmarkSeenBeforeMemory is the in-memory alternative, for comparison.
func BenchmarkSeenBeforeMemory(b *testing.B) {
	m := replay.NewMemory(1 << 22)
	start := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		var k replay.Key
		k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		// The clock advances 1ms per call so sweeps keep the cache at ~300k entries.
		now := start.Add(time.Duration(i) * time.Millisecond)
		if _, err := m.SeenBefore(context.Background(), k, now, now.Add(5*time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}
