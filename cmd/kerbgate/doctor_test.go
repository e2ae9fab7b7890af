package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/testrealm"
)

// doctorConfig writes a configuration for the test domain; edit changes its text.
func doctorConfig(t *testing.T, r *testrealm.Realm, keytabs []string, spns []string, extra string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [%s]\n  spns: [%s]\n", strings.Join(keytabs, ", "), strings.Join(spns, ", "))
	fmt.Fprintf(&b, `directory:
  url: ldaps://dc1.example.test
  ca_file: %s
  tls_legacy_cn: true
  base_dn: DC=example,DC=test
  bind:
    method: simple
    dn: %s
    password_file: %s
`, r.CACert, testrealm.LDAPBindDN, r.LDAPBindPasswordFile)
	b.WriteString(extra)
	path := filepath.Join(t.TempDir(), "kerbgate.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runDoctor runs kerbgate doctor --json and returns its exit code and findings.
func runDoctor(t *testing.T, args ...string) (int, []diagnose.Finding) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"doctor", "--json"}, args...), &out, &errb)
	var fs []diagnose.Finding
	if err := json.Unmarshal(out.Bytes(), &fs); err != nil {
		t.Fatalf("doctor output is not JSON: %v\n%s\n%s", err, out.String(), errb.String())
	}
	return code, fs
}

// find returns the finding of check about subject (any subject when "").
func find(fs []diagnose.Finding, check, subject string) *diagnose.Finding {
	for i := range fs {
		if fs[i].Check == check && (subject == "" || fs[i].Subject == subject) {
			return &fs[i]
		}
	}
	return nil
}

func want(t *testing.T, fs []diagnose.Finding, status diagnose.Status, check, subject string, inFix ...string) *diagnose.Finding {
	t.Helper()
	f := find(fs, check, subject)
	if f == nil || f.Status != status {
		t.Fatalf("want %s %s %s; findings:\n%s", status, check, subject, dump(fs))
	}
	for _, s := range inFix {
		if !strings.Contains(f.Fix+" "+f.Message+fmt.Sprint(f.Facts), s) {
			t.Errorf("%s %s: %q not in %+v", check, subject, s, *f)
		}
	}
	return f
}

func dump(fs []diagnose.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func randHost(prefix string) string {
	var b [3]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:]) + ".example.test"
}

// tempService makes a service account (TempUser) owning spn, with the given
// msDS-SupportedEncryptionTypes, and exports the SPN's keytab.
func tempService(t *testing.T, r *testrealm.Realm, spn string, enctypes int) (account, keytab string) {
	t.Helper()
	account = r.TempUser(t, "svcdoc")
	r.SambaTool(t, "spn", "add", spn, account)
	r.SetEnctypes(t, account, enctypes)
	keytab = filepath.Join(t.TempDir(), account+".keytab")
	r.ExportKeytab(t, spn, keytab)
	return account, keytab
}

func TestDoctorAllOKOnTheCorrectSetup(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	cfg := doctorConfig(t, r, []string{r.GatewayKeytab}, []string{"HTTP/sso.example.test"}, "")
	code, fs := runDoctor(t, "--config", cfg, "--user", "alice", "--dns", "127.0.0.1:53")
	// The test domain's CA is Samba's own, whose serial can be negative: the doctor
	// names that (TestNegativeSerialCAIsAcceptedAndNamed) and it is no misconfiguration.
	var rest []diagnose.Finding
	for _, f := range fs {
		if f.Check != "directory_ca" {
			rest = append(rest, f)
		}
	}
	if code != 0 || diagnose.Worst(rest) != diagnose.OK {
		t.Fatalf("exit %d on the correct setup:\n%s", code, dump(fs))
	}
	for _, c := range []string{"keytab_readable", "directory", "spn_registered", "keytab_kvno", "account_aes", "clock_offset", "ticket_round_trip", "dns", "token_size"} {
		if find(fs, c, "") == nil {
			t.Errorf("check %s did not run:\n%s", c, dump(fs))
		}
	}
}

