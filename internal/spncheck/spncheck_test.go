package spncheck

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
)

// These unit tests pin the start-up check's modes and logging; the checks against
// the real domain are tested by internal/server (TestStartupSPNCheck) and the doctor.

type fakeDir map[string][]directory.Account

func (d fakeDir) SPNOwners(_ context.Context, spn string) ([]directory.Account, error) {
	return d[spn], nil
}

const (
	realm = "EXAMPLE.TEST"
	good  = "HTTP/sso.example.test"
	lost  = "HTTP/lost.example.test"
)

func keys() *keyring.Keyring {
	return keyring.New(keyring.Entry{Principal: good, Realm: realm, KVNO: 3, EType: kcrypto.AES256SHA1, Key: krbtest.RandomKey(kcrypto.AES256SHA1)})
}

func run(t *testing.T, o Options) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	err := Startup(t.Context(), o)
	return logs.String(), err
}

func TestStartupModes(t *testing.T) {
	dir := fakeDir{good: {{DN: "CN=svc-gw", SAMAccountName: "svc-gw", KVNO: 3, SupportedEncryptionTypes: 24, SPNs: []string{good}}}}

	logs, err := run(t, Options{Realm: realm, SPNs: []string{good}, Keys: keys(), Directory: dir, Mode: ModeFail})
	if err != nil || !strings.Contains(logs, "SPN check passed") {
		t.Fatalf("a correct setup: %v\n%s", err, logs)
	}

	o := Options{Realm: realm, SPNs: []string{good, lost}, Keys: keys(), Directory: dir}
	logs, err = run(t, o)
	if err != nil || !strings.Contains(logs, "accepted SPN has no key in any keytab") || !strings.Contains(logs, "check=spn_registered spn="+lost) {
		t.Fatalf("warn mode: %v\n%s", err, logs)
	}
	o.Mode = ModeFail
	if _, err = run(t, o); err == nil || !strings.Contains(err.Error(), "spn_registered "+lost) || !strings.Contains(err.Error(), "samba-tool spn add "+lost) {
		t.Fatalf("fail mode: %v", err)
	}
	o.Mode = ModeOff
	if logs, err = run(t, o); err != nil || strings.Contains(logs, "SPN check") {
		t.Fatalf("off: %v\n%s", err, logs)
	}
	// Without a directory only the keytab warning is possible.
	if logs, err = run(t, Options{Realm: realm, SPNs: []string{lost}, Keys: keys(), Mode: ModeFail}); err != nil ||
		!strings.Contains(logs, "no key in any keytab") || strings.Contains(logs, "SPN check") {
		t.Fatalf("no directory: %v\n%s", err, logs)
	}
}

// The EPA shared account finding is a warning, logged with its subject, and never
// stops start-up.
func TestStartupEPASharedAccountWarns(t *testing.T) {
	dir := fakeDir{good: {{DN: "CN=svc-gw", SAMAccountName: "svc-gw", KVNO: 3, SupportedEncryptionTypes: 24, SPNs: []string{good, "HTTP/other.example.test"}}}}
	p := epa.Policy{TokenChecking: epa.Require, SPNs: []string{good}}
	logs, err := run(t, Options{Realm: realm, SPNs: []string{good}, Keys: keys(), Directory: dir, EPA: p, Mode: ModeFail})
	if err != nil || !strings.Contains(logs, "check=epa_shared_account subject=svc-gw") || !strings.Contains(logs, "SPN check passed") {
		t.Fatalf("%v\n%s", err, logs)
	}
}
