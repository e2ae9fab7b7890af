package s4u

import (
	"container/list"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
)

// lru keeps delegated tickets per (user, SPN) until their refresh time, evicting the
// least recently used beyond its size, and runs one KDC exchange per key at a time
// (single flight): a burst of requests from one user waits for the first exchange.
type lru struct {
	mu      sync.Mutex
	size    int
	order   *list.List // front: most recently used; values are *entry
	entries map[string]*list.Element
	flights map[string]*flight
}

type entry struct {
	key       string
	cred      *initiator.Credential
	refreshAt time.Time
}

type flight struct {
	done chan struct{}
	cred *initiator.Credential
	err  error
}

func newLRU(size int) *lru {
	return &lru{size: size, order: list.New(), entries: map[string]*list.Element{}, flights: map[string]*flight{}}
}

func (c *lru) get(key string, now time.Time) (*initiator.Credential, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.refreshAt) {
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.cred, true
}

func (c *lru) put(key string, cred *initiator.Credential, refreshAt time.Time) {
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry)
		e.cred, e.refreshAt = cred, refreshAt
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&entry{key: key, cred: cred, refreshAt: refreshAt})
	for c.order.Len() > c.size {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.entries, old.Value.(*entry).key)
	}
}

// do runs fn once for concurrent callers of the same key and caches its result until
// the refresh time it returns (a zero time: the result was found in the cache).
func (c *lru) do(key string, fn func() (*initiator.Credential, time.Time, error)) (*initiator.Credential, error) {
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.cred, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	cred, refreshAt, err := fn()
	c.mu.Lock()
	if err == nil && !refreshAt.IsZero() {
		c.put(key, cred, refreshAt)
	}
	delete(c.flights, key)
	c.mu.Unlock()
	f.cred, f.err = cred, err
	close(f.done)
	return cred, err
}

// len returns the number of cached tickets.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
