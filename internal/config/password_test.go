package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

const validPassword = valid + `password_signin:
  principal: svc-gw
  keytab: KEYTAB
  kdcs: ["127.0.0.1:88"]
  fast: required
  challenge:
    default: negotiate
    rules:
      - sources: [10.0.0.0/8, 192.0.2.7]
        user_agents: ["Windows NT", "=~Edg/\\d+"]
        challenge: negotiate_form
      - user_agents: [iPhone]
        challenge: form
  netbios_domain: EXAMPLE
  upn_suffixes: [Example.COM]
  password_change_url: https://password.example.test/
  lockout:
    unfamiliar_threshold: 2
    familiar_threshold: 3
    domain_threshold: 6
    window: 45m
    backoff: 2s
    max_backoff: 30s
    source_threshold: 40
    familiar_for: 240h
  rate_burst: 5
  rate_refill: 2s
  max_concurrent: 16
  min_answer_time: 250ms
proxy:
  apps:
    - id: api
      host: api.example.test
      upstream: http://127.0.0.1:8080
      pre_auth: iwa
      basic_auth: true
      challenge: {default: form}
`

func TestPasswordSignInParses(t *testing.T) {
	c, err, _, keytab := parse(t, validPassword)
	if err != nil {
		t.Fatal(err)
	}
	p := c.PasswordSignIn
	want := PasswordSignIn{
		Enabled: true, Principal: "svc-gw", Keytab: keytab, KDCs: []string{"127.0.0.1:88"}, SPN: "HTTP/sso.example.test", FAST: "required",
		Challenge: Challenge{Set: true, Default: "negotiate", Rules: []ChallengeRule{
			{Sources: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, UserAgents: []string{"Windows NT", `=~Edg/\d+`}, Challenge: "negotiate_form"},
			{UserAgents: []string{"iPhone"}, Challenge: "form"},
		}},
		NetBIOSDomain: "EXAMPLE", UPNSuffixes: []string{"example.com"}, PasswordChangeURL: "https://password.example.test/",
		Lockout: PasswordLockout{UnfamiliarThreshold: 2, FamiliarThreshold: 3, DomainThreshold: 6, Window: 45 * time.Minute,
			Backoff: 2 * time.Second, MaxBackoff: 30 * time.Second, SourceThreshold: 40, FamiliarFor: 240 * time.Hour},
		RateBurst: 5, RateRefill: 2 * time.Second, MaxConcurrent: 16, MinAnswerTime: 250 * time.Millisecond,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("password_signin\n got %+v\nwant %+v", p, want)
	}
	a := c.Proxy.Apps[0]
	if !a.BasicAuth || !a.Challenge.Set || a.Challenge.Default != "form" {
		t.Errorf("proxy app %+v", a)
	}
}

// Without a directory the domain's threshold must be given; principal, keytab and
// KDCs come from proxy.delegation when the section has none.
func TestPasswordSignInDefaultsAndErrors(t *testing.T) {
	c, err, _, keytab := parse(t, valid+`password_signin:
  lockout: {domain_threshold: 0}
proxy:
  delegation: {keytab: KEYTAB, principal: svc-gw, kdcs: ["dc1.example.test:88"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	p := c.PasswordSignIn
	if p.Principal != "svc-gw" || p.Keytab != keytab || !reflect.DeepEqual(p.KDCs, []string{"dc1.example.test:88"}) || p.FAST != "auto" ||
		p.SPN != "HTTP/sso.example.test" || p.Challenge.Set {
		t.Errorf("defaults %+v", p)
	}

	for _, tc := range []invalidCase{
		{name: "no delegation and no principal", src: valid + "password_signin:\n  fast: auto\n", want: []string{
			"6:3: password_signin: has no principal and keytab",
			"6:3: password_signin.kdcs: missing",
			"6:3: password_signin.lockout.domain_threshold: missing",
		}},
		{name: "bad values", src: valid + `password_signin:
  principal: svc-gw
  keytab: KEYTAB
  kdcs: ["nohostport"]
  spn: HTTP/other.example.test
  fast: sometimes
  challenge:
    default: popup
    rules:
      - user_agents: ["=~(unclosed"]
        sources: [10.0.0.1/8]
  lockout: {domain_threshold: 5}
`, want: []string{
			`8:10: password_signin.kdcs[0]: "nohostport" is not host:port`,
			`9:8: password_signin.spn: "HTTP/other.example.test" is not one of kerberos.spns`,
			`10:9: password_signin.fast: "sometimes"; expected auto`,
			`12:14: password_signin.challenge.default: "popup"; expected negotiate_form`,
			`14:9: password_signin.challenge.rules[0].challenge: missing`,
			`14:23: password_signin.challenge.rules[0].user_agents[0]: "=~(unclosed" is not a regular expression`,
			`15:19: password_signin.challenge.rules[0].sources[0]: "10.0.0.1/8" has host bits set`,
		}},
		{name: "app settings without the section", src: validSSO + "      basic_auth: true\n", want: []string{
			"7:7: sso.apps[0]: sets challenge or basic_auth, but the file has no password_signin section",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
}
