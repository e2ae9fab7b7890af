package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/store"
)

// RunAttempts is the behaviour suite of store.Attempts (smart lockout's counts and
// familiar sources), for every implementation.
func RunAttempts(t *testing.T, open func(t *testing.T) store.Attempts) {
	ctx := context.Background()
	take := func(t *testing.T, a store.Attempts, key string, at time.Time, l store.AttemptLimit) store.AttemptResult {
		t.Helper()
		r, err := a.TakeAttempt(ctx, key, at, l)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("LimitWithinWindow", func(t *testing.T) {
		a, t0 := open(t), base()
		l := store.AttemptLimit{Max: 3, Window: time.Minute}
		for i := 1; i <= 3; i++ {
			if r := take(t, a, "acct:alice", t0.Add(time.Duration(i)*time.Second), l); !r.Taken || r.Count != i {
				t.Fatalf("attempt %d: %+v", i, r)
			}
		}
		r := take(t, a, "acct:alice", t0.Add(10*time.Second), l)
		if r.Taken || r.BackingOff || r.Count != 3 || r.RetryAfter != 53*time.Second {
			t.Fatalf("fourth attempt: %+v, want refused for 53s (the window ends a minute after the last counted attempt)", r)
		}
		// Another key has its own count.
		if r := take(t, a, "acct:bob", t0, l); !r.Taken || r.Count != 1 {
			t.Fatalf("other key: %+v", r)
		}
		// The window ends a minute after the last counted attempt (sliding).
		if r := take(t, a, "acct:alice", t0.Add(62*time.Second), l); r.Taken {
			t.Fatalf("within the moved window: %+v", r)
		}
		if r := take(t, a, "acct:alice", t0.Add(63*time.Second), l); !r.Taken || r.Count != 1 {
			t.Fatalf("after the window: %+v, want a fresh count", r)
		}
	})

	t.Run("ExponentialBackoff", func(t *testing.T) {
		a, t0 := open(t), base()
		l := store.AttemptLimit{Max: 10, Window: time.Hour, Backoff: time.Second, MaxBackoff: 4 * time.Second}
		at := t0
		for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			if r := take(t, a, "k", at, l); !r.Taken || r.Count != i+1 {
				t.Fatalf("attempt %d at +%s: %+v", i+1, at.Sub(t0), r)
			}
			early := take(t, a, "k", at.Add(wait-100*time.Millisecond), l)
			if early.Taken || !early.BackingOff || early.RetryAfter != 100*time.Millisecond {
				t.Fatalf("attempt %d's back-off: %+v, want refused for 100ms more of %s", i+1, early, wait)
			}
			at = at.Add(wait)
		}
	})

	t.Run("ReturnAndReset", func(t *testing.T) {
		a, t0 := open(t), base()
		l := store.AttemptLimit{Max: 2, Window: time.Minute}
		take(t, a, "src:192.0.2.1", t0, l)
		take(t, a, "src:192.0.2.1", t0, l)
		if err := a.ReturnAttempt(ctx, "src:192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if r := take(t, a, "src:192.0.2.1", t0, l); !r.Taken || r.Count != 2 {
			t.Fatalf("after a return: %+v", r)
		}
		if err := a.ResetAttempts(ctx, "src:192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if r := take(t, a, "src:192.0.2.1", t0, l); !r.Taken || r.Count != 1 {
			t.Fatalf("after a reset: %+v", r)
		}
		if err := a.ReturnAttempt(ctx, "never-seen"); err != nil {
			t.Fatal(err)
		}
		if err := a.ResetAttempts(ctx, "never-seen"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Familiar", func(t *testing.T) {
		a, t0 := open(t), base()
		if err := a.PutFamiliar(ctx, "fam:alice|192.0.2.1", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			key  string
			at   time.Time
			want bool
		}{
			{"fam:alice|192.0.2.1", t0, true},
			{"fam:alice|192.0.2.2", t0, false},
			{"fam:bob|192.0.2.1", t0, false},
			{"fam:alice|192.0.2.1", t0.Add(time.Hour), false},
		} {
			got, err := a.Familiar(ctx, c.key, c.at)
			if err != nil || got != c.want {
				t.Errorf("Familiar(%s, +%s) = %v, %v", c.key, c.at.Sub(t0), got, err)
			}
		}
	})

	t.Run("ConcurrentTakesMeetOneLimit", func(t *testing.T) {
		a, t0 := open(t), base()
		l := store.AttemptLimit{Max: 3, Window: time.Minute}
		var taken atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := a.TakeAttempt(ctx, "acct:carol", t0, l)
				if err != nil {
					t.Error(err)
				}
				if r.Taken {
					taken.Add(1)
				}
			}()
		}
		wg.Wait()
		if taken.Load() != 3 {
			t.Fatalf("%d of 50 concurrent attempts taken under a limit of 3", taken.Load())
		}
	})

	t.Run("BadLimit", func(t *testing.T) {
		a := open(t)
		if _, err := a.TakeAttempt(ctx, "k", base(), store.AttemptLimit{}); err == nil {
			t.Fatal("a zero limit was accepted")
		}
	})
}

// RunAttemptsShared checks that two nodes of a farm count attempts together.
func RunAttemptsShared(t *testing.T, open func(t *testing.T) (node1, node2 store.Attempts)) {
	ctx := context.Background()
	n1, n2 := open(t)
	t0 := base()
	l := store.AttemptLimit{Max: 3, Window: time.Minute}
	for i, n := range []store.Attempts{n1, n2, n1} {
		r, err := n.TakeAttempt(ctx, "acct:alice", t0, l)
		if err != nil || !r.Taken || r.Count != i+1 {
			t.Fatalf("attempt %d: %+v, %v", i+1, r, err)
		}
	}
	if r, err := n2.TakeAttempt(ctx, "acct:alice", t0, l); err != nil || r.Taken {
		t.Fatalf("fourth attempt on the other node: %+v, %v", r, err)
	}
	if err := n1.PutFamiliar(ctx, "fam:alice|192.0.2.1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := n2.Familiar(ctx, "fam:alice|192.0.2.1", t0); err != nil || !ok {
		t.Fatalf("familiar on the other node: %v, %v", ok, err)
	}
}
