package forwardauth

import (
	"context"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/store"
)

// maxCachedSessions bounds the per-node session cache; when full it is emptied.
const maxCachedSessions = 100_000

// sessionCache keeps sessions read from the store in this node's memory for a few
// seconds: forward-auth reads the session on every request to every protected
// application, and a store read (bbolt, or a Redis round trip) is most of that
// request's cost. A session deleted on this node leaves the cache at once; one
// deleted on another node of a farm stays usable here for up to ttl. Expiry is
// always checked against the session's own ExpiresAt.
type sessionCache struct {
	store.Sessions
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedSession
}

type cachedSession struct {
	s     store.Session
	until time.Time
}

func newSessionCache(st store.Sessions, ttl time.Duration, now func() time.Time) *sessionCache {
	if now == nil {
		now = time.Now
	}
	return &sessionCache{Sessions: st, ttl: ttl, now: now, m: map[string]cachedSession{}}
}

func (c *sessionCache) GetSession(ctx context.Context, id string, now time.Time) (store.Session, error) {
	t := c.now()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && t.Before(e.until) {
		if !now.Before(e.s.ExpiresAt) {
			return store.Session{}, store.ErrExpired
		}
		return e.s, nil
	}
	s, err := c.Sessions.GetSession(ctx, id, now)
	if err != nil {
		return s, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedSessions {
		c.m = map[string]cachedSession{}
	}
	c.m[id] = cachedSession{s: s, until: t.Add(c.ttl)}
	c.mu.Unlock()
	return s, nil
}

func (c *sessionCache) DeleteSession(ctx context.Context, id string) error {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
	return c.Sessions.DeleteSession(ctx, id)
}
