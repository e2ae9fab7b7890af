package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
)

// TLS is the optional tls section: kerbgate terminates TLS itself.
type TLS struct {
	// Enabled is true when the file has a tls section.
	Enabled bool
	// CertFile and KeyFile are absolute paths of the PEM certificate (chain) and key.
	CertFile, KeyFile string
	// ReloadInterval is how often the files are checked for changes; 5s by default,
	// 0 turns reloading off.
	ReloadInterval time.Duration
}

const defaultTLSReload = 5 * time.Second

func decodeTLS(m *mapping, c *Config) {
	if m.broken || len(m.order) == 0 {
		return
	}
	t := &c.TLS
	t.Enabled = true
	t.ReloadInterval = defaultTLSReload
	certOK, keyOK := false, false
	if f := m.field("cert", "a PEM file with the server certificate (and its chain)"); f.required() {
		if s, ok := f.str(); ok {
			abs, shown := resolvedPath(f, s)
			if checkReadable(f, abs, shown, f.expect) {
				t.CertFile, certOK = abs, true
			}
		}
	}
	keyField := m.field("key", "a PEM file with the certificate's private key, readable by kerbgate only")
	if keyField.required() {
		if s, ok := keyField.str(); ok {
			abs, shown := resolvedPath(keyField, s)
			if checkReadable(keyField, abs, shown, keyField.expect) {
				t.KeyFile, keyOK = abs, true
			}
		}
	}
	if f := m.field("reload_interval", "a duration like 5s (0 turns reloading off), at most 1h"); f.set() {
		if v, ok := f.durationIn(0, time.Hour); ok {
			t.ReloadInterval = v
		}
	}
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			keyField.errorf("the certificate and key do not load as a pair: %v; expected the private key of tls.cert's first certificate", err).Err = err
		}
	}
}

// EPA is the epa section: Extended Protection for Authentication, with IIS's names.
type EPA struct {
	Policy epa.Policy
	// ChannelBindingCertificates are the absolute paths the load balancer's
	// certificates were read from (their bindings are in Policy.ProxyBindings).
	ChannelBindingCertificates []string
}

func decodeEPA(m *mapping, c *Config) {
	p := &c.EPA.Policy

	f := m.field("token_checking", "None, Allow or Require (IIS's extendedProtection tokenChecking)")
	if s, ok := f.str(); ok {
		switch strings.ToLower(s) {
		case "none":
			p.TokenChecking = epa.None
		case "allow":
			p.TokenChecking = epa.Allow
		case "require":
			p.TokenChecking = epa.Require
		default:
			f.invalid("%s is not a token checking mode", describe(f.val))
		}
	}

	f = m.field("flags", "a list of IIS extendedProtection flags: None, Proxy, NoServiceNameCheck, AllowDotlessSpn, ProxyCohosting")
	if names, items := f.strings(f.expect); names != nil {
		none := false
		for i, n := range names {
			switch flag, ok := flagByName(n); {
			case strings.EqualFold(n, "None"):
				none = true
			case ok:
				p.Flags |= flag
			default:
				items[i].invalid("%s is not a flag", describe(items[i].val))
			}
		}
		if none && p.Flags != 0 {
			f.invalid("None together with other flags")
		}
	}

	spnField := m.field("spns", "a list of service names clients may target, like \"HTTP/sso.example.test\" (kerberos.spns by default)")
	if spns, items := spnField.strings(spnField.expect); spns != nil {
		for i, s := range spns {
			if service, host, ok := strings.Cut(s, "/"); !ok || service == "" || host == "" {
				items[i].invalid("%s is not service/host", describe(items[i].val))
				continue
			}
			p.SPNs = append(p.SPNs, s)
		}
	}

	f = m.field("channel_binding_certificates", "a list of PEM certificate files: the certificates a TLS-terminating load balancer presents to clients")
	if files, items := f.strings(f.expect); files != nil {
		for i, s := range files {
			it := items[i]
			abs, shown := resolvedPath(it, s)
			if !checkReadable(it, abs, shown, it.expect) {
				continue
			}
			certs, err := readCertificates(abs)
			if err != nil {
				it.errorf("%s: %v; expected %s", shown, err, it.expect)
				continue
			}
			for _, cert := range certs[:1] { // the leaf is what clients bind to
				b, err := epa.ServerEndPoint(cert)
				if err != nil {
					it.errorf("%s: %v", shown, err)
					continue
				}
				p.ProxyBindings = append(p.ProxyBindings, b)
			}
			c.EPA.ChannelBindingCertificates = append(c.EPA.ChannelBindingCertificates, abs)
		}
	}
}

func flagByName(n string) (epa.Flags, bool) {
	for _, f := range epa.FlagNames {
		if strings.EqualFold(f.Name, n) {
			return f.Flag, true
		}
	}
	return 0, false
}

func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errNoCertificate
	}
	return certs, nil
}

type configError string

func (e configError) Error() string { return string(e) }

const errNoCertificate = configError("no PEM CERTIFICATE block")

// finishEPA applies kerberos.spns as the default service names and checks the
// policy as a whole against the rest of the file.
func finishEPA(d *decoder, c *Config) {
	p := &c.EPA.Policy
	if len(p.SPNs) == 0 {
		p.SPNs = append([]string(nil), c.Kerberos.SPNs...)
	} else {
		for _, s := range p.SPNs {
			found := false
			for _, k := range c.Kerberos.SPNs {
				if strings.EqualFold(k, s) {
					found = true
				}
			}
			if !found {
				d.errorAt("epa.spns", top, "%s is not in kerberos.spns, so tickets for it are refused before service binding; expected a subset of kerberos.spns", s)
			}
		}
	}
	if err := p.Validate(); err != nil {
		d.errorAt("epa.flags", top, "%v", err)
	}
	if c.TLS.CertFile != "" && p.TokenChecking != epa.None {
		if certs, err := readCertificates(c.TLS.CertFile); err == nil {
			if _, err := epa.ServerEndPoint(certs[0]); err != nil {
				d.errorAt("tls.cert", top, "%v (epa.token_checking is %s)", err, p.TokenChecking)
			}
		}
	}
	if p.TokenChecking == epa.Require && !c.TLS.Enabled && len(p.ProxyBindings) == 0 && p.Flags&epa.Proxy == 0 {
		d.errorAt("epa.token_checking", top,
			"Require with no channel to bind to refuses every sign-in; expected a tls section, epa.channel_binding_certificates (TLS-terminating load balancer), or epa.flags Proxy (service binding)")
	}
}
