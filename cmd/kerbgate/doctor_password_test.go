package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"testing"

	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The doctor shows the domain's lockoutThreshold (read from the domain) beside the
// smart lockout limits kerbgate derives from it, and that the KDC offers FAST to
// kerbgate's own account.
func TestDoctorShowsLockoutThresholdAndFAST(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	out := r.SambaTool(t, "domain", "passwordsettings", "show")
	old := regexp.MustCompile(`Account lockout threshold \(attempts\): (\d+)`).FindStringSubmatch(out)
	if old == nil {
		t.Fatalf("no threshold in:\n%s", out)
	}
	r.SambaTool(t, "domain", "passwordsettings", "set", "--account-lockout-threshold=5")
	t.Cleanup(func() {
		if out, err := exec.Command("samba-tool", "domain", "passwordsettings", "set", "--account-lockout-threshold="+old[1], "-s", r.SmbConf).CombinedOutput(); err != nil {
			t.Errorf("restoring the lockout threshold: %v\n%s", err, out)
		}
	})
	cfg := doctorConfig(t, r, []string{r.GatewayKeytab}, []string{"HTTP/sso.example.test"}, fmt.Sprintf(`password_signin:
  principal: svc-gw
  keytab: %s
  kdcs: ["127.0.0.1:88"]
`, r.GatewayAccountKeytab))
	_, fs := runDoctor(t, "--config", cfg)
	f := want(t, fs, diagnose.OK, "lockout_policy", "domain", "locks accounts out after 5 bad passwords", "2 failures from unfamiliar and 2 from familiar")
	if f.Facts["domain_lockout_threshold"] != float64(5) {
		t.Errorf("facts %v", f.Facts)
	}
	want(t, fs, diagnose.OK, "password_fast", "svc-gw", "offers FAST")
}