// Each misconfiguration, made in the real domain or the file, is named with its fix.
func TestDoctorNamesMisconfigurations(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	gw := []string{r.GatewayKeytab}
	sso := "HTTP/sso.example.test"

	t.Run("missing SPN", func(t *testing.T) {
		spn := "HTTP/" + randHost("nospn")
		code, fs := runDoctor(t, "--config", doctorConfig(t, r, gw, []string{sso, spn}, ""))
		want(t, fs, diagnose.Fail, "spn_registered", spn, "samba-tool spn add "+spn, "setspn -S "+spn)
		want(t, fs, diagnose.Fail, "spn_in_keytab", spn)
		if code != 1 {
			t.Errorf("exit %d", code)
		}
	})

	t.Run("SPN on two accounts", func(t *testing.T) {
		spn := "HTTP/" + randHost("dup")
		first, keytab := tempService(t, r, spn, 24)
		second := r.TempUser(t, "svcdoc")
		r.AddSPNUnchecked(t, second, spn)
		_, fs := runDoctor(t, "--config", doctorConfig(t, r, append(gw, keytab), []string{sso, spn}, ""))
		want(t, fs, diagnose.Fail, "spn_unique", spn, first, second, "setspn -D "+spn)
	})

	t.Run("keytab kvno behind AD after a password reset", func(t *testing.T) {
		spn := "HTTP/" + randHost("kvno")
		account, keytab := tempService(t, r, spn, 24)
		r.SambaTool(t, "user", "setpassword", account, "--newpassword=Reset#Pass42")
		_, fs := runDoctor(t, "--config", doctorConfig(t, r, append(gw, keytab), []string{sso, spn}, ""))
		f := want(t, fs, diagnose.Fail, "keytab_kvno", spn, "export a new keytab")
		if f.Facts["ad_kvno"] == f.Facts["keytab_kvnos"] {
			t.Errorf("facts do not show two versions: %v", f.Facts)
		}
		want(t, fs, diagnose.Fail, "ticket_round_trip", spn)
	})

	t.Run("account without AES", func(t *testing.T) {
		spn := "HTTP/" + randHost("rc4")
		_, keytab := tempService(t, r, spn, 4) // RC4 only
		_, fs := runDoctor(t, "--config", doctorConfig(t, r, append(gw, keytab), []string{sso, spn}, ""))
		want(t, fs, diagnose.Warn, "account_aes", spn, "msDS-SupportedEncryptionTypes to 24")
	})

	t.Run("clock offset beyond the skew", func(t *testing.T) {
		// faketime cannot move a Go program's clock (Go reads it through the vDSO),
		// so the doctor's clock is shifted by its own flag.
		_, fs := runDoctor(t, "--config", doctorConfig(t, r, gw, []string{sso}, ""), "--clock-offset", "-7m")
		f := want(t, fs, diagnose.Fail, "clock_offset", "", "synchronise this host's clock")
		if off, _ := f.Facts["offset_seconds"].(float64); off < 400 || off > 440 {
			t.Errorf("offset %v, want about 420 s", f.Facts["offset_seconds"])
		}
	})

	t.Run("SPN host that is a CNAME", func(t *testing.T) {
		alias := strings.TrimSuffix(randHost("alias"), ".example.test")
		spn := "HTTP/" + alias + ".example.test"
		_, keytab := tempService(t, r, spn, 24)
		adminPass := "Administrator%" + testrealm.Password("Administrator")
		// The target is the DC's name, which the domain's DNS holds an A record for.
		r.SambaTool(t, "dns", "add", "127.0.0.1", "example.test", alias, "CNAME", "dc1.example.test", "-U", adminPass)
		t.Cleanup(func() {
			exec.Command("samba-tool", "dns", "delete", "127.0.0.1", "example.test", alias, "CNAME", "dc1.example.test",
				"-U", adminPass, "-s", r.SmbConf).Run()
		})
		_, fs := runDoctor(t, "--config", doctorConfig(t, r, append(gw, keytab), []string{sso, spn}, ""), "--dns", "127.0.0.1:53")
		want(t, fs, diagnose.Warn, "dns_cname", alias+".example.test", "dc1.example.test", "HTTP/dc1.example.test")
	})

	t.Run("unreadable keytab", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "broken.keytab")
		os.WriteFile(bad, []byte("this is not a keytab"), 0o600)
		code, fs := runDoctor(t, "--config", doctorConfig(t, r, []string{bad}, []string{sso}, ""))
		want(t, fs, diagnose.Fail, "keytab_readable", bad, "export it again")
		if code != 1 {
			t.Errorf("exit %d", code)
		}
	})

	t.Run("wrong LDAP CA", func(t *testing.T) {
		ca := testrealm.NewTestCA(t)
		cfg := doctorConfig(t, r, gw, []string{sso}, "")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(b), r.CACert, ca.CAFile, 1)), 0o600)
		_, fs := runDoctor(t, "--config", cfg)
		want(t, fs, diagnose.Fail, "directory", "", "directory.ca_file")
	})

	t.Run("token over the header limit", func(t *testing.T) {
		cfg := doctorConfig(t, r, gw, []string{sso}, "")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(b), "  spns:", "  max_token_bytes: 2048\n  spns:", 1)), 0o600)
		_, fs := runDoctor(t, "--config", cfg, "--user", "dave")
		f := want(t, fs, diagnose.Fail, "token_size", "dave", "raise kerberos.max_token_bytes")
		if n, _ := f.Facts["groups"].(float64); n < 120 {
			t.Errorf("dave's groups: %v", f.Facts["groups"])
		}
		_, fs = runDoctor(t, "--config", cfg, "--user", "alice")
		if f := find(fs, "token_size", "alice"); f == nil || f.Status == diagnose.Fail {
			t.Errorf("alice's token fails:\n%s", dump(fs))
		}
	})
}

