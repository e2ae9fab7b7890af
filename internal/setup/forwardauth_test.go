package setup

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/forwardauth"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

// The forward_auth section becomes the face's typed options: hosts with their
// sign-in method, group policy and header policy, assertions signed with the
// OpenID Provider's keys and naming its issuer; proxy apps' headers the same way.
func TestForwardAuthOptionsAreTyped(t *testing.T) {
	if ForwardAuth(&config.Config{}) != nil {
		t.Fatal("a plan without the section")
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	ih := config.IdentityHeaders{Headers: []config.HeaderMapping{{Claim: "user", Header: "X-Remote-User"}},
		GroupNames: config.GroupNames{Max: 10}, Assertion: &config.Assertion{Header: "X-Assert", TTL: time.Minute}}
	c := &config.Config{
		OIDCProvider: config.OIDCProvider{Enabled: true, Issuer: "https://sso.example.com/oidc", SigningKeysFile: keys},
		ForwardAuth: config.ForwardAuth{Enabled: true, CookieName: "c", CookieDomain: "example.com", SessionTTL: time.Hour,
			SessionCacheTTL: time.Second, ReturnDomains: []string{".example.com"}, SignInURL: "https://sso.example.com/forward-auth/sign-in",
			Hosts: []config.ForwardAuthHost{
				{Host: "wiki.example.com", SignIn: "redirect", AllowedGroups: []string{"S-1-5-32-544"}, IdentityHeaders: ih},
				{Host: "*.example.com", SignIn: "negotiate", IdentityHeaders: config.IdentityHeaders{Headers: config.DefaultHeaders()}},
			}},
		Proxy: config.Proxy{Apps: []config.ProxyApp{{ID: "a", Host: "a.example.com", PathPrefix: "/", PreAuth: "iwa", IdentityHeaders: ih}}},
	}
	p := ForwardAuth(c)
	o, err := p.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.CookieDomain != "example.com" || o.SessionCacheTTL != time.Second || o.SignInURL != c.ForwardAuth.SignInURL || len(o.Hosts) != 2 ||
		!o.ReturnURLs.Allows("x.example.com") || o.ReturnURLs.Allows("example.org") {
		t.Fatalf("options %+v", o)
	}
	wiki, any := o.Hosts[0], o.Hosts[1]
	if wiki.SignIn != forwardauth.SignInRedirect || wiki.Groups == nil || any.SignIn != forwardauth.SignInNegotiate || any.Groups != nil {
		t.Fatalf("hosts %+v", o.Hosts)
	}
	h := http.Header{}
	if err := wiki.Headers.Set(h, &identity.Identity{SAMAccountName: "alice", SID: "S-1-5-21-1-2-3-1105"}, "wiki.example.com"); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Remote-User") != "alice" || h.Get("X-Assert") == "" || h.Get("X-Auth-Request-User") != "" {
		t.Fatalf("headers %v", h)
	}
	pp, err := Proxy(c)
	if err != nil {
		t.Fatal(err)
	}
	po, err := pp.Options(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hp := po.Apps[0].Headers; hp == nil || hp.Assertion == nil || hp.Assertion.Keys == nil || hp.Assertion.Issuer != "https://sso.example.com/oidc" {
		t.Fatalf("proxy app headers %+v", po.Apps[0].Headers)
	}
}
