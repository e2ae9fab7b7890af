// Package signintest holds what the tests of faces share in place of the real
// mechanisms: an in-memory session store that can be made unavailable.
//
// It is for tests only: nothing outside _test.go files may import it.
package signintest

import (
	"context"
	"sync"
	"time"

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
