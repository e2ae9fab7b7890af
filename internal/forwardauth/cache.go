package forwardauth

import (
	"context"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/idheaders"
)

// session is an opened forward-auth session as the hot path uses it: the identity,
// the session's expiry, and for each host asked about since it was opened, the
// headers rendered for it once the user was found in the host's groups.
type session struct {
	id      *identity.Identity
	expires time.Time

	mu       sync.Mutex
	admitted []admission
}

type admission struct {
	host    *host
	headers *idheaders.Rendered
}

// admit returns the headers of the session's user at h, or the refusal when the
// user is not in h's groups. A user admitted once is admitted while the session
// stays in the cache: a host's groups and the session's identity do not change
// (the identity is the one the session started with, as without the cache).
// Refusals are not kept: a group named in allowed_groups that the directory could
// not resolve is tried again.
func (sess *session) admit(ctx context.Context, h *host) (*idheaders.Rendered, error) {
	sess.mu.Lock()
	for _, a := range sess.admitted {
		if a.host == h {
			sess.mu.Unlock()
			return a.headers, nil
		}
	}
	sess.mu.Unlock()
	if err := h.Groups.Check(ctx, sess.id); err != nil {
		return nil, err
	}
	rd := h.Headers.Render(sess.id)
	sess.mu.Lock()
	sess.admitted = append(sess.admitted, admission{host: h, headers: rd})
	sess.mu.Unlock()
	return rd, nil
}

// maxCachedSessions bounds the per-node session cache; when full it is emptied.
const maxCachedSessions = 100_000

// sessionCache keeps opened sessions in this node's memory for a short time (ttl,
// one second by default): forward-auth opens the session on every request to every
// protected application, and a store read (a bbolt transaction and the session's
// JSON, or a Redis round trip) was most of that request's cost. Entries are kept by
// session id; a session is always checked against its own expiry.
//
// A session signed out on this node leaves the cache at once (evict). One deleted
// from the store by another node of a farm, or by hand, stays usable on this node
// until its entry is ttl old: that is the cross-node window of a sign-out.
//
// A nil *sessionCache keeps nothing.
type sessionCache struct {
	ttl time.Duration

	mu    sync.Mutex
	m     map[string]cachedSession
	sweep time.Time // when entries past their time are next dropped
}

type cachedSession struct {
	sess  *session
	until time.Time
}

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, m: map[string]cachedSession{}}
}

// get returns the session sid kept less than ttl ago, or nil.
func (c *sessionCache) get(sid string, now time.Time) *session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e, ok := c.m[sid]
	c.mu.Unlock()
	// An entry is fresh from until-ttl to until: one "from the future" (the clock
	// was set back) is not kept longer than ttl.
	if !ok || !now.Before(e.until) || now.Before(e.until.Add(-c.ttl)) {
		return nil
	}
	return e.sess
}

// put keeps sess as the session sid from now on for ttl. Once a ttl, entries past
// their time are dropped, so the map holds about the sessions of the last ttl.
func (c *sessionCache) put(sid string, sess *session, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !now.Before(c.sweep) {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		c.sweep = now.Add(c.ttl)
	}
	if len(c.m) >= maxCachedSessions {
		c.m = map[string]cachedSession{}
	}
	c.m[sid] = cachedSession{sess: sess, until: now.Add(c.ttl)}
}

// evict drops the session sid from this node's cache.
func (c *sessionCache) evict(sid string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, sid)
	c.mu.Unlock()
}

// len is the number of sessions kept (tests).
func (c *sessionCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
