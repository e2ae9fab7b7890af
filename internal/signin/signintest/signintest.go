// Package signintest holds what the tests of faces share in place of the real
// mechanisms: an in-memory store (sessions and tokens) that can be made unavailable,
// and a pre-authenticator that signs a given identity in.
//
// It is for tests only: nothing outside _test.go files may import it.
package signintest

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Sessions is an in-memory store.Sessions. While Down is set, every call fails
// with store.ErrUnavailable.
type Sessions struct {
	mu   sync.Mutex
	m    map[string]store.Session
	down bool
}

// NewSessions returns an empty store.
func NewSessions() *Sessions { return &Sessions{m: map[string]store.Session{}} }

// SetDown makes the store unavailable (true) or available again.
func (s *Sessions) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// PutSession records the session.
func (s *Sessions) PutSession(_ context.Context, id string, v store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return store.ErrUnavailable
	}
	s.m[id] = v
	return nil
}

// GetSession returns the session: store.ErrNotFound, or store.ErrExpired at or
// after its expiry.
func (s *Sessions) GetSession(_ context.Context, id string, now time.Time) (store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return store.Session{}, store.ErrUnavailable
	}
	v, ok := s.m[id]
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	if !now.Before(v.ExpiresAt) {
		return store.Session{}, store.ErrExpired
	}
	return v, nil
}

// GetSessions answers each id as GetSession does, all under one lock.
func (s *Sessions) GetSessions(_ context.Context, ids []string, now time.Time) ([]store.SessionRead, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, store.ErrUnavailable
	}
	reads := make([]store.SessionRead, len(ids))
	for i, id := range ids {
		v, ok := s.m[id]
		switch {
		case !ok:
			reads[i].Err = store.ErrNotFound
		case !now.Before(v.ExpiresAt):
			reads[i].Err = store.ErrExpired
		default:
			reads[i].Session = v
		}
	}
	return reads, nil
}

// DeleteSession revokes the session; store.ErrNotFound if absent.
func (s *Sessions) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return store.ErrUnavailable
	}
	if _, ok := s.m[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.m, id)
	return nil
}

// Len is the number of sessions held.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Store is an in-memory store.Store: Sessions, plus single-use tokens checked the way
// the real stores check them (the app inside the take, a used token stays used), and
// a replay cache that never sees a replay.
type Store struct {
	*Sessions
	mu     sync.Mutex
	tokens map[string]store.Token
	used   map[string]bool
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{Sessions: NewSessions(), tokens: map[string]store.Token{}, used: map[string]bool{}}
}

// PutToken records a token; store.ErrExists if it was recorded before.
func (s *Store) PutToken(_ context.Context, token string, t store.Token) error {
	if s.isDown() {
		return store.ErrUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[token]; ok || s.used[token] {
		return store.ErrExists
	}
	s.tokens[token] = t
	return nil
}

// TakeToken consumes the token of appID (see store.Tokens).
func (s *Store) TakeToken(_ context.Context, token, appID string, now time.Time) (store.Token, error) {
	if s.isDown() {
		return store.Token{}, store.ErrUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[token] {
		return store.Token{}, store.ErrTokenUsed
	}
	t, ok := s.tokens[token]
	switch {
	case !ok:
		return store.Token{}, store.ErrNotFound
	case t.AppID != appID:
		return store.Token{}, store.ErrOtherApp
	case !now.Before(t.ExpiresAt):
		return store.Token{}, store.ErrExpired
	}
	delete(s.tokens, token)
	s.used[token] = true
	return t, nil
}

// TakeTokenReading is TakeToken, then GetSessions (store.Tokens).
func (s *Store) TakeTokenReading(ctx context.Context, token, appID string, now time.Time, ids []string) (store.Token, []store.SessionRead, error) {
	t, err := s.TakeToken(ctx, token, appID, now)
	if err != nil {
		return store.Token{}, nil, err
	}
	reads, err := s.GetSessions(ctx, ids, now)
	if err != nil {
		return store.Token{}, nil, err
	}
	return t, reads, nil
}

// Tokens is the number of live tokens.
func (s *Store) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// SeenBefore never reports a replay.
func (s *Store) SeenBefore(context.Context, replay.Key, time.Time, time.Time) (bool, error) {
	return false, nil
}

// Close does nothing.
func (s *Store) Close() error { return nil }

func (s *Sessions) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// SignIn is a pre-authenticator that signs every browser in as Identity, counting
// the sign-ins: it stands for Negotiate in tests of faces.
type SignIn struct {
	mu       sync.Mutex
	Identity identity.Identity
	count    int
}

// Method is IWA.
func (f *SignIn) Method() signin.Method { return signin.MethodIWA }

// Authenticate signs the browser in as f.Identity.
func (f *SignIn) Authenticate(w http.ResponseWriter, r *http.Request, next signin.Next) {
	f.mu.Lock()
	f.count++
	id := f.Identity
	f.mu.Unlock()
	next(w, r, signin.Result{Identity: &id}, nil)
}

// Count is the number of sign-ins so far.
func (f *SignIn) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}
