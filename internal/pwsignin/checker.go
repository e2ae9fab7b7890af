package pwsignin

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/clientauth"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// AuthMethod is the identity's AuthMethod after a password sign-in: RFC 8176's
// "pwd", which an OpenID Provider puts in amr.
const AuthMethod = "pwd"

// Acceptor verifies the AP-REQ made from the ticket the password check yields (the
// *acceptor.Acceptor the Negotiate middleware uses, so that the identity is the one
// a Negotiate sign-in gives).
type Acceptor interface {
	Accept(ctx context.Context, apReq []byte) (*acceptor.Result, error)
}

// CheckerOptions configure a Checker.
type CheckerOptions struct {
	Logon    *logon.Client
	Acceptor Acceptor
	Lockout  *Lockout
	Names    Names
	// RateBurst and RateRefill limit the attempts of one source address on this
	// node (in memory, before the store or the KDC is asked): RateBurst in a row,
	// one more every RateRefill. 20 and 1s by default.
	RateBurst  int
	RateRefill time.Duration
	// MaxConcurrent bounds the checks at the KDC at once (64 by default, at least
	// GOMAXPROCS*8); more are answered password_busy at once.
	MaxConcurrent int
	// MinAnswer is the least time a failed check takes, so that an unknown user
	// (one KDC exchange) looks like a wrong password (two and a key derivation).
	// 300ms by default.
	MinAnswer time.Duration
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Checker checks user names and passwords. It is safe for concurrent use.
type Checker struct {
	o       CheckerOptions
	sources *clientauth.Limiter
	slots   chan struct{}

	checks   *prometheus.CounterVec
	inFlight prometheus.Gauge
}

// NewChecker returns a Checker.
func NewChecker(o CheckerOptions) (*Checker, error) {
	if o.Logon == nil || o.Acceptor == nil || o.Lockout == nil || o.Names.Realm == "" {
		return nil, errors.New("pwsignin: Logon, Acceptor, Lockout and the realm are required")
	}
	if o.RateBurst <= 0 {
		o.RateBurst = 20
	}
	if o.RateRefill <= 0 {
		o.RateRefill = time.Second
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = max(64, 8*runtime.GOMAXPROCS(0))
	}
	if o.MinAnswer <= 0 {
		o.MinAnswer = 300 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Checker{o: o, sources: clientauth.NewLimiter(o.RateBurst, o.RateRefill, 0), slots: make(chan struct{}, o.MaxConcurrent)}
	c.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_password_signins_total", Help: "Password sign-ins (form and Basic), by result: ok or the reason code.",
	}, []string{"result"})
	c.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kerbgate_password_checks_in_flight", Help: "Password checks waiting for the KDC.",
	})
	if o.Registerer != nil {
		for _, col := range []prometheus.Collector{c.checks, c.inFlight} {
			if err := o.Registerer.Register(col); err != nil {
				return nil, err
			}
		}
		for _, m := range []struct {
			kind string
			get  func(logon.Stats) uint64
		}{
			{"as", func(s logon.Stats) uint64 { return s.ASExchanges }},
			{"tgs", func(s logon.Stats) uint64 { return s.TGSExchanges }},
			{"armor", func(s logon.Stats) uint64 { return s.ArmorExchanges }},
		} {
			get := m.get
			if err := o.Registerer.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "kerbgate_password_kdc_requests_total", Help: "Requests the password sign-in sent to the KDC, by kind (as: users' AS exchanges; tgs: their service tickets; armor: kerbgate's own TGT).",
				ConstLabels: prometheus.Labels{"kind": m.kind},
			}, func() float64 { return float64(get(o.Logon.Stats())) })); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// Sources is the number of source addresses the rate limit remembers (bounded).
func (c *Checker) Sources() int { return c.sources.Len() }

// Check checks name and password for a client at src and returns the identity the
// KDC's ticket carries, as a Negotiate sign-in would, with AuthMethod "pwd".
// Refusals are *reason.Error; the password never appears in one.
func (c *Checker) Check(ctx context.Context, name, password string, src netip.Addr) (*identity.Identity, error) {
	id, err := c.check(ctx, name, password, src)
	result := "ok"
	if err != nil {
		result = string(reason.Of(err).Code)
	}
	c.checks.WithLabelValues(result).Inc()
	return id, err
}

