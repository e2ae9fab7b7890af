// Package storetest is the behaviour suite every store.Store implementation must
// pass: the embedded bbolt store and the Redis store run the same tests (RunSuite),
// and stores shared by several nodes also run RunShared. It lives in a non-test
// file so other packages' tests can import it.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Alice is the identity the suite stores.
func Alice() identity.Identity {
	return identity.Identity{
		Principal:      "alice@EXAMPLE.TEST",
		UPN:            "alice@example.test",
		SAMAccountName: "alice",
		Realm:          "EXAMPLE.TEST",
		DNSDomain:      "example.test",
		DisplayName:    "Alice Example",
		Mail:           "alice@example.test",
		SID:            "S-1-5-21-1-2-3-1104",
		Groups:         []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1105"},
		AuthMethod:     "kerberos",
	}
}

// base is a time near the wall clock (a networked store may derive TTLs from it),
// truncated so round trips through any encoding compare exactly.
func base() time.Time { return time.Now().Truncate(time.Millisecond) }

func newID(t *testing.T) string {
	t.Helper()
	id, err := store.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// SampleToken returns a token issued at now that expires after ttl.
func SampleToken(now time.Time, ttl time.Duration) store.Token {
	return store.Token{
		AppID:       "wiki",
		RedirectURI: "https://wiki.example.test/sso/callback",
		Identity:    Alice(),
		IssuedAt:    now,
		ExpiresAt:   now.Add(ttl),
	}
}

// SampleSession returns a session created at now that expires after ttl.
func SampleSession(now time.Time, ttl time.Duration) store.Session {
	return store.Session{
		AppID:     "",
		Identity:  Alice(),
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
}

// EqualToken reports whether two tokens are the same (times compared with Equal).
func EqualToken(a, b store.Token) bool {
	return a.AppID == b.AppID && a.RedirectURI == b.RedirectURI &&
		reflect.DeepEqual(a.Identity, b.Identity) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

// EqualSession reports whether two sessions are the same (times compared with Equal).
func EqualSession(a, b store.Session) bool {
	return a.AppID == b.AppID && reflect.DeepEqual(a.Identity, b.Identity) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

// RunSuite runs the behaviour tests. open must return a fresh, empty store for
// each call and arrange for it to be closed when t ends.
func RunSuite(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("TokenTakenOnce", func(t *testing.T) {
		s := open(t)
		now := base()
		tok, want := newID(t), SampleToken(now, 5*time.Minute)
		if err := s.PutToken(ctx, tok, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.TakeToken(ctx, tok, "wiki", now.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !EqualToken(got, want) {
			t.Fatalf("took %+v, want %+v", got, want)
		}
		_, err = s.TakeToken(ctx, tok, "wiki", now.Add(2*time.Second))
		wantErr(t, "second take", err, store.ErrTokenUsed)
		_, err = s.TakeToken(ctx, tok, "wiki", now.Add(3*time.Second))
		wantErr(t, "third take", err, store.ErrTokenUsed)
	})

	t.Run("UsedTokenStaysUsedAfterExpiry", func(t *testing.T) {
		// While its tombstone is kept, a used token reports "used", not "expired":
		// the log then says what happened.
		s := open(t)
		now := base()
		tok, tk := newID(t), SampleToken(now, time.Minute)
		if err := s.PutToken(ctx, tok, tk); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeToken(ctx, tok, "wiki", now); err != nil {
			t.Fatal(err)
		}
		_, err := s.TakeToken(ctx, tok, "wiki", tk.ExpiresAt.Add(time.Second))
		wantErr(t, "take of a used token after ExpiresAt", err, store.ErrTokenUsed)
	})

	t.Run("ExpiredOnArrival", func(t *testing.T) {
		// A record put with an ExpiresAt already past is accepted and then refused
		// as expired, or unknown once purged (a networked store must not fail the
		// put for a negative lifetime).
		s := open(t)
		now := base()
		tok, id := newID(t), newID(t)
		if err := s.PutToken(ctx, tok, SampleToken(now.Add(-time.Hour), time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSession(ctx, id, SampleSession(now.Add(-time.Hour), time.Minute)); err != nil {
			t.Fatal(err)
		}
		expiredOrPurged := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: error %v, want %v or %v", what, err, store.ErrExpired, store.ErrNotFound)
			}
		}
		_, err := s.TakeToken(ctx, tok, "wiki", now)
		expiredOrPurged("take of a token put expired", err)
		_, err = s.GetSession(ctx, id, now)
		expiredOrPurged("get of a session put expired", err)
	})

	t.Run("TokenOfAnotherAppStaysLive", func(t *testing.T) {
		// An application that presents another's token neither gets it nor burns
		// it: the app is checked inside the atomic take.
		s := open(t)
		now := base()
		tok, want := newID(t), SampleToken(now, time.Minute)
		if err := s.PutToken(ctx, tok, want); err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{"payroll", "", "wiki2", "Wiki"} {
			got, err := s.TakeToken(ctx, tok, other, now)
			wantErr(t, "take by app "+other, err, store.ErrOtherApp)
			if got.AppID != "" || got.Identity.Principal != "" {
				t.Fatalf("take by another app returned %+v", got)
			}
		}
		got, err := s.TakeToken(ctx, tok, "wiki", now)
		if err != nil {
			t.Fatalf("take by the token's own app after another's: %v", err)
		}
		if !EqualToken(got, want) {
			t.Fatalf("took %+v, want %+v", got, want)
		}
		_, err = s.TakeToken(ctx, tok, "payroll", now)
		wantErr(t, "another app's take of a used token", err, store.ErrTokenUsed)
	})

	t.Run("TokenUnknown", func(t *testing.T) {
		s := open(t)
		_, err := s.TakeToken(ctx, newID(t), "wiki", base())
		wantErr(t, "unknown token", err, store.ErrNotFound)
	})

	t.Run("TokenExpired", func(t *testing.T) {
		s := open(t)
		now := base()
		tok, tk := newID(t), SampleToken(now, time.Minute)
		if err := s.PutToken(ctx, tok, tk); err != nil {
			t.Fatal(err)
		}
		_, err := s.TakeToken(ctx, tok, "wiki", tk.ExpiresAt)
		wantErr(t, "take at ExpiresAt", err, store.ErrExpired)
		_, err = s.TakeToken(ctx, tok, "wiki", tk.ExpiresAt.Add(time.Hour))
		wantErr(t, "take after ExpiresAt", err, store.ErrExpired)
		// A refused take consumes nothing: just before expiry it still works.
		if _, err := s.TakeToken(ctx, tok, "wiki", tk.ExpiresAt.Add(-time.Millisecond)); err != nil {
			t.Fatalf("take just before expiry: %v", err)
		}
	})

	t.Run("TokenNotOverwritten", func(t *testing.T) {
		s := open(t)
		now := base()
		tok := newID(t)
		if err := s.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeToken(ctx, tok, "wiki", now); err != nil {
			t.Fatal(err)
		}
		// Re-putting a used token must not revive it.
		wantErr(t, "put of used token", s.PutToken(ctx, tok, SampleToken(now, time.Minute)), store.ErrExists)
		_, err := s.TakeToken(ctx, tok, "wiki", now)
		wantErr(t, "take after re-put", err, store.ErrTokenUsed)
	})

	t.Run("TokenConcurrentTake", func(t *testing.T) {
		s := open(t)
		now := base()
		tok := newID(t)
		if err := s.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		const n = 50
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.TakeToken(ctx, tok, "wiki", now)
			}()
		}
		close(start)
		wg.Wait()
		ok, used := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrTokenUsed):
				used++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || used != n-1 {
			t.Fatalf("%d successes and %d ErrTokenUsed, want 1 and %d", ok, used, n-1)
		}
	})

	t.Run("TokensAndSessionsSeparate", func(t *testing.T) {
		s := open(t)
		now := base()
		id := newID(t)
		if err := s.PutSession(ctx, id, SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		_, err := s.TakeToken(ctx, id, "wiki", now)
		wantErr(t, "session id taken as token", err, store.ErrNotFound)
		tok := newID(t)
		if err := s.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetSession(ctx, tok, now)
		wantErr(t, "token read as session", err, store.ErrNotFound)
	})

	t.Run("SessionLifecycle", func(t *testing.T) {
		s := open(t)
		now := base()
		id, want := newID(t), SampleSession(now, time.Hour)
		if err := s.PutSession(ctx, id, want); err != nil {
			t.Fatal(err)
		}
		for range 2 { // reading does not consume
			got, err := s.GetSession(ctx, id, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !EqualSession(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		}
		_, err := s.GetSession(ctx, id, want.ExpiresAt)
		wantErr(t, "get at ExpiresAt", err, store.ErrExpired)
		_, err = s.GetSession(ctx, id, want.ExpiresAt.Add(time.Hour))
		wantErr(t, "get after ExpiresAt", err, store.ErrExpired)

		// Put replaces: an extended session is valid again.
		ext := want
		ext.AppID = "wiki"
		ext.ExpiresAt = want.ExpiresAt.Add(2 * time.Hour)
		if err := s.PutSession(ctx, id, ext); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSession(ctx, id, want.ExpiresAt.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !EqualSession(got, ext) {
			t.Fatalf("after replace got %+v, want %+v", got, ext)
		}
	})

	t.Run("SessionRevoked", func(t *testing.T) {
		s := open(t)
		now := base()
		id, other := newID(t), newID(t)
		for _, x := range []string{id, other} {
			if err := s.PutSession(ctx, x, SampleSession(now, time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetSession(ctx, id, now)
		wantErr(t, "get revoked", err, store.ErrNotFound)
		wantErr(t, "delete twice", s.DeleteSession(ctx, id), store.ErrNotFound)
		if _, err := s.GetSession(ctx, other, now); err != nil {
			t.Fatalf("other session after revoke: %v", err)
		}
	})

	t.Run("SessionUnknown", func(t *testing.T) {
		s := open(t)
		_, err := s.GetSession(ctx, newID(t), base())
		wantErr(t, "get unknown", err, store.ErrNotFound)
		wantErr(t, "delete unknown", s.DeleteSession(ctx, newID(t)), store.ErrNotFound)
	})

	t.Run("GetSessionsAnswersEachAsGetSession", func(t *testing.T) {
		// One read of several ids answers each as GetSession would, in order,
		// repeats included: a live session, an unknown id, an expired one and a
		// revoked one.
		s := open(t)
		now := base()
		live, short, gone, unknown := newID(t), newID(t), newID(t), newID(t)
		want := SampleSession(now, time.Hour)
		want.AppID = "oidc-family:rp"
		if err := s.PutSession(ctx, live, want); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSession(ctx, short, SampleSession(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSession(ctx, gone, SampleSession(now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, gone); err != nil {
			t.Fatal(err)
		}
		at := now.Add(2 * time.Minute) // short has expired
		reads, err := s.GetSessions(ctx, []string{live, unknown, short, gone, live}, at)
		if err != nil {
			t.Fatal(err)
		}
		if len(reads) != 5 {
			t.Fatalf("%d answers for 5 ids", len(reads))
		}
		for _, i := range []int{0, 4} {
			if reads[i].Err != nil || !EqualSession(reads[i].Session, want) {
				t.Fatalf("answer %d: %+v, want the live session %+v", i, reads[i], want)
			}
		}
		wantErr(t, "unknown id", reads[1].Err, store.ErrNotFound)
		wantErr(t, "expired session", reads[2].Err, store.ErrExpired)
		wantErr(t, "revoked session", reads[3].Err, store.ErrNotFound)
		for i, r := range reads {
			one, err := s.GetSession(ctx, []string{live, unknown, short, gone, live}[i], at)
			if !errors.Is(r.Err, err) || !EqualSession(r.Session, one) {
				t.Fatalf("answer %d: %+v, GetSession: %+v %v", i, r, one, err)
			}
		}
		if reads, err := s.GetSessions(ctx, nil, at); err != nil || len(reads) != 0 {
			t.Fatalf("no ids: %v %v, want no answers and no error", reads, err)
		}
	})

	t.Run("GetSessionsConcurrent", func(t *testing.T) {
		// Reads of many requests at once (which a store may send together) each
		// get their own answers.
		s := open(t)
		now := base()
		const n = 24
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newID(t)
			sess := SampleSession(now, time.Hour)
			sess.AppID = fmt.Sprint("app-", i)
			if err := s.PutSession(ctx, ids[i], sess); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 20 {
					mine := []string{ids[i], newID(t), ids[(i+k)%n]}
					reads, err := s.GetSessions(ctx, mine, now)
					if err != nil {
						t.Error(err)
						return
					}
					if reads[0].Session.AppID != fmt.Sprint("app-", i) || !errors.Is(reads[1].Err, store.ErrNotFound) ||
						reads[2].Session.AppID != fmt.Sprint("app-", (i+k)%n) {
						t.Errorf("reader %d got %+v", i, reads)
						return
					}
				}
			}()
		}
		wg.Wait()
	})

	t.Run("TakeTokenReadingTakesOnceAndReads", func(t *testing.T) {
		// The take is TakeToken's (once, the app checked inside it); the reads
		// answer as GetSessions.
		s := open(t)
		now := base()
		tok, want := newID(t), SampleToken(now, time.Minute)
		if err := s.PutToken(ctx, tok, want); err != nil {
			t.Fatal(err)
		}
		live, unknown := newID(t), newID(t)
		sess := SampleSession(now, time.Hour)
		sess.AppID = "oidc-ended"
		if err := s.PutSession(ctx, live, sess); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.TakeTokenReading(ctx, tok, "payroll", now, []string{live})
		wantErr(t, "take by another app", err, store.ErrOtherApp)
		got, reads, err := s.TakeTokenReading(ctx, tok, "wiki", now, []string{unknown, live})
		if err != nil {
			t.Fatal(err)
		}
		if !EqualToken(got, want) || len(reads) != 2 {
			t.Fatalf("took %+v with %d reads, want %+v with 2", got, len(reads), want)
		}
		wantErr(t, "unknown session", reads[0].Err, store.ErrNotFound)
		if reads[1].Err != nil || !EqualSession(reads[1].Session, sess) {
			t.Fatalf("live session read as %+v", reads[1])
		}
		_, _, err = s.TakeTokenReading(ctx, tok, "wiki", now, []string{live})
		wantErr(t, "second take", err, store.ErrTokenUsed)
		_, err = s.TakeToken(ctx, tok, "wiki", now)
		wantErr(t, "TakeToken after TakeTokenReading", err, store.ErrTokenUsed)

		other := newID(t)
		if err := s.PutToken(ctx, other, want); err != nil {
			t.Fatal(err)
		}
		if _, reads, err := s.TakeTokenReading(ctx, other, "wiki", now, nil); err != nil || len(reads) != 0 {
			t.Fatalf("take without reads: %v %v", reads, err)
		}
		_, _, err = s.TakeTokenReading(ctx, newID(t), "wiki", now, make([]string, store.MaxGetSessions+1))
		if err == nil {
			t.Fatal("TakeTokenReading read more than MaxGetSessions ids")
		}
	})

	t.Run("GetSessionsIsBounded", func(t *testing.T) {
		s := open(t)
		now := base()
		many := make([]string, store.MaxGetSessions+1)
		for i := range many {
			many[i] = newID(t)
		}
		if _, err := s.GetSessions(ctx, many, now); err == nil {
			t.Errorf("GetSessions read %d ids (at most %d)", len(many), store.MaxGetSessions)
		}
		if reads, err := s.GetSessions(ctx, many[:store.MaxGetSessions], now); err != nil || len(reads) != store.MaxGetSessions {
			t.Errorf("GetSessions of %d ids: %d answers, %v", store.MaxGetSessions, len(reads), err)
		}
		if _, err := s.GetSessions(ctx, []string{newID(t), ""}, now); err == nil {
			t.Error("GetSessions accepted an empty id")
		}
	})

	t.Run("ReplaySeenBefore", func(t *testing.T) {
		s := open(t)
		now := base()
		var k, other replay.Key
		copy(k[:], "authenticator-01")
		copy(other[:], "authenticator-02")
		exp := now.Add(5 * time.Minute)
		check := func(what string, k replay.Key, now, exp time.Time, want bool) {
			t.Helper()
			got, err := s.SeenBefore(context.Background(), k, now, exp)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if got != want {
				t.Fatalf("%s: SeenBefore = %v, want %v", what, got, want)
			}
		}
		check("first", k, now, exp, false)
		check("second", k, now.Add(time.Second), exp, true)
		check("at expiry", k, exp, exp, true)
		check("other key", other, now, exp, false)
		check("after expiry", k, exp.Add(time.Nanosecond), exp.Add(5*time.Minute), false)
		check("again after re-recording", k, exp.Add(time.Second), exp.Add(5*time.Minute), true)
	})

	t.Run("ReplayConcurrent", func(t *testing.T) {
		s := open(t)
		now := base()
		var k replay.Key
		copy(k[:], "concurrent-key-1")
		const n = 20
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			fresh int
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, err := s.SeenBefore(context.Background(), k, now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if fresh != 1 {
			t.Fatalf("%d callers saw the key as new, want 1", fresh)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		now := base()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		tok := newID(t)
		if err := s.PutToken(cctx, tok, SampleToken(now, time.Minute)); err == nil {
			t.Fatal("PutToken with a cancelled context succeeded")
		}
		if err := s.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeToken(cctx, tok, "wiki", now); err == nil {
			t.Fatal("TakeToken with a cancelled context succeeded")
		}
		if _, err := s.GetSessions(cctx, []string{tok}, now); err == nil {
			t.Fatal("GetSessions with a cancelled context succeeded")
		}
		// The refused take consumed nothing.
		if _, err := s.TakeToken(ctx, tok, "wiki", now); err != nil {
			t.Fatalf("take after cancelled take: %v", err)
		}
	})

	t.Run("RejectsEmpty", func(t *testing.T) {
		s := open(t)
		now := base()
		if err := s.PutToken(ctx, "", SampleToken(now, time.Minute)); err == nil {
			t.Error("PutToken accepted an empty token")
		}
		if err := s.PutSession(ctx, "", SampleSession(now, time.Minute)); err == nil {
			t.Error("PutSession accepted an empty id")
		}
		if err := s.PutToken(ctx, newID(t), store.Token{AppID: "wiki"}); err == nil {
			t.Error("PutToken accepted a token without ExpiresAt")
		}
		if err := s.PutSession(ctx, newID(t), store.Session{}); err == nil {
			t.Error("PutSession accepted a session without ExpiresAt")
		}
	})

	t.Run("ErrorsDoNotLeakSecrets", func(t *testing.T) {
		s := open(t)
		now := base()
		tok, id := newID(t), newID(t)
		if err := s.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		var errs []error
		_, err := s.TakeToken(ctx, tok, "wiki", now.Add(time.Hour))
		errs = append(errs, err)
		_, err = s.TakeToken(ctx, id, "wiki", now)
		errs = append(errs, err)
		_, err = s.GetSession(ctx, id, now)
		errs = append(errs, err, s.DeleteSession(ctx, id))
		for _, err := range errs {
			if err == nil {
				t.Fatal("expected an error")
			}
			msg := err.Error()
			for _, secret := range []string{tok, id, fmt.Sprintf("%x", sha256.Sum256([]byte(tok)))} {
				if strings.Contains(msg, secret) {
					t.Fatalf("error %q reveals a secret", msg)
				}
			}
		}
	})
}

// RunPersistence checks that sessions and unused tokens survive a restart while used
// tokens stay used. open returns a fresh store and a function that reopens the same
// underlying state after the first store is closed; it must arrange cleanup.
func RunPersistence(t *testing.T, open func(t *testing.T) (s store.Store, reopen func(t *testing.T) store.Store)) {
	ctx := context.Background()
	s, reopen := open(t)
	now := base()
	unused, used, sid := newID(t), newID(t), newID(t)
	tk, sess := SampleToken(now, time.Hour), SampleSession(now, time.Hour)
	for _, tok := range []string{unused, used} {
		if err := s.PutToken(ctx, tok, tk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TakeToken(ctx, used, "wiki", now); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, sid, sess); err != nil {
		t.Fatal(err)
	}
	var k replay.Key
	copy(k[:], "persisted-replay")
	if _, err := s.SeenBefore(context.Background(), k, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen(t)
	gotS, err := s.GetSession(ctx, sid, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("session after reopen: %v", err)
	}
	if !EqualSession(gotS, sess) {
		t.Fatalf("session after reopen %+v, want %+v", gotS, sess)
	}
	gotT, err := s.TakeToken(ctx, unused, "wiki", now.Add(time.Minute))
	if err != nil {
		t.Fatalf("unused token after reopen: %v", err)
	}
	if !EqualToken(gotT, tk) {
		t.Fatalf("token after reopen %+v, want %+v", gotT, tk)
	}
	_, err = s.TakeToken(ctx, used, "wiki", now.Add(time.Minute))
	wantErr(t, "used token after reopen", err, store.ErrTokenUsed)
	seen, err := s.SeenBefore(context.Background(), k, now.Add(time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !seen {
		t.Fatal("replay entry lost on reopen")
	}
}

// RunShared checks a store shared by several nodes: open returns two stores (two
// nodes' clients) over the same fresh, empty shared state, and arranges cleanup.
func RunShared(t *testing.T, open func(t *testing.T) (node1, node2 store.Store)) {
	ctx := context.Background()

	t.Run("TokenIssuedOnOneRedeemedOnOther", func(t *testing.T) {
		a, b := open(t)
		now := base()
		tok, want := newID(t), SampleToken(now, time.Minute)
		if err := a.PutToken(ctx, tok, want); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "put of the same token on the other node", b.PutToken(ctx, tok, want), store.ErrExists)
		got, err := b.TakeToken(ctx, tok, "wiki", now)
		if err != nil {
			t.Fatal(err)
		}
		if !EqualToken(got, want) {
			t.Fatalf("took %+v, want %+v", got, want)
		}
		_, err = a.TakeToken(ctx, tok, "wiki", now)
		wantErr(t, "second take on the issuing node", err, store.ErrTokenUsed)
	})

	t.Run("TakeTokenReadingOnceAcrossNodes", func(t *testing.T) {
		// Of two nodes taking one token at once with reads, one succeeds.
		a, b := open(t)
		now := base()
		tok := newID(t)
		if err := a.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			node := a
			if i%2 == 1 {
				node = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = node.TakeTokenReading(ctx, tok, "wiki", now, []string{newID(t)})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, store.ErrTokenUsed) {
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d takes succeeded, want 1", ok)
		}
	})

	t.Run("ConcurrentTakesAcrossNodes", func(t *testing.T) {
		a, b := open(t)
		now := base()
		tok := newID(t)
		if err := a.PutToken(ctx, tok, SampleToken(now, time.Minute)); err != nil {
			t.Fatal(err)
		}
		const n = 50
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, n)
		)
		for i := range n {
			node := a
			if i%2 == 1 {
				node = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = node.TakeToken(ctx, tok, "wiki", now)
			}()
		}
		close(start)
		wg.Wait()
		ok, used := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrTokenUsed):
				used++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 || used != n-1 {
			t.Fatalf("%d successes and %d ErrTokenUsed, want 1 and %d", ok, used, n-1)
		}
	})

	t.Run("SessionSharedAndRevoked", func(t *testing.T) {
		a, b := open(t)
		now := base()
		id, want := newID(t), SampleSession(now, time.Hour)
		if err := b.PutSession(ctx, id, want); err != nil {
			t.Fatal(err)
		}
		got, err := a.GetSession(ctx, id, now)
		if err != nil {
			t.Fatal(err)
		}
		if !EqualSession(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		reads, err := a.GetSessions(ctx, []string{newID(t), id}, now)
		if err != nil || !EqualSession(reads[1].Session, want) {
			t.Fatalf("read of several ids on the other node: %+v %v", reads, err)
		}
		if err := a.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = b.GetSession(ctx, id, now)
		wantErr(t, "session revoked on the other node", err, store.ErrNotFound)
		reads, err = b.GetSessions(ctx, []string{id}, now)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "session revoked on the other node, read with others", reads[0].Err, store.ErrNotFound)
	})

	t.Run("GetSessionsSeesTheOtherNodesWritesUnderLoad", func(t *testing.T) {
		// A record written or deleted on one node is read as such on the other at
		// once, while many other reads go on there: nothing answers from before.
		a, b := open(t)
		now := base()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := b.GetSessions(ctx, []string{newID(t), newID(t)}, now); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for i := range 50 {
			id := newID(t)
			if err := a.PutSession(ctx, id, SampleSession(now, time.Hour)); err != nil {
				t.Fatal(err)
			}
			if reads, err := b.GetSessions(ctx, []string{id}, now); err != nil || reads[0].Err != nil {
				t.Fatalf("round %d: a record written on node 1, read on node 2: %+v %v", i, reads, err)
			}
			if err := a.DeleteSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			if reads, err := b.GetSessions(ctx, []string{id}, now); err != nil || !errors.Is(reads[0].Err, store.ErrNotFound) {
				t.Fatalf("round %d: a record deleted on node 1, read on node 2: %+v %v", i, reads, err)
			}
		}
		close(stop)
		wg.Wait()
	})

	t.Run("ReplaySeenOnEveryNode", func(t *testing.T) {
		a, b := open(t)
		now := base()
		var k replay.Key
		copy(k[:], "shared-replay-01")
		if seen, err := a.SeenBefore(context.Background(), k, now, now.Add(5*time.Minute)); err != nil || seen {
			t.Fatalf("first sight on node 1: seen=%v err=%v", seen, err)
		}
		if seen, err := b.SeenBefore(context.Background(), k, now.Add(time.Second), now.Add(5*time.Minute)); err != nil || !seen {
			t.Fatalf("replay on node 2: seen=%v err=%v, want seen", seen, err)
		}

		// Concurrent first sights of one authenticator on both nodes: one wins.
		var k2 replay.Key
		copy(k2[:], "shared-replay-02")
		const n = 20
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			fresh int
		)
		for i := range n {
			node := a
			if i%2 == 1 {
				node = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen, err := node.SeenBefore(context.Background(), k2, now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if fresh != 1 {
			t.Fatalf("%d callers on two nodes saw the key as new, want 1", fresh)
		}
	})
}
