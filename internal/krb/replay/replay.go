// Package replay defines the replay cache an acceptor consults for every
// authenticator, and an in-memory implementation for a single node.
//
// It owns remembering which authenticators were seen and until when. It must not know
// how keys are derived from messages (the acceptor decides that) nor read the clock
// itself: callers pass times, so tests are exact. Shared implementations (Redis, for
// farms) satisfy the same interface elsewhere.
package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// Key identifies one authenticator. The acceptor derives it from the authenticator's
// ciphertext, so only a byte-identical resend collides.
type Key [16]byte

// ErrFull means the cache cannot record another entry; callers must refuse the
// request (fail closed) rather than skip the check.
var ErrFull = errors.New("replay cache full")

// ErrUnavailable means a shared cache (Redis, for a farm) cannot be reached or did
// not answer in time, so it is unknown whether the authenticator was seen. Callers
// must refuse the request (fail closed); the condition ends when the cache answers
// again. Implementations wrap it (errors.Is) with the facts of the failure.
var ErrUnavailable = errors.New("replay cache unavailable")

// Cache records authenticators. SeenBefore atomically checks and inserts: it returns
// true if k was recorded before and has not expired, otherwise records k until
// expires and returns false. A shared cache stops waiting when ctx ends (the
// request was cancelled) and returns an error wrapping ctx's; it is then unknown
// whether k was recorded, and callers must refuse the request.
type Cache interface {
	SeenBefore(ctx context.Context, k Key, now, expires time.Time) (bool, error)
}

const shardCount = 32

// Memory is a sharded in-process Cache with a bound on the number of entries.
type Memory struct {
	perShard int
	shards   [shardCount]shard
}

type shard struct {
	mu        sync.Mutex
	entries   map[Key]int64 // expiry, unix nanoseconds
	nextSweep int64
}

// NewMemory returns a cache holding at most max entries (at least shardCount).
func NewMemory(max int) *Memory {
	if max < shardCount {
		max = shardCount
	}
	m := &Memory{perShard: max / shardCount}
	for i := range m.shards {
		m.shards[i].entries = make(map[Key]int64)
	}
	return m
}

// SeenBefore implements Cache. It never waits, so it does not consult ctx.
func (m *Memory) SeenBefore(_ context.Context, k Key, now, expires time.Time) (bool, error) {
	s := &m.shards[binary.LittleEndian.Uint32(k[:4])%shardCount]
	n, exp := now.UnixNano(), expires.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[k]; ok && e >= n {
		return true, nil
	}
	if len(s.entries) >= m.perShard || n >= s.nextSweep {
		s.sweep(n)
		if len(s.entries) >= m.perShard {
			return false, ErrFull
		}
	}
	s.entries[k] = exp
	return false, nil
}

// sweep drops expired entries. It runs at most once a second per shard unless the
// shard is full, so its cost is spread thinly over inserts.
func (s *shard) sweep(now int64) {
	for k, e := range s.entries {
		if e < now {
			delete(s.entries, k)
		}
	}
	s.nextSweep = now + int64(time.Second)
}

// Len returns the number of entries held (expired ones may still be counted).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].entries)
		m.shards[i].mu.Unlock()
	}
	return n
}
