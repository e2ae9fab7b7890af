package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const validFA = valid + `listen:
  trusted_proxies: [127.0.0.1]
  external_url: https://sso.example.com
forward_auth:
  cookie_domain: example.com
  hosts:
    - host: wiki.example.com
      allowed_groups: [S-1-5-21-1-2-3-1110]
    - host: "*.example.com"
      sign_in: redirect
      headers: {user: X-Remote-User, groups: X-Remote-Groups}
      group_names: {prefixes: [app-], max: 20}
`

func TestForwardAuthParsesWithDefaults(t *testing.T) {
	c, err, _, _ := parse(t, validFA)
	if err != nil {
		t.Fatal(err)
	}
	want := ForwardAuth{
		Enabled: true, CookieName: "kerbgate_auth", CookieDomain: "example.com", SessionTTL: 8 * time.Hour,
		SessionCacheTTL: time.Second, ReturnDomains: []string{".example.com"}, SignInURL: "https://sso.example.com/forward-auth/sign-in",
		Hosts: []ForwardAuthHost{
			{Host: "wiki.example.com", AllowedGroups: []string{"S-1-5-21-1-2-3-1110"}, SignIn: "negotiate",
				IdentityHeaders: IdentityHeaders{Headers: DefaultHeaders(), GroupNames: GroupNames{Max: DefaultGroupNamesMax}}},
			{Host: "*.example.com", SignIn: "redirect", IdentityHeaders: IdentityHeaders{
				Headers:    []HeaderMapping{{"user", "X-Remote-User"}, {"groups", "X-Remote-Groups"}},
				GroupNames: GroupNames{Prefixes: []string{"app-"}, Max: 20}}},
		},
	}
	if !reflect.DeepEqual(c.ForwardAuth, want) {
		t.Errorf("got  %+v\nwant %+v", c.ForwardAuth, want)
	}
}

// The session cache is on for a second unless turned off with 0s.
func TestForwardAuthSessionCacheCanBeTurnedOff(t *testing.T) {
	c, err, _, _ := parse(t, strings.Replace(validFA, "  cookie_domain: example.com\n", "  cookie_domain: example.com\n  session_cache_ttl: 0s\n", 1))
	if err != nil {
		t.Fatal(err)
	}
	if c.ForwardAuth.SessionCacheTTL != 0 {
		t.Errorf("session_cache_ttl: 0s gave %v", c.ForwardAuth.SessionCacheTTL)
	}
}

func TestForwardAuthMistakes(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no trusted proxies", valid + "forward_auth:\n  hosts: [{host: a.example.com}]\n", "forward_auth: needs listen.trusted_proxies"},
		{"redirect without cookie domain", valid + "listen: {trusted_proxies: [127.0.0.1], external_url: https://sso.example.com}\nforward_auth:\n  hosts: [{host: a.example.com, sign_in: redirect}]\n",
			"forward_auth.hosts[0].sign_in: redirect needs forward_auth.cookie_domain"},
		{"assertion without provider", valid + "listen: {trusted_proxies: [127.0.0.1]}\nforward_auth:\n  hosts: [{host: a.example.com, assertion: {ttl: 1m}}]\n",
			"forward_auth.hosts[0].assertion: needs the oidc_provider section"},
		{"assertion too long", valid + "listen: {trusted_proxies: [127.0.0.1]}\nforward_auth:\n  hosts: [{host: a.example.com, assertion: {ttl: 6m}}]\n",
			"forward_auth.hosts[0].assertion.ttl"},
		{"reserved header", valid + "listen: {trusted_proxies: [127.0.0.1]}\nforward_auth:\n  hosts: [{host: a.example.com, headers: {user: Authorization}}]\n",
			"forward_auth.hosts[0].headers.user: \"Authorization\" is a header HTTP or the proxy owns"},
		{"unknown claim", valid + "listen: {trusted_proxies: [127.0.0.1]}\nforward_auth:\n  hosts: [{host: a.example.com, headers: {usr: X-User}}]\n",
			"forward_auth.hosts[0].headers.usr: unknown field"},
		{"group name without directory", valid + "listen: {trusted_proxies: [127.0.0.1]}\nforward_auth:\n  hosts: [{host: a.example.com, allowed_groups: [staff]}]\n",
			"needs directory to look it up"},
		{"proxy passthrough headers", valid + "proxy:\n  apps:\n    - {id: a, host: a.example.com, upstream: http://127.0.0.1:1, pre_auth: passthrough, headers: default}\n",
			"proxy.apps[0].headers: identity headers with pre_auth passthrough"},
	} {
		_, err, _, _ := parse(t, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.name, err, tc.want)
		}
	}
}

func TestProxyAppHeadersAreOffByDefault(t *testing.T) {
	c, err, _, _ := parse(t, valid+"proxy:\n  apps:\n    - {id: a, host: a.example.com, upstream: http://127.0.0.1:1, pre_auth: iwa}\n    - {id: b, host: b.example.com, upstream: http://127.0.0.1:1, pre_auth: iwa, headers: default}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.Apps[0].Headers != nil || !reflect.DeepEqual(c.Proxy.Apps[1].Headers, DefaultHeaders()) {
		t.Errorf("headers %v / %v", c.Proxy.Apps[0].Headers, c.Proxy.Apps[1].Headers)
	}
}
