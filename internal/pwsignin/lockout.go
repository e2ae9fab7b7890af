package pwsignin

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/store"
)

// DomainPolicy is the domain's account lockout policy (directory.LockoutPolicy).
type DomainPolicy struct {
	// Threshold is how many bad passwords lock an account out in AD; 0: never.
	Threshold int
	// ObservationWindow is how long AD remembers a bad password.
	ObservationWindow time.Duration
}

// LockoutConfig is smart lockout's settings (password_signin.lockout).
type LockoutConfig struct {
	// UnfamiliarThreshold and FamiliarThreshold are how many failures an account
	// may have within Window from unfamiliar and from familiar sources; 0 derives
	// them from the domain's threshold (see Limits).
	UnfamiliarThreshold, FamiliarThreshold int
	// DomainThreshold stands in for the domain's lockoutThreshold when it cannot be
	// read (no directory); -1: not given.
	DomainThreshold int
	// Window is how long a failure counts: at least the domain's observation
	// window, whatever is set here.
	Window time.Duration
	// Backoff is the wait after an account's first failure, doubled after each
	// further one up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// SourceThreshold is how many failures one source address may have within
	// Window for accounts it is not familiar to.
	SourceThreshold int
	// FamiliarFor is how long a source stays familiar to an account after a
	// successful sign-in from it.
	FamiliarFor time.Duration
	// PolicyRefresh is how often the domain's policy is read again.
	PolicyRefresh time.Duration
}

// Defaults of LockoutConfig.
const (
	DefaultWindow          = 30 * time.Minute
	DefaultBackoff         = time.Second
	DefaultMaxBackoff      = time.Minute
	DefaultSourceThreshold = 30
	DefaultFamiliarFor     = 30 * 24 * time.Hour
	DefaultPolicyRefresh   = 10 * time.Minute
	// Without a lockout in the domain, kerbgate's own is the only brake on
	// guessing.
	defaultUnfamiliarNoDomain = 5
	defaultFamiliarNoDomain   = 10
)

// Limits are the thresholds in force.
type Limits struct {
	Unfamiliar, Familiar, Source int
	Window                       time.Duration
	Backoff, MaxBackoff          time.Duration
	// Domain is the domain's threshold the limits stay below (0: none); Clamped
	// says configured thresholds were lowered to stay below it.
	Domain  int
	Clamped bool
}

// DeriveLimits works out the thresholds from the domain's policy and the settings.
// Failures from both kinds of source reach the same badPwdCount in AD, so with a
// domain threshold L the two thresholds add up to at most L-1: by default the
// familiar sources get the larger half (L=5: 2 unfamiliar, 2 familiar; L=3: 1 and
// 1; L=2: 0 and 1: unfamiliar sources may not try at all). Configured thresholds
// above that are lowered, unfamiliar first.
func DeriveLimits(domain DomainPolicy, c LockoutConfig) Limits {
	l := Limits{Source: c.SourceThreshold, Backoff: c.Backoff, MaxBackoff: c.MaxBackoff, Window: c.Window, Domain: domain.Threshold}
	if l.Source <= 0 {
		l.Source = DefaultSourceThreshold
	}
	if l.Backoff <= 0 {
		l.Backoff = DefaultBackoff
	}
	if l.MaxBackoff < l.Backoff {
		l.MaxBackoff = max(DefaultMaxBackoff, l.Backoff)
	}
	if l.Window <= 0 {
		l.Window = DefaultWindow
	}
	l.Window = max(l.Window, domain.ObservationWindow)
	u, f := c.UnfamiliarThreshold, c.FamiliarThreshold
	if domain.Threshold <= 0 {
		if u <= 0 {
			u = defaultUnfamiliarNoDomain
		}
		if f <= 0 {
			f = defaultFamiliarNoDomain
		}
		l.Unfamiliar, l.Familiar = u, f
		return l
	}
	budget := domain.Threshold - 1
	switch {
	case u <= 0 && f <= 0:
		f = (budget + 1) / 2
		u = budget - f
	case u <= 0:
		f = min(f, budget)
		u = budget - f
	case f <= 0:
		u = min(u, budget)
		f = budget - u
	}
	if u+f > budget {
		l.Clamped = true
		f = min(f, budget)
		u = budget - f
	}
	l.Unfamiliar, l.Familiar = u, f
	return l
}

// Lockout is smart lockout over the store's attempt counts.
type Lockout struct {
	attempts store.Attempts
	cfg      LockoutConfig
	// policy reads the domain's lockout policy; nil without a directory.
	policy func(context.Context) (DomainPolicy, error)
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex
	limits   Limits
	known    bool // limits were derived from a policy read (or DomainThreshold)
	readAt   time.Time
	readFail error
}