func TestDoctorBrowserPolicy(t *testing.T) {
	r := testrealm.Require(t)
	cfg := doctorConfig(t, r, []string{r.GatewayKeytab}, []string{"HTTP/sso.example.test", "HTTP/portal.example.test"}, "")
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "--config", cfg, "--browser-policy"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	policies := diagnose.BrowserPolicies([]string{"sso.example.test", "portal.example.test"})
	if !strings.Contains(out.String(), policies[0].Content) {
		t.Fatalf("output lacks the Chrome policy:\n%s", out.String())
	}
	for _, p := range policies {
		switch p.Format {
		case "json":
			var v map[string]any
			if err := json.Unmarshal([]byte(p.Content), &v); err != nil {
				t.Errorf("%s %s: %v", p.Browser, p.Platform, err)
			}
			if !strings.Contains(p.Content, "sso.example.test") || !strings.Contains(p.Content, "portal.example.test") {
				t.Errorf("%s %s lacks the hosts", p.Browser, p.Platform)
			}
		case "plist":
			// Parsed by Python's plistlib, as macOS's own parser would.
			cmd := exec.Command("/usr/bin/python3", "-c", "import plistlib,sys; d=plistlib.loads(sys.stdin.buffer.read()); print(d['AuthServerAllowlist'])")
			cmd.Stdin = strings.NewReader(p.Content)
			got, err := cmd.Output()
			if err != nil || strings.TrimSpace(string(got)) != "sso.example.test,portal.example.test" {
				t.Errorf("%s plist: %v %q", p.Browser, err, got)
			}
		case "reg":
			lines := strings.Split(p.Content, "\r\n")
			if lines[0] != "Windows Registry Editor Version 5.00" || !strings.HasPrefix(lines[2], `[HKEY_LOCAL_MACHINE\SOFTWARE\Policies\`) ||
				lines[3] != `"AuthServerAllowlist"="sso.example.test,portal.example.test"` {
				t.Errorf("%s .reg:\n%s", p.Browser, p.Content)
			}
		}
	}
}

// The delegation dry run names what is wrong in AD: protocol transition off, the
// upstream SPN not in msDS-AllowedToDelegateTo (nor granted by RBCD), and all-OK when
// both are set.
func TestDoctorDelegationDryRun(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	svc := r.TempUser(t, "svcdry")
	r.SambaTool(t, "spn", "add", "HTTP/"+svc+".example.test", svc)
	r.SetEnctypes(t, svc, 24)
	kt := filepath.Join(t.TempDir(), svc+".keytab")
	r.ExportKeytab(t, svc, kt)
	proxy := fmt.Sprintf(`proxy:
  delegation:
    keytab: %s
    principal: %s
    kdcs: [127.0.0.1:88]
  apps:
    - id: intranet
      host: app.example.test
      upstream: http://127.0.0.1:9
      pre_auth: iwa
      kerberos:
        spn: HTTP/app.example.test
`, kt, svc)
	cfg := doctorConfig(t, r, []string{r.GatewayKeytab}, []string{"HTTP/sso.example.test"}, proxy)
	subject := "intranet → HTTP/app.example.test"

	// Neither protocol transition nor the SPN: the KDC refuses S4U2Proxy; with a
	// non-forwardable S4U2Self ticket, that is protocol transition.
	r.SambaTool(t, "delegation", "add-service", svc, "HTTP/app.example.test")
	_, fs := runDoctor(t, "--config", cfg, "--user", "alice")
	want(t, fs, diagnose.Fail, "delegation", subject, "protocol_transition_not_allowed", "TRUSTED_TO_AUTH_FOR_DELEGATION")

	r.SambaTool(t, "delegation", "for-any-protocol", svc, "on")
	r.SambaTool(t, "delegation", "del-service", svc, "HTTP/app.example.test")
	_, fs = runDoctor(t, "--config", cfg, "--user", "alice")
	want(t, fs, diagnose.Fail, "delegation", subject, "delegation_not_allowed", "msDS-AllowedToDelegateTo", "msDS-AllowedToActOnBehalfOfOtherIdentity")

	r.SambaTool(t, "delegation", "add-service", svc, "HTTP/app.example.test")
	_, fs = runDoctor(t, "--config", cfg, "--user", "alice")
	want(t, fs, diagnose.OK, "delegation", subject)
}
