package setup

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/epa"
)

// NewPlan carries every value package server reads, and leaves what runs to it.
func TestNewPlan(t *testing.T) {
	ext, _ := url.Parse("https://sso.example.test")
	c := &config.Config{}
	c.Listen = config.Listen{ReadHeaderTimeout: 7 * time.Second, MaxHeaderBytes: 1234, ExternalURL: ext,
		DrainDelay: 3 * time.Second, ShutdownTimeout: 20 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	c.Log.ExposeReasons, c.Log.DebugTokenFile = true, "/etc/kerbgate/debug.token"
	c.Kerberos = config.Kerberos{Realm: "EXAMPLE.TEST", SPNs: []string{"HTTP/sso.example.test"}, Keytabs: []string{"/etc/kerbgate/a.keytab"},
		RetainOldKeys: time.Hour, KeytabReloadInterval: time.Minute, MaxTokenBytes: 4096, ClockSkew: 5 * time.Minute, SPNCheck: "fail"}
	c.Store.Path = "/var/lib/kerbgate/kg.db"
	c.TLS = config.TLS{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem", ReloadInterval: time.Hour}
	c.EPA.Policy = epa.Policy{TokenChecking: epa.Require, SPNs: []string{"HTTP/sso.example.test"}}
	p, err := NewPlan(c)
	if err != nil {
		t.Fatal(err)
	}
	if !p.ExposeReasons || p.MaxTokenBytes != 4096 || p.DebugTokenFile != c.Log.DebugTokenFile ||
		p.Listen != (Listen{ReadHeaderTimeout: 7 * time.Second, MaxHeaderBytes: 1234, DrainDelay: 3 * time.Second, ShutdownTimeout: 20 * time.Second}) ||
		p.Frontend.ExternalURL != ext || len(p.Frontend.TrustedProxies) != 1 {
		t.Errorf("plan %+v", p)
	}
	if k := p.Keytabs; len(k.Paths) != 1 || k.Retain != time.Hour || k.ReloadInterval != time.Minute {
		t.Errorf("keytabs %+v", k)
	}
	if w := p.Keytabs.Watcher(nil); len(w.Paths) != 1 || w.Retain != time.Hour {
		t.Errorf("watcher %+v", w)
	}
	if a := p.Acceptor; a.Realm != "EXAMPLE.TEST" || len(a.SPNs) != 1 || a.ClockSkew != 5*time.Minute || a.Keyring != nil || a.Replay != nil {
		t.Errorf("acceptor %+v", a)
	}
	if p.TLS == nil || p.TLS.CertFile != "c.pem" || p.EPA.TokenChecking != epa.Require || p.SPNCheck.EPA.TokenChecking != epa.Require {
		t.Errorf("tls %+v, epa %+v", p.TLS, p.EPA)
	}
	if p.Directory != nil || p.Store.Path != c.Store.Path || !p.CookieKeys.Create || p.Proxy.Delegation != nil {
		t.Errorf("plan %+v", p)
	}

	// What setup refuses, NewPlan refuses.
	c.EPA.Policy.SPNs = []string{"HTTP/sso"}
	if _, err := NewPlan(c); err == nil || !strings.Contains(err.Error(), "AllowDotlessSpn") {
		t.Errorf("dotless epa spn: %v", err)
	}
}
