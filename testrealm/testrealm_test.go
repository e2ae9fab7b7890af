package testrealm

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestRealm(t *testing.T) {
	r := Require(t)

	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, GatewaySPN)
	out, err := exec.Command("klist", "-e", cc).CombinedOutput()
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), GatewaySPN+"@"+RealmName) {
		t.Errorf("klist shows no ticket for %s:\n%s", GatewaySPN, out)
	}

	for _, name := range []string{"staff", "sso-users", "bob", "dave-g130"} {
		if sid := r.SID(t, name); !strings.HasPrefix(sid, "S-1-5-21-") {
			t.Errorf("SID(%q) = %q, want S-1-5-21-...", name, sid)
		}
	}

	for _, kt := range []string{r.GatewayKeytab, r.GatewayAccountKeytab, r.AppKeytab, r.RC4Keytab} {
		fi, err := os.Stat(kt)
		if err != nil || fi.Size() == 0 {
			t.Errorf("keytab %s missing or empty: %v", kt, err)
		}
	}

	if got := r.SambaTool(t, "group", "listmembers", "staff"); !strings.Contains(got, "sso-users") {
		t.Errorf("staff members = %q, want sso-users", got)
	}
}

func TestExportKeytab(t *testing.T) {
	r := Require(t)
	dst := t.TempDir() + "/gw.keytab"
	r.ExportKeytab(t, GatewaySPN, dst)
	r.ExportKeytab(t, GatewaySPN, dst) // replaces, does not append
	out, err := exec.Command("klist", "-k", "-e", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("klist -k: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), GatewaySPN); n != 3 {
		t.Errorf("keytab has %d entries for %s, want 3 (AES256, AES128, RC4):\n%s", n, GatewaySPN, out)
	}
}

func TestRC4Client(t *testing.T) {
	r := Require(t)
	cc := r.KinitConf(t, "bob", r.Krb5ConfRC4)
	r.KvnoConf(t, cc, RC4SPN, r.Krb5ConfRC4)
	out, err := exec.Command("klist", "-e", cc).CombinedOutput()
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "arcfour-hmac, DEPRECATED:arcfour-hmac") {
		t.Errorf("want an RC4 session key and RC4 ticket for %s:\n%s", RC4SPN, out)
	}
}

func TestPassword(t *testing.T) {
	if Password("alice") != "Alice#Pass1" || Password("nobody") != "" {
		t.Fatal("unexpected passwords")
	}
	if got := ldapEscape(`a*(b)\`); got != `a\2a\28b\29\5c` {
		t.Fatalf("ldapEscape = %q", got)
	}
}

// The IWA test application: curl --negotiate as alice reaches the CGI as
// alice@EXAMPLE.TEST; without a ticket Apache answers 401 Negotiate.
func TestApache(t *testing.T) {
	r := Require(t)
	a := r.StartApache(t, ApacheOptions{})
	cc := r.Kinit(t, "alice")
	cmd := exec.Command("curl", "-sS", "--negotiate", "-u", ":", "-D", "-", "--data", "hello", "http://app.example.test:"+strconv.Itoa(a.Port)+"/whoami")
	cmd.Env = r.Env(cc)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "X-User: alice@EXAMPLE.TEST") || !strings.Contains(string(out), "user=alice@EXAMPLE.TEST\nmethod=POST\nbody=hello") {
		t.Fatalf("curl --negotiate: %v\n%s\n%s", err, out, a.ErrorLog())
	}
	out, _ = exec.Command("curl", "-sS", "-D", "-", a.URL+"/whoami").CombinedOutput()
	if !strings.Contains(string(out), "401") || !strings.Contains(string(out), "WWW-Authenticate: Negotiate") {
		t.Fatalf("without a ticket:\n%s", out)
	}
	if out, _ := exec.Command("curl", "-sS", a.URL+"/public/").CombinedOutput(); string(out) != "public page\n" {
		t.Fatalf("public: %q", out)
	}
}
