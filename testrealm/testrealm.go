// Package testrealm owns the project's test Active Directory domain: a real
// Samba AD domain controller for the realm EXAMPLE.TEST on 127.0.0.1, brought up
// by realm.sh next to this file. Tests call Require to get it; integration tests
// never skip when it is unavailable, they fail.
//
// It is for tests only and must not be imported by product code.
//
// Known principals (passwords from Password):
//
//	alice, carol            plain users (Domain Users only)
//	bob                     member of sso-users, which is a member of staff (nested)
//	dave                    member of 130 groups dave-g001 .. dave-g130 (large PAC)
//	svc-gw                  owns HTTP/sso.example.test; enctypes RC4+AES (28)
//	svc-app                 owns HTTP/app.example.test; enctypes AES only (24)
//	svc-rc4                 owns HTTP/rc4.example.test; enctypes RC4 only (4)
//	svc-ldap                LDAP bind (proxy) account for simple binds (LDAPBindDN)
//	Administrator           domain admin
//
// The KDC encrypts a service ticket with the strongest key the service account
// allows, whatever the client asks for: a client limited to RC4 (Krb5ConfRC4)
// gets an RC4 session key but an AES256 ticket for HTTP/sso.example.test. Only
// HTTP/rc4.example.test yields RC4-encrypted tickets.
package testrealm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Realm describes the running test domain. All paths are absolute.
type Realm struct {
	Dir    string // state directory (KERBGATE_REALM_DIR, default /var/lib/kerbgate-testrealm)
	Realm  string // "EXAMPLE.TEST"
	Domain string // NetBIOS domain "EXAMPLE"
	KDC    string // "127.0.0.1:88"

	Krb5Conf    string // MIT/gokrb5 client config
	Krb5ConfRC4 string // same, but the client asks only for RC4

	GatewayKeytab        string // keys of HTTP/sso.example.test (AES256, AES128, RC4)
	GatewayAccountKeytab string // keys of svc-gw@EXAMPLE.TEST
	AppKeytab            string // keys of HTTP/app.example.test (AES only)
	RC4Keytab            string // keys of HTTP/rc4.example.test (RC4 only)
	// RBCDKeytab holds the keys of HTTP/rbcd.example.test (account svc-rbcd), which
	// lets svc-gw delegate to it by resource-based constrained delegation.
	RBCDKeytab string

	SmbConf string // DIR/etc/smb.conf, for samba-tool -s
	CACert  string // CA of the DC's LDAPS certificate (issued to DC1.example.test)

	LDAPBindDN           string // DN of svc-ldap, for LDAP simple binds (LDAPBindDN)
	LDAPBindPasswordFile string // svc-ldap's password, mode 0600, no trailing newline
	Script               string // realm.sh
}

// Well-known names of the test domain.
const (
	RealmName   = "EXAMPLE.TEST"
	DomainName  = "EXAMPLE"
	BaseDN      = "DC=example,DC=test"
	GatewaySPN  = "HTTP/sso.example.test"
	AppSPN      = "HTTP/app.example.test"
	RC4SPN      = "HTTP/rc4.example.test"
	LDAPSURL    = "ldaps://dc1.example.test:636"
	LDAPURL     = "ldap://dc1.example.test:389" // simple binds need StartTLS here
	LDAPSPN     = "ldap/dc1.example.test"
	LDAPBindDN  = "CN=svc-ldap,CN=Users,DC=example,DC=test"
	DefaultDir  = "/var/lib/kerbgate-testrealm"
	defaultKDC  = "127.0.0.1:88"
	scriptName  = "realm.sh"
	scriptEnv   = "KERBGATE_REALM_SCRIPT"
	realmDirEnv = "KERBGATE_REALM_DIR"
)