func (c *Checker) check(ctx context.Context, name, password string, src netip.Addr) (*identity.Identity, error) {
	if w := c.sources.Take(c.o.Now(), "src:"+location(src)); w > 0 {
		e := reason.New(reason.PasswordSourceBlocked, "too many password sign-in attempts from this source on this node",
			"source", location(src), "burst", c.o.RateBurst, "refill", c.o.RateRefill.String())
		e.RetryAfter = w
		return nil, e
	}
	n, err := c.o.Names.Parse(name)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	// Smart lockout first: a flood against locked accounts is answered from the
	// store and never waits for a slot at the KDC.
	res, err := c.o.Lockout.Reserve(ctx, n.Key, src)
	if err != nil {
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	default:
		res.Release(ctx)
		e := reason.New(reason.PasswordBusy, "password checks at their bound", "max_concurrent", c.o.MaxConcurrent)
		e.RetryAfter = time.Second
		return nil, e
	}
	c.inFlight.Inc()
	defer func() { c.inFlight.Dec(); <-c.slots }()
	start := time.Now()
	id, account, err := c.exchange(ctx, n, password, res)
	if err == nil {
		res.Succeeded(ctx)
		c.o.Log.Info("password sign-in", "user", id.Principal, "typed", truncate(name, 64), "source", location(src),
			"familiar", res.Familiar(), "armored", account.Armored)
		return id, nil
	}
	e := reason.Of(err)
	switch e.Code {
	case reason.PasswordWrong, reason.UserLocked, reason.PasswordLockedOut, reason.PasswordBackoff:
		// A bad password (or an unknown user: the same to the person), or an account
		// AD already locked: the attempt counts.
	case reason.UserDisabled, reason.UserExpired, reason.UserRestricted, reason.PasswordExpired, reason.PasswordMustChange:
		// The password was right (the KDC checks it first): AD's badPwdCount did
		// not move; the source's attempt stays counted.
		res.ReleaseAccount(ctx)
	default:
		// The KDC was not reached or failed: nothing to count.
		res.Release(ctx)
	}
	e.Facts = append(e.Facts, slog.String("source", location(src)), slog.Bool("familiar", res.Familiar()))
	c.pad(ctx, start)
	return nil, e
}

// exchange runs the two AS exchanges and the acceptor's check. account is the
// started attempt (nil when Begin failed).
func (c *Checker) exchange(ctx context.Context, n Name, password string, res *Reservation) (*identity.Identity, *logon.Attempt, error) {
	a, err := c.o.Logon.Begin(ctx, n.User)
	if err != nil {
		return nil, nil, err
	}
	if a.Account != "" {
		// The KDC named the account: count the attempt under its own name too, so
		// that typing it another way does not buy a fresh budget.
		if err := res.Also(ctx, c.o.Names.AccountKey(a.Account)); err != nil {
			return nil, a, err
		}
	}
	r, err := a.Password(ctx, password)
	if err != nil {
		return nil, a, err
	}
	id, err := c.accept(ctx, r.Credential)
	return id, a, err
}

// accept verifies the service ticket as the Negotiate middleware verifies a
// browser's: same acceptor, same keys, same PAC checks.
func (c *Checker) accept(ctx context.Context, cred *initiator.Credential) (*identity.Identity, error) {
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot make the AP-REQ of the password sign-in", "error", err.Error())
	}
	res, err := c.o.Acceptor.Accept(ctx, ap)
	if err != nil {
		return nil, err
	}
	id := res.Identity
	id.AuthMethod = AuthMethod
	return &id, nil
}

// pad waits until MinAnswer has passed since start, or the request ends.
func (c *Checker) pad(ctx context.Context, start time.Time) {
	wait := c.o.MinAnswer - time.Since(start)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// checkPassword refuses an empty, oversized or NUL-holding password before any
// work: AD passwords are at most 256 characters, and a NUL is in none.
func checkPassword(p string) error {
	switch {
	case p == "":
		return reason.New(reason.PasswordFormInvalid, "empty password", "field", "password")
	case len(p) > 4*MaxPasswordChars || utf8.RuneCountInString(p) > MaxPasswordChars:
		return reason.New(reason.PasswordFormInvalid, "password too long", "field", "password", "max_chars", MaxPasswordChars)
	case !utf8.ValidString(p):
		return reason.New(reason.PasswordFormInvalid, "password is not UTF-8", "field", "password")
	case strings.IndexByte(p, 0) >= 0:
		return reason.New(reason.PasswordFormInvalid, "password holds a NUL", "field", "password")
	}
	return nil
}
