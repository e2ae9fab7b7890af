package replay

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func key(i int) Key {
	var k Key
	k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
	return k
}

func TestSecondSightingIsAReplayUntilExpiry(t *testing.T) {
	m := NewMemory(1000)
	t0 := time.Unix(1_700_000_000, 0)
	if seen, _ := m.SeenBefore(t.Context(), key(1), t0, t0.Add(5*time.Minute)); seen {
		t.Fatal("first sighting reported as replay")
	}
	if seen, _ := m.SeenBefore(t.Context(), key(1), t0.Add(time.Minute), t0.Add(6*time.Minute)); !seen {
		t.Fatal("second sighting not reported")
	}
	if seen, _ := m.SeenBefore(t.Context(), key(2), t0, t0.Add(5*time.Minute)); seen {
		t.Fatal("different key collided")
	}
	if seen, _ := m.SeenBefore(t.Context(), key(1), t0.Add(6*time.Minute), t0.Add(11*time.Minute)); seen {
		t.Fatal("expired entry still reported")
	}
}

func TestFullCacheFailsClosedAndRecoversAfterExpiry(t *testing.T) {
	m := NewMemory(shardCount) // one entry per shard
	t0 := time.Unix(1_700_000_000, 0)
	full := 0
	for i := 0; i < 200; i++ {
		if _, err := m.SeenBefore(t.Context(), key(i), t0, t0.Add(time.Minute)); err == ErrFull {
			full++
		}
	}
	if full == 0 {
		t.Fatal("bounded cache never reported ErrFull")
	}
	later := t0.Add(2 * time.Minute)
	if _, err := m.SeenBefore(t.Context(), key(5), later, later.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestConcurrentInsertsOfOneKeyAdmitExactlyOne(t *testing.T) {
	m := NewMemory(1000)
	t0 := time.Unix(1_700_000_000, 0)
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if seen, _ := m.SeenBefore(t.Context(), key(42), t0, t0.Add(time.Minute)); !seen {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d goroutines saw the key as fresh, want exactly 1", fresh.Load())
	}
}