var passwords = map[string]string{
	"alice":         "Alice#Pass1",
	"bob":           "Bob#Pass1",
	"carol":         "Carol#Pass1",
	"dave":          "Dave#Pass1",
	"svc-gw":        "SvcGw#Pass1",
	"svc-app":       "SvcApp#Pass1",
	"svc-rc4":       "SvcRc4#Pass1",
	"svc-ldap":      "SvcLdap#Pass1",
	"Administrator": "Admin#Pass1",
}

// Password returns the known password of a test user, or "" for an unknown one.
func Password(user string) string {
	if p, ok := passwords[user]; ok {
		return p
	}
	if strings.EqualFold(user, "administrator") {
		return passwords["Administrator"]
	}
	return ""
}

var (
	once     sync.Once
	theRealm *Realm
	upErr    error
	upOutput []byte
)

// Require brings the test domain up once per test binary (running `realm.sh up`,
// which is quick when the domain already runs) and returns it. It fails the test
// with the script's output if the domain cannot be brought up; it never skips.
func Require(t testing.TB) *Realm {
	t.Helper()
	once.Do(func() {
		script := scriptPath()
		cmd := exec.Command("bash", script, "up")
		upOutput, upErr = cmd.CombinedOutput()
		if upErr != nil {
			return
		}
		theRealm = newRealm(script)
	})
	if upErr != nil {
		t.Fatalf("testrealm: %s up failed: %v\n%s", scriptPath(), upErr, upOutput)
	}
	return theRealm
}

func scriptPath() string {
	if s := os.Getenv(scriptEnv); s != "" {
		return s
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return scriptName
	}
	return filepath.Join(filepath.Dir(file), scriptName)
}

func newRealm(script string) *Realm {
	dir := os.Getenv(realmDirEnv)
	if dir == "" {
		dir = DefaultDir
	}
	dir = filepath.Clean(dir)
	out := filepath.Join(dir, "out")
	return &Realm{
		Dir:                  dir,
		Realm:                RealmName,
		Domain:               DomainName,
		KDC:                  defaultKDC,
		Krb5Conf:             filepath.Join(out, "krb5.conf"),
		Krb5ConfRC4:          filepath.Join(out, "krb5-rc4.conf"),
		GatewayKeytab:        filepath.Join(out, "svc-gw.keytab"),
		GatewayAccountKeytab: filepath.Join(out, "svc-gw-account.keytab"),
		AppKeytab:            filepath.Join(out, "svc-app.keytab"),
		RC4Keytab:            filepath.Join(out, "svc-rc4.keytab"),
		RBCDKeytab:           filepath.Join(out, "svc-rbcd.keytab"),
		SmbConf:              filepath.Join(dir, "etc", "smb.conf"),
		CACert:               filepath.Join(out, "ca.pem"),
		LDAPBindDN:           LDAPBindDN,
		LDAPBindPasswordFile: filepath.Join(out, "svc-ldap.password"),
		Script:               script,
	}
}

// Env returns os.Environ() with KRB5_CONFIG set to the realm's client config and
// KRB5CCNAME to FILE:ccache (unless ccache already names a cache type), for MIT
// tools, curl --negotiate, python3-gssapi and browsers.
func (r *Realm) Env(ccache string) []string {
	return r.envConf(ccache, r.Krb5Conf)
}

func (r *Realm) envConf(ccache, krb5conf string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KRB5_CONFIG=") || strings.HasPrefix(kv, "KRB5CCNAME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KRB5_CONFIG="+krb5conf)
	if ccache != "" {
		if !hasCacheType(ccache) {
			ccache = "FILE:" + ccache
		}
		env = append(env, "KRB5CCNAME="+ccache)
	}
	return env
}

func hasCacheType(ccache string) bool {
	for _, p := range []string{"FILE:", "DIR:", "KEYRING:", "MEMORY:", "KCM:", "API:"} {
		if strings.HasPrefix(ccache, p) {
			return true
		}
	}
	return false
}

