package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/pwsignin"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// password makes the password fallback of password_signin: the KDC client (armoured
// with kerbgate's own TGT), smart lockout over the store and the domain's policy
// read from the directory, the checker on the acceptor, and the service that hands
// each face its pre-authenticator.
func (b *builder) password() error {
	p := b.plan.Password
	if p == nil {
		return nil
	}
	kt, err := keytab.Load(p.KeytabFile)
	if err != nil {
		return fmt.Errorf("password_signin.keytab: %w", err)
	}
	lc := p.Logon
	lc.Keytab, lc.Now = kt, b.opts.Now
	client, err := logon.New(lc)
	if err != nil {
		return err
	}
	attempts, ok := b.st.(store.Attempts)
	if !ok {
		return fmt.Errorf("password_signin: the store keeps no attempt counts")
	}
	var policy func(context.Context) (pwsignin.DomainPolicy, error)
	if d := b.dirImpl; d != nil {
		policy = func(ctx context.Context) (pwsignin.DomainPolicy, error) {
			lp, err := d.LockoutPolicy(ctx)
			return pwsignin.DomainPolicy{Threshold: lp.Threshold, ObservationWindow: lp.ObservationWindow}, err
		}
	}
	lockout := pwsignin.NewLockout(attempts, p.Lockout, policy, b.opts.Now, b.log)
	co := p.Checker
	co.Logon, co.Acceptor, co.Lockout, co.Registerer, co.Log, co.Now = client, b.acc, lockout, b.reg, b.log, b.opts.Now
	checker, err := pwsignin.NewChecker(co)
	if err != nil {
		return err
	}
	b.pw, err = pwsignin.NewService(pwsignin.Options{Checker: checker, CookieKeys: b.cookieKeys, Reporter: b.rep, Log: b.log,
		Default: p.Default, Apps: p.Apps, PasswordChangeURL: p.PasswordChangeURL, Domain: p.Domain})
	if err != nil {
		return err
	}
	// What the KDC and the domain say at start-up is logged, not fatal: the
	// sign-in refuses with its reason while they cannot answer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fast, err := client.FASTOffered(ctx)
	switch {
	case err != nil:
		b.log.Error("password sign-in: cannot get kerbgate's own TGT (the FAST armor); password sign-ins are refused until the KDC answers",
			"principal", lc.Principal, "kdcs", lc.KDCs, "error", err.Error())
	case !fast:
		b.log.Warn("password sign-in: the KDC does not offer FAST; passwords are proven with an unarmoured encrypted timestamp", "fast", lc.FAST.String())
	default:
		b.log.Info("password sign-in: the KDC offers FAST; users' exchanges are armoured", "principal", lc.Principal)
	}
	if lim, err := lockout.Limits(ctx); err != nil {
		b.log.Error("password sign-in: cannot read the domain's lockout policy; password sign-ins are refused until it can be read", "error", err.Error())
	} else {
		b.log.Info("password sign-in: smart lockout", "limits", lim.Describe())
	}
	return nil
}

// preAuth is the pre-authenticator of a face's scope ("sso", "sso:ID", "proxy:ID",
// "oidc", "forward-auth", "whoami"): Negotiate, with the password fallback when
// configured.
func (b *builder) preAuth(scope string, negotiate signin.PreAuthenticator) signin.PreAuthenticator {
	if b.pw == nil {
		return negotiate
	}
	return b.pw.For(scope, negotiate)
}

// whoami is GET /whoami: behind the Negotiate middleware, or with the password
// fallback, a session of its own so that the form's sign-in holds.
func (b *builder) whoami() http.Handler {
	if b.pw == nil {
		return b.signInMW(signin.WhoAmI(b.dir, b.log))
	}
	sessions := signin.NewSessions(signin.Sessions{Store: b.st, Keys: b.cookieKeys, Purpose: "kerbgate-whoami-session",
		CookieName: "kerbgate_whoami", Now: b.opts.Now})
	return signin.WhoAmISession(b.preAuth("whoami", signin.Negotiate{Middleware: b.signInMW}), sessions, b.dir, b.log,
		func(w http.ResponseWriter, r *http.Request, err error) { b.rep.Refuse(w, r, reason.Of(err)) })
}

// pw is the password fallback's checker, for tests; nil without password_signin.
func (s *Server) pw() *pwsignin.Checker {
	if s.password == nil {
		return nil
	}
	return s.password.Checker()
}
