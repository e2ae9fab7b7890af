package setup

import (
	"fmt"
	"strings"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/pwsignin"
)

// PasswordPlan is the password_signin section, typed; nil without one. What runs
// (the keytab's keys, the acceptor, the store, the directory, the cookie keys, the
// reporter) is the caller's.
type PasswordPlan struct {
	// KeytabFile holds the keys of Logon.Principal; the caller loads Logon.Keytab.
	KeytabFile string
	Logon      logon.Config
	Lockout    pwsignin.LockoutConfig
	// Checker's Logon, Acceptor, Lockout, Registerer, Log and Now are the caller's.
	Checker pwsignin.CheckerOptions
	// Default is the listener's policy; Apps are the apps' own, by scope
	// ("sso:ID", "proxy:ID").
	Default           pwsignin.Policy
	Apps              map[string]pwsignin.Policy
	PasswordChangeURL string
	// Domain names the accounts on the form.
	Domain string
}

// Password translates the password_signin section and the apps' challenge and
// basic_auth; nil without the section.
func Password(c *config.Config) (*PasswordPlan, error) {
	ps := c.PasswordSignIn
	if !ps.Enabled {
		return nil, nil
	}
	fast := logon.FASTAuto
	if ps.FAST == "required" {
		fast = logon.FASTRequired
	}
	names := pwsignin.Names{Realm: c.Kerberos.Realm, NetBIOS: ps.NetBIOSDomain, UPNSuffixes: ps.UPNSuffixes}
	domain := ps.NetBIOSDomain
	if domain == "" {
		domain, _, _ = strings.Cut(c.Kerberos.Realm, ".")
	}
	p := &PasswordPlan{
		KeytabFile: ps.Keytab,
		Logon:      logon.Config{Realm: c.Kerberos.Realm, KDCs: ps.KDCs, Principal: ps.Principal, ServiceSPN: ps.SPN, FAST: fast},
		Lockout: pwsignin.LockoutConfig{
			UnfamiliarThreshold: ps.Lockout.UnfamiliarThreshold, FamiliarThreshold: ps.Lockout.FamiliarThreshold,
			DomainThreshold: ps.Lockout.DomainThreshold, Window: ps.Lockout.Window, Backoff: ps.Lockout.Backoff,
			MaxBackoff: ps.Lockout.MaxBackoff, SourceThreshold: ps.Lockout.SourceThreshold, FamiliarFor: ps.Lockout.FamiliarFor,
		},
		Checker: pwsignin.CheckerOptions{Names: names, RateBurst: ps.RateBurst, RateRefill: ps.RateRefill,
			MaxConcurrent: ps.MaxConcurrent, MinAnswer: ps.MinAnswerTime},
		Apps:              map[string]pwsignin.Policy{},
		PasswordChangeURL: ps.PasswordChangeURL,
		Domain:            domain,
	}
	var err error
	if p.Default.Rules, err = Challenge(ps.Challenge); err != nil {
		return nil, fmt.Errorf("password_signin.challenge: %w", err)
	}
	for _, a := range c.SSO.Apps {
		if a.Challenge.Set || a.BasicAuth {
			pol := pwsignin.Policy{Rules: p.Default.Rules, Basic: a.BasicAuth}
			if a.Challenge.Set {
				if pol.Rules, err = Challenge(a.Challenge); err != nil {
					return nil, fmt.Errorf("sso.apps %s: challenge: %w", a.ID, err)
				}
			}
			p.Apps["sso:"+a.ID] = pol
		}
	}
	for _, a := range c.Proxy.Apps {
		if a.Challenge.Set || a.BasicAuth {
			pol := pwsignin.Policy{Rules: p.Default.Rules, Basic: a.BasicAuth}
			if a.Challenge.Set {
				if pol.Rules, err = Challenge(a.Challenge); err != nil {
					return nil, fmt.Errorf("proxy.apps %s: challenge: %w", a.ID, err)
				}
			}
			p.Apps["proxy:"+a.ID] = pol
		}
	}
	return p, nil
}

// Challenge translates a challenge section into rules; the built-in default rules
// when the file gives none.
func Challenge(c config.Challenge) (pwsignin.Rules, error) {
	if !c.Set {
		return pwsignin.DefaultRules(), nil
	}
	def, ok := pwsignin.ParseChallenge(c.Default)
	if !ok {
		return pwsignin.Rules{}, fmt.Errorf("default %q", c.Default)
	}
	rs := pwsignin.Rules{Default: def}
	for i, r := range c.Rules {
		ch, ok := pwsignin.ParseChallenge(r.Challenge)
		if !ok {
			return pwsignin.Rules{}, fmt.Errorf("rules[%d].challenge %q", i, r.Challenge)
		}
		rule := pwsignin.Rule{Sources: r.Sources, Challenge: ch}
		for _, s := range r.UserAgents {
			ua, err := pwsignin.ParseUserAgent(s)
			if err != nil {
				return pwsignin.Rules{}, fmt.Errorf("rules[%d].user_agents: %w", i, err)
			}
			rule.UserAgents = append(rule.UserAgents, ua)
		}
		rs.Rules = append(rs.Rules, rule)
	}
	return rs, nil
}
