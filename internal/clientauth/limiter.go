package clientauth

import (
	"sync"
	"time"
)

// Limiter is a failure budget per key (a client id, a source address): each key may
// fail Burst times in a row, and earns one more failure every Refill. It remembers at
// most MaxTracked keys; when the table is full of keys still spending their budget,
// a new key is limited too (fail closed), so that a flood of distinct keys cannot
// grow it. It is safe for concurrent use; the password sign-in uses one per source
// address.
type Limiter struct {
	burst      float64
	refill     time.Duration
	maxTracked int

	mu      sync.Mutex
	buckets map[string]*bucket
}

// NewLimiter returns a Limiter; zero values take clientauth's defaults (10 in a
// row, one more every 6s, 10000 keys).
func NewLimiter(burst int, refill time.Duration, maxTracked int) *Limiter {
	if burst <= 0 {
		burst = 10
	}
	if refill <= 0 {
		refill = 6 * time.Second
	}
	if maxTracked <= 0 {
		maxTracked = 10000
	}
	return &Limiter{burst: float64(burst), refill: refill, maxTracked: maxTracked, buckets: map[string]*bucket{}}
}

// bucket is a token bucket of allowed failures.
type bucket struct {
	tokens float64
	at     time.Time
}

func (l *Limiter) level(b *bucket, now time.Time) float64 {
	t := b.tokens + float64(now.Sub(b.at))/float64(l.refill)
	return min(t, l.burst)
}

// Wait returns how long the caller must wait before another attempt under any of
// keys, or 0.
func (l *Limiter) Wait(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			if len(l.buckets) >= l.maxTracked && !l.sweep(now) {
				return l.refill // the table is full of fresh failures: fail closed
			}
			continue
		}
		if t := l.level(b, now); t < 1 {
			wait = max(wait, time.Duration((1-t)*float64(l.refill)))
		}
	}
	return wait
}

// Spend spends one allowed failure under each key.
func (l *Limiter) Spend(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			if len(l.buckets) >= l.maxTracked && !l.sweep(now) {
				continue
			}
			b = &bucket{tokens: l.burst, at: now}
			l.buckets[k] = b
		}
		b.tokens, b.at = l.level(b, now)-1, now
	}
}

// Take is Wait then, when nothing is to be waited for, Spend, under one lock: an
// attempt that is counted whether it fails or not.
func (l *Limiter) Take(now time.Time, key string) time.Duration {
	if w := l.Wait(now, key); w > 0 {
		return w
	}
	l.Spend(now, key)
	return 0
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sweep forgets the keys whose budget is whole again, and reports whether there is
// room for a new one.
func (l *Limiter) sweep(now time.Time) bool {
	for k, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.maxTracked
}

// AddrBudget is the key of an address's budget: the address, or for IPv6 its /64
// (one subscriber's usual allocation, so that walking through it does not buy fresh
// budgets).
func AddrBudget(addr string) string { return addrBudget(addr) }
