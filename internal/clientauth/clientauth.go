// Package clientauth authenticates a program (an application's back end, and the
// OpenID provider's clients to come) by its client id and secret, without letting
// wrong secrets become a way to exhaust kerbgate's memory and CPU.
//
// A secret is checked against its configured hash (argon2id at 19 MiB, or bcrypt:
// package secret), which is expensive by design. This package puts three things
// around that check, in this order:
//
//   - a cache of the secret each client last proved (an HMAC-SHA-256 under a key
//     made at random by each Authenticator, compared in constant time, and only for
//     the configured hash it was proved against), so that a client with the right
//     secret never hashes again and never waits for the two limits below;
//   - a rate limit on failed attempts, per client id (every unknown id shares one
//     budget) and per source address (an IPv6 /64 counts as one): over budget, the answer is rate_limited (429)
//     with Retry-After, before any hashing;
//   - a bound on the hash checks running at once (GOMAXPROCS by default): when it is
//     full the answer is busy (503) with Retry-After, at once, rather than a queue.
//
// Unknown client ids are checked against a dummy hash, so that they take the time a
// real check takes. Refusals are *reason.Error values naming the client id (the
// refusal reporter adds the client's address), never the secret. The package must not know HTTP or where the clients
// are configured: callers pass the id, the configured hash and the address.
package clientauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/secret"
)

// Options tune an Authenticator; zero values are the defaults.
type Options struct {
	// MaxConcurrent bounds the hash checks running at once; GOMAXPROCS by default.
	// Each argon2id check holds 19 MiB while it runs.
	MaxConcurrent int
	// Burst is how many failed attempts a client id or a source address may make in
	// a row (10 by default); one more is allowed every Refill (6s: 10 a minute).
	Burst  int
	Refill time.Duration
	// MaxTracked bounds the ids and addresses whose failures are remembered
	// (10000 by default). When it is full of recent failures, new sources are
	// limited too (fail closed).
	MaxTracked int
	// BusyRetry is the Retry-After of a busy answer (1s by default).
	BusyRetry time.Duration
	// Now is injected for tests.
	Now func() time.Time
}

// Authenticator checks client secrets. It is safe for concurrent use.
type Authenticator struct {
	o     Options
	slots chan struct{}
	// key keys the remembered secrets: made at random by New, never stored, so
	// that the table alone is no fast test of guessed secrets.
	key [32]byte

	mu       sync.Mutex
	verified map[string]proof // client id → the secret it last proved
	failures *Limiter
}

type proof struct {
	hash string
	sum  [sha256.Size]byte
}

// New returns an Authenticator.
func New(o Options) *Authenticator {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.Refill <= 0 {
		o.Refill = 6 * time.Second
	}
	if o.MaxTracked <= 0 {
		o.MaxTracked = 10000
	}
	if o.BusyRetry <= 0 {
		o.BusyRetry = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authenticator{o: o, slots: make(chan struct{}, o.MaxConcurrent),
		verified: map[string]proof{}, failures: NewLimiter(o.Burst, o.Refill, o.MaxTracked)}
	if _, err := rand.Read(a.key[:]); err != nil {
		panic("clientauth: no randomness: " + err.Error())
	}
	return a
}

// proven is what the cache remembers of a secret.
func (a *Authenticator) proven(secret string) (sum [sha256.Size]byte) {
	m := hmac.New(sha256.New, a.key[:])
	m.Write([]byte(secret))
	m.Sum(sum[:0])
	return sum
}

// Check authenticates client id with the presented secret. hash is the client's
// configured secret hash, "" when the id is unknown. addr is the source address
// ("" if unknown). It returns nil, or a refusal: bad_client_credentials,
// rate_limited or busy (the last two with RetryAfter set).
func (a *Authenticator) Check(id, hash, addr, presented string) *reason.Error {
	known := id != "" && hash != "" && presented != ""
	sum := a.proven(presented)
	if known {
		a.mu.Lock()
		p, ok := a.verified[id]
		a.mu.Unlock()
		if ok && p.hash == hash && subtle.ConstantTimeCompare(p.sum[:], sum[:]) == 1 {
			return nil
		}
	}
	idKey := "id:" + id
	if !known {
		idKey = "id:?" // unknown ids share one budget, so they cannot fill the table
	}
	addrKey := "addr:" + addrBudget(addr)
	now := a.o.Now()
	if wait := a.failures.Wait(now, idKey, addrKey); wait > 0 {
		e := reason.New(reason.RateLimited, "too many failed client authentications",
			"client_id", truncate(id, 64), "retry_after_s", int((wait+time.Second-1)/time.Second))
		e.RetryAfter = wait
		return e
	}
	select {
	case a.slots <- struct{}{}:
	default:
		e := reason.New(reason.Busy, "client secret checks at their bound", "client_id", truncate(id, 64),
			"max_concurrent", a.o.MaxConcurrent)
		e.RetryAfter = a.o.BusyRetry
		return e
	}
	h := hash
	if !known {
		h = dummyHash
	}
	ok, err := secret.Verify(h, presented)
	<-a.slots
	if known && err == nil && ok {
		a.mu.Lock()
		a.verified[id] = proof{hash: hash, sum: sum}
		a.mu.Unlock()
		return nil
	}
	a.failures.Spend(a.o.Now(), idKey, addrKey)
	if !known {
		return reason.New(reason.BadClientCredentials, "unknown app or missing credentials",
			"client_id", truncate(id, 64))
	}
	if err != nil {
		return reason.New(reason.BadClientCredentials, "configured secret hash does not verify",
			"client_id", id, "error", err.Error())
	}
	return reason.New(reason.BadClientCredentials, "wrong client secret", "client_id", id)
}

// addrBudget is the key of an address's failure budget: the address, or for IPv6
// its /64 (one subscriber's usual allocation, so that walking through it does not
// buy fresh budgets).
func addrBudget(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() || a.Is4In6() {
		return addr
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// dummyHash is a valid hash of a random value, verified against when the client is
// unknown.
var dummyHash = func() string {
	h, err := secret.Hash("kerbgate-no-such-client")
	if err != nil {
		panic(err)
	}
	return h
}()

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
