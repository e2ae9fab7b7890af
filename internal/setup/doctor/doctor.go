// Package doctor is the part of the translation layer (internal/setup) that serves
// `kerbgate doctor`: it turns the configuration into diagnose.Options.
//
// It is a package of its own so that `kerbgate serve`, which imports setup, does not
// pull in the doctor's KDC, DNS and delegation probes (internal/diagnose). Like setup,
// it owns the translation only: it checks nothing config has not checked at load.
package doctor

import (
	"net"
	"net/url"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/internal/setup"
)

// Options returns the settings `kerbgate doctor` checks: the kerberos section, the
// token and header bounds, the directory section's URL, CA file and base DN, the
// EPA policy, the delegating account and the published apps. The KDCs it probes
// are the directory's host on port 88, then proxy.delegation.kdcs. The directory
// client (Directory), the test user and any KDC named on the command line are the
// caller's.
func Options(cfg *config.Config) (diagnose.Options, error) {
	policy, err := setup.EPA(cfg)
	if err != nil {
		return diagnose.Options{}, err
	}
	k := cfg.Kerberos
	o := diagnose.Options{
		Realm: k.Realm, Keytabs: k.Keytabs, SPNs: k.SPNs, Enctypes: k.Enctypes, ClockSkew: k.ClockSkew,
		MaxTokenBytes: k.MaxTokenBytes, MaxHeaderBytes: cfg.Listen.MaxHeaderBytes,
		EPA: policy,
	}
	if d := cfg.Directory; d.Enabled {
		o.Directory = diagnose.Directory{URL: d.URL, CAFile: d.CAFile, BaseDN: d.BaseDN}
		if u, err := url.Parse(d.URL); err == nil {
			o.KDCs = append(o.KDCs, net.JoinHostPort(u.Hostname(), "88"))
		}
	}
	if d := cfg.Proxy.Delegation; d.Principal != "" {
		o.Delegation = &diagnose.Delegation{Principal: d.Principal, Keytab: d.Keytab, KDCs: d.KDCs}
	}
	o.KDCs = append(o.KDCs, cfg.Proxy.Delegation.KDCs...)
	pp, err := setup.Password(cfg)
	if err != nil {
		return diagnose.Options{}, err
	}
	if pp != nil {
		o.Password = &diagnose.Password{Logon: pp.Logon, KeytabFile: pp.KeytabFile, Lockout: pp.Lockout}
	}
	for _, a := range cfg.Proxy.Apps {
		app := diagnose.App{ID: a.ID, Host: a.Host, IWA: a.PreAuth == "iwa"}
		if a.Kerberos != nil {
			app.UpstreamSPN = a.Kerberos.SPN
		}
		o.Apps = append(o.Apps, app)
	}
	return o, nil
}