// Kinit gets a TGT for a known user with MIT kinit into a fresh credential cache
// in t.TempDir() and returns the cache's path.
func (r *Realm) Kinit(t testing.TB, user string) (ccache string) {
	t.Helper()
	return r.KinitConf(t, user, r.Krb5Conf)
}

// KinitConf is Kinit with another client config, e.g. r.Krb5ConfRC4.
func (r *Realm) KinitConf(t testing.TB, user, krb5conf string) string {
	t.Helper()
	pw := Password(user)
	if pw == "" {
		t.Fatalf("testrealm: no known password for user %q", user)
	}
	return r.kinit(t, user, pw, krb5conf)
}

// KinitTempUser is Kinit for a user made by TempUser (password TempUserPassword).
func (r *Realm) KinitTempUser(t testing.TB, user string) string {
	t.Helper()
	return r.kinit(t, user, TempUserPassword, r.Krb5Conf)
}

func (r *Realm) kinit(t testing.TB, user, pw, krb5conf string) string {
	t.Helper()
	ccache := filepath.Join(t.TempDir(), "ccache-"+strings.ReplaceAll(user, "/", "_"))
	cmd := exec.Command("kinit", user)
	cmd.Env = r.envConf(ccache, krb5conf)
	cmd.Stdin = strings.NewReader(pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testrealm: kinit %s (config %s): %v\n%s", user, krb5conf, err, out)
	}
	return ccache
}

// Kvno gets a service ticket for spn into ccache with MIT kvno (client config
// r.Krb5Conf).
func (r *Realm) Kvno(t testing.TB, ccache, spn string) {
	t.Helper()
	r.KvnoConf(t, ccache, spn, r.Krb5Conf)
}

// KvnoConf is Kvno with another client config, e.g. r.Krb5ConfRC4.
func (r *Realm) KvnoConf(t testing.TB, ccache, spn, krb5conf string) {
	t.Helper()
	cmd := exec.Command("kvno", spn)
	cmd.Env = r.envConf(ccache, krb5conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testrealm: kvno %s: %v\n%s", spn, err, out)
	}
}

// SambaTool runs samba-tool with args followed by -s r.SmbConf and returns its
// combined output; it fails the test if samba-tool fails.
func (r *Realm) SambaTool(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("samba-tool", append(append([]string{}, args...), "-s", r.SmbConf)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testrealm: samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ExportKeytab writes the current keys of principal (an SPN such as
// "HTTP/sso.example.test" or an account name such as "svc-gw") to dst, replacing
// it. samba-tool appends to an existing keytab, so it exports to a new file
// first and renames it.
func (r *Realm) ExportKeytab(t testing.TB, principal, dst string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(dst), ".keytab-*")
	if err != nil {
		t.Fatalf("testrealm: %v", err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	defer os.Remove(tmp)
	r.SambaTool(t, "domain", "exportkeytab", tmp, "--principal="+principal)
	if err := os.Chmod(tmp, 0o644); err != nil {
		t.Fatalf("testrealm: %v", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatalf("testrealm: %v", err)
	}
}

// SID returns the objectSid ("S-1-5-21-...") of the user, group or computer
// whose sAMAccountName is name, read from the DC's database.
func (r *Realm) SID(t testing.TB, name string) string {
	t.Helper()
	sam := filepath.Join(r.Dir, "private", "sam.ldb")
	cmd := exec.Command("ldbsearch", "-H", sam, "(sAMAccountName="+ldapEscape(name)+")", "objectSid")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testrealm: ldbsearch for %q: %v\n%s%s", name, err, out, stderr.Bytes())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if sid, ok := strings.CutPrefix(line, "objectSid: "); ok {
			return strings.TrimSpace(sid)
		}
	}
	t.Fatalf("testrealm: no object with sAMAccountName %q\n%s", name, out)
	return ""
}

// ldapEscape escapes a value for an LDAP filter (RFC 4515).
func ldapEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '*', '(', ')', 0:
			fmt.Fprintf(&b, `\%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
