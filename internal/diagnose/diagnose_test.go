package diagnose

import (
	"context"
	"strings"
	"testing"
)

// The estimate is fitted to real tokens from the test domain (measured with curl
// --negotiate against kerbgate): it must stay within 10 % of them.
func TestEstimateTokenBytes(t *testing.T) {
	for _, c := range []struct {
		name              string
		inDomain, outside int
		measured          int
	}{
		{"alice", 1, 1, 1908},  // Domain Users, plus one well-known SID
		{"dave", 131, 1, 3284}, // 130 groups, Domain Users, one well-known SID
	} {
		got := EstimateTokenBytes(c.inDomain, c.outside)
		if d := float64(got-c.measured) / float64(c.measured); d > 0.1 || d < -0.1 {
			t.Errorf("%s: estimate %d vs measured %d", c.name, got, c.measured)
		}
	}
}

func TestWorst(t *testing.T) {
	if Worst(nil) != OK || Worst([]Finding{{Status: Warn}, {Status: OK}}) != Warn ||
		Worst([]Finding{{Status: Warn}, {Status: Fail}, {Status: OK}}) != Fail {
		t.Fatal("Worst")
	}
}

// Browsers' allowlist holds each accepted SPN's host and the hosts of the apps they
// sign in to with Negotiate, lower case, once each.
func TestPolicyHosts(t *testing.T) {
	o := Options{SPNs: []string{"HTTP/SSO.example.test", "HTTP/portal.example.test:8443", "HTTP/sso.example.test"},
		Apps: []App{{ID: "a", Host: "App.example.test", IWA: true}, {ID: "b", Host: "partners.example.test"},
			{ID: "c", Host: "portal.example.test", IWA: true}}}
	got := PolicyHosts(o)
	if want := "sso.example.test,portal.example.test,app.example.test"; strings.Join(got, ",") != want {
		t.Fatalf("hosts %v, want %s", got, want)
	}
}

// A KDC named for the run wins; otherwise the first the options imply.
func TestEnvKDC(t *testing.T) {
	o := Options{KDCs: []string{"dc1.example.test:88", "10.0.0.5:88"}}
	if k := (&Env{Options: o}).kdc(); k != "dc1.example.test:88" {
		t.Errorf("default %q", k)
	}
	if k := (&Env{Options: o, KDC: "kdc.example.test:88"}).kdc(); k != "kdc.example.test:88" {
		t.Errorf("named %q", k)
	}
	if k := (&Env{}).kdc(); k != "" {
		t.Errorf("none %q", k)
	}
}

// Without a delegating account there is no dry run, whatever the apps.
func TestNoDelegationNoDryRun(t *testing.T) {
	env := &Env{User: "alice", Options: Options{Apps: []App{{ID: "a", UpstreamSPN: "HTTP/app.example.test"}}}}
	if fs := CheckDelegation(context.Background(), env); fs != nil {
		t.Fatalf("findings %v", fs)
	}
}