// NewLockout returns smart lockout over attempts; policy reads the domain's
// lockout policy (nil: cfg.DomainThreshold stands for it).
func NewLockout(attempts store.Attempts, cfg LockoutConfig, policy func(context.Context) (DomainPolicy, error), now func() time.Time, log *slog.Logger) *Lockout {
	if cfg.FamiliarFor <= 0 {
		cfg.FamiliarFor = DefaultFamiliarFor
	}
	if cfg.PolicyRefresh <= 0 {
		cfg.PolicyRefresh = DefaultPolicyRefresh
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lockout{attempts: attempts, cfg: cfg, policy: policy, now: now, log: log}
}

// Limits returns the limits in force, reading the domain's policy when it is due
// (every PolicyRefresh). When the policy cannot be read the last limits stay; before
// the first read, LockoutConfig.DomainThreshold stands in, and without it the
// refusal is directory_unavailable: kerbgate does not guess how many failures AD
// tolerates.
func (l *Lockout) Limits(ctx context.Context) (Limits, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.known && now.Sub(l.readAt) < l.cfg.PolicyRefresh {
		return l.limits, nil
	}
	if l.policy == nil {
		if l.cfg.DomainThreshold < 0 {
			return Limits{}, reason.New(reason.Internal, "smart lockout has neither a directory nor password_signin.lockout.domain_threshold")
		}
		l.limits, l.known, l.readAt = DeriveLimits(DomainPolicy{Threshold: l.cfg.DomainThreshold}, l.cfg), true, now
		return l.limits, nil
	}
	p, err := l.policy(ctx)
	if err != nil {
		l.readFail = err
		if l.known {
			l.readAt = now.Add(-l.cfg.PolicyRefresh + time.Minute) // try again in a minute
			l.log.Warn("cannot read the domain's lockout policy; the last one stays in force", "error", err.Error())
			return l.limits, nil
		}
		if l.cfg.DomainThreshold >= 0 {
			l.limits = DeriveLimits(DomainPolicy{Threshold: l.cfg.DomainThreshold}, l.cfg)
			return l.limits, nil
		}
		return Limits{}, err
	}
	limits := DeriveLimits(p, l.cfg)
	if !l.known || limits != l.limits {
		l.log.Info("smart lockout limits", "domain_lockout_threshold", p.Threshold, "domain_observation_window", p.ObservationWindow.String(),
			"unfamiliar_threshold", limits.Unfamiliar, "familiar_threshold", limits.Familiar, "source_threshold", limits.Source,
			"window", limits.Window.String(), "clamped", limits.Clamped)
	}
	l.limits, l.known, l.readAt, l.readFail = limits, true, now, nil
	return limits, nil
}

// location is what makes a source familiar: the address, or an IPv6 /64.
func location(src netip.Addr) string {
	if !src.IsValid() {
		return "unknown"
	}
	src = src.Unmap()
	if src.Is6() {
		p, _ := src.WithZone("").Prefix(64)
		return p.String()
	}
	return src.String()
}

// Reservation is an attempt counted before it is sent to the KDC.
type Reservation struct {
	l        *Lockout
	limits   Limits
	loc      string
	familiar bool
	// accounts are the counting keys taken (the typed name's, and the account's
	// own when the KDC names it otherwise).
	accounts []string
	names    []string // the account keys, for familiarity
	source   string   // "" when not taken
}

// Familiar says whether the source is familiar to the account.
func (r *Reservation) Familiar() bool { return r.familiar }

func (l *Lockout) accountKey(familiar bool, account string) string {
	if familiar {
		return "pw:acct:f:" + account
	}
	return "pw:acct:u:" + account
}

func familiarKey(account, loc string) string { return "pw:fam:" + account + "|" + loc }

// Reserve counts an attempt for account (a Names key) from src, or refuses it:
// password_locked_out at the account's limit for its kind of source,
// password_backoff within its back-off, password_source_blocked when an
// unfamiliar source is at its limit. It touches only the store, never the KDC.
func (l *Lockout) Reserve(ctx context.Context, account string, src netip.Addr) (*Reservation, error) {
	limits, err := l.Limits(ctx)
	if err != nil {
		return nil, err
	}
	r := &Reservation{l: l, limits: limits, loc: location(src)}
	if r.familiar, err = l.attempts.Familiar(ctx, familiarKey(account, r.loc), l.now()); err != nil {
		return nil, store.Refusal("cannot read the familiar sources", "get_familiar", err)
	}
	if !r.familiar {
		res, err := l.attempts.TakeAttempt(ctx, "pw:src:"+r.loc, l.now(), store.AttemptLimit{Max: max(limits.Source, 1), Window: limits.Window})
		if err != nil {
			return nil, store.Refusal("cannot count the attempt", "take_attempt", err)
		}
		if !res.Taken {
			e := reason.New(reason.PasswordSourceBlocked, "too many failed sign-ins from this source for accounts it is not familiar to",
				"source", r.loc, "failures", res.Count, "source_threshold", limits.Source, "window", limits.Window.String())
			e.RetryAfter = res.RetryAfter
			return nil, e
		}
		r.source = "pw:src:" + r.loc
	}
	if err := r.Also(ctx, account); err != nil {
		r.Release(ctx)
		return nil, err
	}
	return r, nil
}

// Also counts the attempt under another account key too (the account's own name,
// when the KDC names it otherwise than the user typed it), so that every spelling of
// an account meets one count. A key already counted is not counted twice.
func (r *Reservation) Also(ctx context.Context, account string) error {
	for _, n := range r.names {
		if n == account {
			return nil
		}
	}
	l := r.l
	max := r.limits.Unfamiliar
	kind := "unfamiliar"
	if r.familiar {
		max, kind = r.limits.Familiar, "familiar"
	}
	if max < 1 {
		e := reason.New(reason.PasswordLockedOut, "sign-in from this kind of source is not allowed: the domain's lockout threshold leaves no room for it",
			"account", account, "source_kind", kind, "domain_lockout_threshold", r.limits.Domain)
		e.RetryAfter = r.limits.Window
		return e
	}
	key := l.accountKey(r.familiar, account)
	res, err := l.attempts.TakeAttempt(ctx, key, l.now(), store.AttemptLimit{Max: max, Window: r.limits.Window, Backoff: r.limits.Backoff, MaxBackoff: r.limits.MaxBackoff})
	if err != nil {
		return store.Refusal("cannot count the attempt", "take_attempt", err)
	}
	if !res.Taken {
		if res.BackingOff {
			e := reason.New(reason.PasswordBackoff, "an attempt too soon after the account's last failure",
				"account", account, "source_kind", kind, "failures", res.Count, "retry_after", res.RetryAfter.String())
			e.RetryAfter = res.RetryAfter
			return e
		}
		e := reason.New(reason.PasswordLockedOut, "the account is at kerbgate's limit of failed sign-ins for this kind of source",
			"account", account, "source_kind", kind, "failures", res.Count, "threshold", max,
			"domain_lockout_threshold", r.limits.Domain, "window", r.limits.Window.String())
		e.RetryAfter = res.RetryAfter
		return e
	}
	r.accounts = append(r.accounts, key)
	r.names = append(r.names, account)
	return nil
}

// Succeeded ends a successful sign-in: the account's count for this kind of source
// is forgotten (AD resets badPwdCount on a successful logon), the source's attempt is
// given back, and the source becomes familiar to the account for FamiliarFor. The
// other kind's count stays: a user's success does not give an attacker elsewhere
// a fresh budget.
func (r *Reservation) Succeeded(ctx context.Context) {
	l := r.l
	for _, k := range r.accounts {
		l.quiet("reset_attempts", l.attempts.ResetAttempts(ctx, k))
	}
	if r.source != "" {
		l.quiet("return_attempt", l.attempts.ReturnAttempt(ctx, r.source))
	}
	until := l.now().Add(l.cfg.FamiliarFor)
	for _, n := range r.names {
		l.quiet("put_familiar", l.attempts.PutFamiliar(ctx, familiarKey(n, r.loc), until))
	}
}

// Release gives the attempt back: it never reached AD's count (the KDC could not be
// reached, or it refused for a reason other than a bad password).
func (r *Reservation) Release(ctx context.Context) {
	for _, k := range r.accounts {
		r.l.quiet("return_attempt", r.l.attempts.ReturnAttempt(ctx, k))
	}
	if r.source != "" {
		r.l.quiet("return_attempt", r.l.attempts.ReturnAttempt(ctx, r.source))
	}
}

// ReleaseAccount gives the account's attempt back but keeps the source's: the
// KDC refused the account for a reason that is not a bad password (disabled,
// expired, password to change), which does not reach AD's badPwdCount.
func (r *Reservation) ReleaseAccount(ctx context.Context) {
	for _, k := range r.accounts {
		r.l.quiet("return_attempt", r.l.attempts.ReturnAttempt(ctx, k))
	}
}

// quiet logs a store failure after the decision: the attempt was already counted
// or answered, so it only leaves a count higher than it should be (fail closed).
func (l *Lockout) quiet(op string, err error) {
	if err != nil {
		l.log.Warn("smart lockout: store update failed", "op", op, "error", err.Error())
	}
}

// Describe is the limits in a line, for the doctor and the start-up log.
func (lm Limits) Describe() string {
	d := "the domain has no lockout threshold"
	if lm.Domain > 0 {
		d = fmt.Sprintf("the domain locks accounts out after %d bad passwords", lm.Domain)
	}
	return fmt.Sprintf("%s; kerbgate stops after %d failures from unfamiliar and %d from familiar sources within %s (back-off from %s up to %s), and after %d failures per source address",
		d, lm.Unfamiliar, lm.Familiar, lm.Window, lm.Backoff, lm.MaxBackoff, lm.Source)
}
