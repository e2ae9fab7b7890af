package store

import (
	"context"
	"errors"
	"time"
)

// Attempts counts password sign-in attempts for smart lockout (package pwsignin):
// per account and per source address, in the store every node of a farm shares, so
// that an attacker spreading guesses over the nodes meets one count. It also
// remembers the sources an account signed in from (familiar locations).
//
// Keys are the caller's (an account or address with a prefix); the store keeps only
// their SHA-256, like token and session ids. Both Bolt and Redis implement it.
type Attempts interface {
	// TakeAttempt counts one attempt under key unless the key is at l.Max attempts
	// within its window, or in back-off after its last attempt: check and count
	// are one atomic step, so that concurrent attempts (on any node) cannot all pass
	// a limit of one. Each counted attempt moves the key's window to end l.Window
	// after now; a key whose window has ended starts from zero.
	TakeAttempt(ctx context.Context, key string, now time.Time, l AttemptLimit) (AttemptResult, error)
	// ReturnAttempt takes back one counted attempt (it did not reach the KDC, or
	// it succeeded), keeping the window and the back-off of the ones before.
	ReturnAttempt(ctx context.Context, key string) error
	// ResetAttempts forgets the key's attempts (a successful sign-in).
	ResetAttempts(ctx context.Context, key string) error
	// PutFamiliar records key (an account and a source) until expires.
	PutFamiliar(ctx context.Context, key string, expires time.Time) error
	// Familiar reports whether key was recorded and has not expired at now.
	Familiar(ctx context.Context, key string, now time.Time) (bool, error)
}

// AttemptLimit is the rule TakeAttempt applies.
type AttemptLimit struct {
	// Max is the most attempts counted within Window (at least 1).
	Max int
	// Window is how long after the last counted attempt the count lasts.
	Window time.Duration
	// Backoff, when positive, is the wait after the first attempt before another
	// is counted; it doubles after each further attempt, up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// AttemptResult is what TakeAttempt decided.
type AttemptResult struct {
	// Taken says whether the attempt was counted (and may go on).
	Taken bool
	// Count is the number of attempts in the window, this one included when taken.
	Count int
	// BackingOff says a refusal is the back-off's, not the limit's.
	BackingOff bool
	// RetryAfter is how long until an attempt would be counted (refusals only).
	RetryAfter time.Duration
}

// backoffAfter is the back-off after n counted attempts: Backoff doubled n-1 times,
// at most MaxBackoff (or Backoff when that is not larger).
func (l AttemptLimit) backoffAfter(n int) time.Duration {
	if l.Backoff <= 0 || n < 1 {
		return 0
	}
	d := l.Backoff
	for i := 1; i < n && d < l.MaxBackoff; i++ {
		d *= 2
	}
	if l.MaxBackoff > l.Backoff && d > l.MaxBackoff {
		d = l.MaxBackoff
	}
	return d
}

// attemptRecord is a key's count, the time of its last counted attempt and when
// the count ends (Unix milliseconds: Redis's Lua compares them exactly).
type attemptRecord struct {
	count       int
	last, until int64
}

// take applies l at now (milliseconds) to rec and returns the record to store (nil
// when nothing changes) and the decision. Bolt runs it in Go; Redis runs the same
// rule in Lua (takeAttemptScript), and the shared suite holds both to it.
func (rec attemptRecord) take(now int64, l AttemptLimit) (*attemptRecord, AttemptResult) {
	if rec.until <= now {
		rec = attemptRecord{}
	}
	if rec.count >= l.Max {
		return nil, AttemptResult{Count: rec.count, RetryAfter: time.Duration(rec.until-now) * time.Millisecond}
	}
	if wait := l.backoffAfter(rec.count).Milliseconds(); wait > 0 && now < rec.last+wait {
		return nil, AttemptResult{Count: rec.count, BackingOff: true, RetryAfter: time.Duration(rec.last+wait-now) * time.Millisecond}
	}
	next := attemptRecord{count: rec.count + 1, last: now, until: now + l.Window.Milliseconds()}
	return &next, AttemptResult{Taken: true, Count: next.count}
}

func checkLimit(l AttemptLimit) error {
	if l.Max < 1 || l.Window <= 0 {
		return errBadLimit
	}
	return nil
}

var errBadLimit = errors.New("store: an attempt limit needs Max of at least 1 and a positive Window")
