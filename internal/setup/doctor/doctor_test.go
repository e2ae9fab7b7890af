package doctor

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/internal/epa"
)

// Every setting the doctor checks reaches its options, typed: the KDCs it probes
// (the directory's host, then the delegation's), the delegating account, and each
// app's Negotiate sign-in and upstream SPN.
func TestDoctorOptions(t *testing.T) {
	c := &config.Config{}
	c.Listen.MaxHeaderBytes = 80 << 10
	c.Kerberos = config.Kerberos{Realm: "EXAMPLE.TEST", Keytabs: []string{"/etc/kerbgate/a.keytab", "/etc/kerbgate/b.keytab"},
		SPNs: []string{"HTTP/sso.example.test"}, Enctypes: []int32{18, 17}, ClockSkew: 3 * time.Minute, MaxTokenBytes: 64 << 10}
	c.Directory.Enabled, c.Directory.URL = true, "ldaps://dc1.example.test:636"
	c.Directory.CAFile, c.Directory.BaseDN = "/etc/kerbgate/ca.pem", "DC=example,DC=test"
	c.EPA.Policy = epa.Policy{TokenChecking: epa.Require, SPNs: []string{"HTTP/sso.example.test"}}
	c.Proxy.Delegation = config.Delegation{Keytab: "/etc/kerbgate/svc.keytab", Principal: "svc-gw", KDCs: []string{"10.0.0.5:88", "10.0.0.6:88"}}
	c.Proxy.Apps = []config.ProxyApp{
		{ID: "intranet", Host: "App.example.test", PreAuth: "iwa",
			Kerberos: &config.ProxyKerberos{SPN: "HTTP/intranet.internal", LoginIdentity: "sam_account_name"}},
		{ID: "partners", Host: "partners.example.test", PreAuth: "oidc",
			Kerberos: &config.ProxyKerberos{SPN: "HTTP/erp.internal", LoginIdentity: "upn"}},
		{ID: "open", Host: "open.example.test", PreAuth: "passthrough"},
	}
	got, err := Options(c)
	if err != nil {
		t.Fatal(err)
	}
	want := diagnose.Options{
		Realm: "EXAMPLE.TEST", Keytabs: c.Kerberos.Keytabs, SPNs: c.Kerberos.SPNs, Enctypes: []int32{18, 17},
		ClockSkew: 3 * time.Minute, MaxTokenBytes: 64 << 10, MaxHeaderBytes: 80 << 10,
		KDCs:      []string{"dc1.example.test:88", "10.0.0.5:88", "10.0.0.6:88"},
		Directory: diagnose.Directory{URL: "ldaps://dc1.example.test:636", CAFile: "/etc/kerbgate/ca.pem", BaseDN: "DC=example,DC=test"},
		EPA:       c.EPA.Policy,
		Delegation: &diagnose.Delegation{Principal: "svc-gw", Keytab: "/etc/kerbgate/svc.keytab",
			KDCs: []string{"10.0.0.5:88", "10.0.0.6:88"}},
		Apps: []diagnose.App{
			{ID: "intranet", Host: "App.example.test", IWA: true, UpstreamSPN: "HTTP/intranet.internal"},
			{ID: "partners", Host: "partners.example.test", UpstreamSPN: "HTTP/erp.internal"},
			{ID: "open", Host: "open.example.test"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("options\n got %+v\nwant %+v", got, want)
	}
	if h := diagnose.PolicyHosts(got); !reflect.DeepEqual(h, []string{"sso.example.test", "app.example.test"}) {
		t.Errorf("browser policy hosts %v", h)
	}
}

// Without a directory or a proxy section there is nothing to probe by default, no
// delegation to dry-run and no app.
func TestDoctorOptionsMinimal(t *testing.T) {
	c := &config.Config{}
	c.Kerberos.Realm, c.Kerberos.SPNs = "EXAMPLE.TEST", []string{"HTTP/sso.example.test"}
	o, err := Options(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.KDCs != nil || o.Delegation != nil || o.Apps != nil || o.Directory != (diagnose.Directory{}) || o.Realm != "EXAMPLE.TEST" {
		t.Fatalf("options %+v", o)
	}
	c.Proxy.Delegation.KDCs = []string{"10.0.0.5:88"} // no principal: no delegation, but a KDC
	if o, _ := Options(c); o.Delegation != nil || !reflect.DeepEqual(o.KDCs, []string{"10.0.0.5:88"}) {
		t.Errorf("kdcs without a principal: %+v", o)
	}
}

// A policy config would have refused is refused here too, as serve's EPA does.
func TestDoctorOptionsInvalidEPA(t *testing.T) {
	c := &config.Config{}
	c.EPA.Policy = epa.Policy{TokenChecking: epa.Allow, Flags: epa.ProxyCohosting}
	if _, err := Options(c); err == nil || !strings.HasPrefix(err.Error(), "epa: ") {
		t.Fatalf("invalid policy: %v", err)
	}
}
