package main

import (
	"os/exec"
	"testing"

	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The doctor names an account that holds epa.spns and SPNs not in it: service binding
// then rests on the ticket's clear-text server name for clients that send no
// authenticator target name (docs/epa.md).
func TestDoctorNamesEPASPNsSharingAnAccount(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	other := "HTTP/" + randHost("epashare")
	r.SambaTool(t, "spn", "add", other, "svc-gw")
	t.Cleanup(func() {
		if out, err := exec.Command("samba-tool", "spn", "delete", other, "svc-gw", "-s", r.SmbConf).CombinedOutput(); err != nil {
			t.Logf("samba-tool spn delete %s: %v\n%s", other, err, out)
		}
	})
	cfg := doctorConfig(t, r, []string{r.GatewayKeytab}, []string{"HTTP/sso.example.test"},
		"epa:\n  token_checking: Require\n  flags: [Proxy]\n  spns: [HTTP/sso.example.test]\n")
	_, fs := runDoctor(t, "--config", cfg)
	f := want(t, fs, diagnose.Warn, "epa_shared_account", "svc-gw", other, "own service account", "authenticator")
	t.Logf("%s", f)
}
