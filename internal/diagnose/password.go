package diagnose

import (
	"context"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/pwsignin"
)

// Password is the password fallback the doctor checks (password_signin).
type Password struct {
	// Logon is kerbgate's own account, the KDCs and the service users' tickets
	// are for (password_signin.principal, kdcs, spn, fast); KeytabFile holds the
	// account's keys (password_signin.keytab).
	Logon      logon.Config
	KeytabFile string
	// Lockout is password_signin.lockout.
	Lockout pwsignin.LockoutConfig
}

// CheckPassword reports the domain's lockout policy beside the smart lockout
// limits kerbgate derives from it (lockout_policy), and whether kerbgate's own
// account gets its TGT and the KDC offers FAST to armour the users' exchanges
// (password_fast).
func CheckPassword(ctx context.Context, env *Env) []Finding {
	p := env.Options.Password
	var out []Finding
	domain := pwsignin.DomainPolicy{Threshold: p.Lockout.DomainThreshold}
	source := "password_signin.lockout.domain_threshold"
	if env.Dir != nil {
		lp, err := env.Dir.LockoutPolicy(ctx)
		if err != nil {
			out = append(out, Finding{Status: Fail, Check: "lockout_policy", Subject: "domain",
				Message: "the domain's lockout policy cannot be read; password sign-ins are refused until it can",
				Facts:   map[string]any{"error": err.Error()}, Fix: "check the directory section: the bind account must read the domain object (lockoutThreshold)"})
			domain.Threshold = -1
		} else {
			domain, source = pwsignin.DomainPolicy{Threshold: lp.Threshold, ObservationWindow: lp.ObservationWindow}, "the domain object"
			if p.Lockout.DomainThreshold >= 0 && p.Lockout.DomainThreshold != lp.Threshold {
				out = append(out, Finding{Status: Warn, Check: "lockout_policy", Subject: "password_signin.lockout.domain_threshold",
					Message: fmt.Sprintf("is %d, but the domain's lockoutThreshold is %d; kerbgate uses the domain's", p.Lockout.DomainThreshold, lp.Threshold),
					Fix:     "remove password_signin.lockout.domain_threshold (the directory gives it)"})
			}
		}
	}
	if domain.Threshold >= 0 {
		lim := pwsignin.DeriveLimits(domain, p.Lockout)
		f := Finding{Status: OK, Check: "lockout_policy", Subject: "domain", Message: lim.Describe(),
			Facts: map[string]any{"domain_lockout_threshold": domain.Threshold, "domain_observation_window": domain.ObservationWindow.String(),
				"from": source, "unfamiliar_threshold": lim.Unfamiliar, "familiar_threshold": lim.Familiar,
				"source_threshold": lim.Source, "window": lim.Window.String()}}
		switch {
		case lim.Clamped:
			f.Status = Warn
			f.Fix = "lower password_signin.lockout.unfamiliar_threshold and familiar_threshold: together they must stay below the domain's lockoutThreshold (kerbgate lowered them)"
		case domain.Threshold > 0 && lim.Unfamiliar == 0:
			f.Status = Warn
			f.Fix = "the domain's lockoutThreshold leaves no room for attempts from unfamiliar addresses: raise it (5 or more) if users sign in with passwords from new places"
		case domain.Threshold == 0:
			f.Status = Warn
			f.Fix = "the domain locks no account out: kerbgate's smart lockout is the only brake on password guessing; consider a lockoutThreshold (Default Domain Policy)"
		}
		out = append(out, f)
	}

	kt, err := keytab.Load(p.KeytabFile)
	if err != nil {
		return append(out, Finding{Status: Fail, Check: "password_fast", Subject: p.KeytabFile, Message: "the keytab of password_signin cannot be read",
			Facts: map[string]any{"error": err.Error()}, Fix: "export the account's own keys to password_signin.keytab"})
	}
	lc := p.Logon
	lc.Keytab, lc.Now = kt, env.Now
	c, err := logon.New(lc)
	if err != nil {
		return append(out, Finding{Status: Fail, Check: "password_fast", Subject: lc.Principal, Message: err.Error()})
	}
	offered, err := c.FASTOffered(ctx)
	switch {
	case err != nil:
		out = append(out, Finding{Status: Fail, Check: "password_fast", Subject: lc.Principal,
			Message: "kerbgate's own account cannot get its TGT, the armour of password sign-ins", Facts: map[string]any{"error": err.Error()},
			Fix: "check password_signin.principal, keytab (current kvno) and kdcs"})
	case !offered && lc.FAST == logon.FASTRequired:
		out = append(out, Finding{Status: Fail, Check: "password_fast", Subject: lc.Principal,
			Message: "the KDC does not offer FAST and password_signin.fast is required: every password sign-in is refused",
			Fix:     "enable Kerberos armoring on the domain controllers, or set password_signin.fast: auto"})
	case !offered:
		out = append(out, Finding{Status: Warn, Check: "password_fast", Subject: lc.Principal,
			Message: "the KDC does not offer FAST: passwords are proven with an unarmoured encrypted timestamp, which an eavesdropper on the way to the KDC can guess offline",
			Fix:     "enable \"KDC support for claims, compound authentication and Kerberos armoring\" on the domain controllers"})
	default:
		out = append(out, Finding{Status: OK, Check: "password_fast", Subject: lc.Principal,
			Message: "kerbgate's account gets its TGT and the KDC offers FAST: users' password exchanges are armoured"})
	}
	return out
}
