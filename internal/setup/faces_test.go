package setup

import (
	"net/url"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/signin"
)

// The configuration file's words become the faces' enums, and each app its
// pre-authenticator and group policy.
func TestProxyOptionsAreTyped(t *testing.T) {
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "s")
	up, _ := url.Parse("http://intranet.internal:8080")
	c := &config.Config{}
	c.Kerberos.Realm = "EXAMPLE.TEST"
	c.Proxy.CookieName, c.Proxy.SessionTTL = "kg_proxy", time.Hour
	c.Proxy.Apps = []config.ProxyApp{
		{ID: "iwa", Host: "a.example.test", PathPrefix: "/", Upstream: up, PreAuth: "iwa", AllowedGroups: []string{"S-1-5-32-544"},
			Kerberos: &config.ProxyKerberos{SPN: "HTTP/intranet.internal", LoginIdentity: "alternate_upn_user_part",
				AlternateUPNAttribute: "extensionAttribute1", TokenFormat: "kerberos", Send: "on_401", MaxReplayBody: 10}},
		{ID: "oidc", Host: "a.example.test", PathPrefix: "/o/", Upstream: up, PreAuth: "oidc",
			OIDC: &config.ProxyOIDC{Issuer: "https://login.example.com", ClientID: "kerbgate", ClientSecretEnv: "KERBGATE_TEST_OIDC_SECRET"}},
		{ID: "open", Host: "b.example.test", PathPrefix: "/", Upstream: up, PreAuth: "passthrough"},
	}
	c.Proxy.Delegation = config.Delegation{Keytab: "/etc/kerbgate/svc-gw.keytab", Principal: "svc-gw", KDCs: []string{"dc1:88"}, TicketCacheSize: 7}
	iwa := signin.Negotiate{}
	p, err := Proxy(c)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Delegation; d == nil || d.KeytabFile != "/etc/kerbgate/svc-gw.keytab" || d.Client.Principal != "svc-gw" ||
		d.Client.Realm != "EXAMPLE.TEST" || len(d.Client.KDCs) != 1 || d.Client.CacheSize != 7 || d.Client.Keytab != nil {
		t.Errorf("delegation %+v", d)
	}
	if oc := p.Apps[1].OIDC; oc == nil || oc.ClientSecret != "s" || oc.CallbackPath != "/o/_kerbgate/oidc/callback" || oc.CookieKeys != nil {
		t.Errorf("oidc %+v", oc)
	}
	o, err := p.Options(iwa, nil, keyset.Random())
	if err != nil {
		t.Fatal(err)
	}
	if o.CookieName != "kg_proxy" || o.SessionTTL != time.Hour || o.Realm != "EXAMPLE.TEST" || len(o.Apps) != 3 {
		t.Fatalf("options %+v", o)
	}
	k := o.Apps[0].Kerberos
	if k.LoginIdentity != proxy.LoginAlternateUPNUserPart || k.TokenFormat != s4u.RawKerberos || k.Send != proxy.SendOn401 ||
		k.MaxReplayBody != 10 || k.AlternateUPNAttribute != "extensionAttribute1" {
		t.Errorf("kerberos %+v", k)
	}
	for i, want := range []signin.Method{signin.MethodIWA, signin.MethodOIDC, signin.MethodPassthrough} {
		if got := o.Apps[i].PreAuth.Method(); got != want {
			t.Errorf("app %d: pre-auth %s, want %s", i, got, want)
		}
	}
	if o.Apps[0].Groups.Any() || !o.Apps[1].Groups.Any() {
		t.Error("group policies not translated")
	}
	// A group name with no directory to resolve it: config reports it at load; the
	// translation refuses rather than build a policy that fails every request.
	c.Proxy.Apps[0].AllowedGroups = []string{"staff"}
	if p, err = Proxy(c); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Options(iwa, nil, keyset.Random()); err == nil {
		t.Error("a group name without a directory was translated")
	}
	// Without a delegation principal there is no KDC client.
	c.Proxy.Delegation = config.Delegation{}
	if p, err = Proxy(c); err != nil || p.Delegation != nil {
		t.Errorf("no delegation: %+v %v", p.Delegation, err)
	}
}

func TestSSOOptions(t *testing.T) {
	c := &config.Config{}
	c.SSO = config.SSO{CookieName: "kg", BrowserSessionTTL: time.Hour, Apps: []config.App{{ID: "demo",
		RedirectURIs: []string{"https://app.example.test/cb"}, SecretHash: "h", TokenTTL: time.Minute, SessionTTL: time.Hour,
		AllowedGroups: []string{"S-1-5-21-1-2-3-1110"}}}}
	o, err := SSO(c).Options(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := o.Apps[0]
	if o.CookieName != "kg" || o.BrowserSessionTTL != time.Hour || a.ID != "demo" || a.SecretHash != "h" ||
		a.TokenTTL != time.Minute || a.SessionTTL != time.Hour || a.Groups.Any() || a.RequireDirectory {
		t.Errorf("options %+v, app %+v", o, a)
	}
}
