package directory

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/testrealm"
)

// The domain's lockout policy, read over LDAP, is what samba-tool shows.
func TestLockoutPolicyIsTheDomains(t *testing.T) {
	r := testrealm.Require(t)
	out := r.SambaTool(t, "domain", "passwordsettings", "show")
	value := func(label string) int {
		m := regexp.MustCompile(regexp.QuoteMeta(label) + `: (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("samba-tool shows no %q:\n%s", label, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	want := LockoutPolicy{
		Threshold:         value("Account lockout threshold (attempts)"),
		ObservationWindow: time.Duration(value("Reset account lockout after (mins)")) * time.Minute,
		Duration:          time.Duration(value("Account lockout duration (mins)")) * time.Minute,
	}
	got, err := newDir(t, r, nil).LockoutPolicy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("LockoutPolicy = %+v, samba-tool says %+v", got, want)
	}
}

func TestDomainDN(t *testing.T) {
	for in, want := range map[string]string{
		"DC=example,DC=test":                    "DC=example,DC=test",
		"OU=Staff,OU=People,DC=example,DC=test": "DC=example,DC=test",
		"CN=Users,dc=example,dc=test":           "dc=example,dc=test",
	} {
		if got := domainDN(in); got != want {
			t.Errorf("domainDN(%q) = %q", in, got)
		}
	}
}
