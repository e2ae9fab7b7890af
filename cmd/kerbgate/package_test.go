package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/testrealm"
)

// TestDebianPackage builds the package with scripts/package-deb.sh, installs it on
// this machine with dpkg -i, checks what it installed (a static binary that names
// its version and commit, the kerbgate system user, the store directory, the unit,
// the example configuration as a conffile), has the kerbgate user check the
// installed example and serve with it once the administrator's files are in place
// with the documented permissions, then purges it and checks nothing is left.
// It runs as root (CI and this machine do).
func TestDebianPackage(t *testing.T) {
	r := testrealm.Require(t)
	if os.Geteuid() != 0 {
		t.Fatal("TestDebianPackage installs a package: run the tests as root")
	}
	for _, p := range []string{"/etc/kerbgate", "/var/lib/kerbgate", "/usr/bin/kerbgate"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists: a kerbgate is installed on this machine; the test will not touch it", p)
		}
	}
	if _, err := user.Lookup("kerbgate"); err == nil {
		t.Fatal("a kerbgate user exists on this machine; the test will not touch it")
	}

	out := t.TempDir()
	build := exec.Command("../../scripts/package-deb.sh", out)
	build.Env = append(os.Environ(), "VERSION=1.2.3~test")
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("package-deb.sh: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b[bytes.LastIndexByte(bytes.TrimSpace(b), '\n')+1:]))
	if !strings.HasSuffix(deb, "_1.2.3~test_amd64.deb") {
		t.Fatalf("package-deb.sh printed %q", b)
	}

	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("dpkg", "-i", deb)
	purged := false
	purge := func() {
		purged = true
		run("dpkg", "--purge", "kerbgate")
	}
	t.Cleanup(func() {
		os.Remove("/etc/kerbgate/svc-gw.keytab")
		os.Remove("/etc/kerbgate/ad-ca.pem")
		os.Remove("/etc/kerbgate/ldap.password")
		if !purged {
			exec.Command("dpkg", "--purge", "kerbgate").Run()
		}
	})

	// The binary: static, and it says which build it is.
	f, err := elf.Open("/usr/bin/kerbgate")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/usr/bin/kerbgate has a program interpreter: it is not static (CGO_ENABLED=0)")
		}
	}
	f.Close()
	if v := run("/usr/bin/kerbgate", "version"); !regexp.MustCompile(`^kerbgate 1\.2\.3~test \(commit [0-9a-f]{12}(-dirty)?, built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, go`).MatchString(v) {
		t.Errorf("kerbgate version: %q", v)
	}

	// The system user, and who owns what.
	u, err := user.Lookup("kerbgate")
	if err != nil {
		t.Fatalf("no kerbgate user after install: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	g, err := user.LookupGroup("kerbgate")
	if err != nil {
		t.Fatalf("no kerbgate group after install: %v", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if uid >= 1000 || u.HomeDir != "/var/lib/kerbgate" {
		t.Errorf("kerbgate user: uid %d home %s; expected a system user (uid below 1000) at /var/lib/kerbgate", uid, u.HomeDir)
	}
	if sh := strings.TrimSpace(run("getent", "passwd", "kerbgate")); !strings.HasSuffix(sh, ":/usr/sbin/nologin") {
		t.Errorf("kerbgate can log in: %s", sh)
	}
	owned := func(path string, mode os.FileMode, wantUID, wantGID int) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != mode || int(st.Uid) != wantUID || int(st.Gid) != wantGID {
			t.Errorf("%s: %v %d:%d; expected %v %d:%d", path, fi.Mode().Perm(), st.Uid, st.Gid, mode, wantUID, wantGID)
		}
	}
	owned("/var/lib/kerbgate", 0o750, uid, gid)
	owned("/etc/kerbgate", 0o750, 0, gid)
	owned("/etc/kerbgate/kerbgate.yaml", 0o640, 0, gid)
	owned("/lib/systemd/system/kerbgate.service", 0o644, 0, 0)
	if c := run("dpkg-query", "-W", "--showformat=${Conffiles}", "kerbgate"); !strings.Contains(c, "/etc/kerbgate/kerbgate.yaml ") {
		t.Errorf("kerbgate.yaml is not a conffile: %q", c)
	}

	// The unit: systemd-analyze finds nothing to say, and its sandbox scores as
	// docs/operations.md reports.
	if v, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/kerbgate.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(v)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, v)
	}
	sec := run("systemd-analyze", "security", "--offline=yes", "--no-pager", "/lib/systemd/system/kerbgate.service")
	m := regexp.MustCompile(`Overall exposure level for kerbgate\.service: (\d+\.\d)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security:\n%s", sec)
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "exposure level for kerbgate.service: "+m[1]) {
		t.Errorf("systemd-analyze security scores the unit %s; docs/operations.md says otherwise", m[1])
	}

	// The installed example names what the administrator must add, and nothing else.
	asKerbgate := func(args ...string) *exec.Cmd {
		c := exec.Command("/usr/bin/kerbgate", args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		return c
	}
	before, err := asKerbgate("check-config", "--config", "/etc/kerbgate/kerbgate.yaml").CombinedOutput()
	if err == nil || !strings.Contains(string(before), "kerberos.keytabs[0]") || !strings.Contains(string(before), "directory.ca_file") ||
		!strings.Contains(string(before), "directory.bind.password_file") || !strings.Contains(string(before), "3 configuration error(s)") {
		t.Fatalf("check-config of the bare example: %v\n%s", err, before)
	}
	// The administrator's files, with the permissions docs/operations.md gives.
	for _, c := range []struct {
		from, to string
		uid      int
		mode     os.FileMode
	}{
		{r.GatewayKeytab, "/etc/kerbgate/svc-gw.keytab", 0, 0o640},
		{r.CACert, "/etc/kerbgate/ad-ca.pem", 0, 0o640},
		{r.LDAPBindPasswordFile, "/etc/kerbgate/ldap.password", uid, 0o400},
	} {
		b, err := os.ReadFile(c.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.to, b, c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(c.to, c.uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := asKerbgate("check-config", "--config", "/etc/kerbgate/kerbgate.yaml").CombinedOutput(); err != nil ||
		string(out) != "/etc/kerbgate/kerbgate.yaml: OK\n" {
		t.Fatalf("check-config of the example with its files in place: %v\n%s", err, out)
	}

	// kerbgate, as its user, serves with the installed example and keeps its store
	// in /var/lib/kerbgate. The administrator's edits: a free port, a short drain
	// (no balancer here), and the test DC's certificate names it in its Common Name
	// only (Samba's own).
	port := testrealm.FreePort(t)
	cfg, err := os.ReadFile("/etc/kerbgate/kerbgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte(`address: ":8080"`), []byte(fmt.Sprintf(`address: "127.0.0.1:%d"`, port)), 1)
	cfg = bytes.Replace(cfg, []byte("tls_legacy_cn: false"), []byte("tls_legacy_cn: true"), 1)
	if err := os.WriteFile("/etc/kerbgate/kerbgate.yaml", cfg, 0o640); err != nil {
		t.Fatal(err)
	}
	srv := asKerbgate("serve", "--config", "/etc/kerbgate/kerbgate.yaml")
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Before the purge (cleanups run last first): userdel refuses a user that runs a process.
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	var code int
	for i := 0; i < 100; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("/readyz of the installed kerbgate: %d\n%s", code, logs.String())
	}
	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Errorf("kerbgate serve after SIGTERM: %v\n%s", err, logs.String())
	}
	owned("/var/lib/kerbgate/kerbgate.db", 0o600, uid, gid)

	// The administrator's files are not the package's: dpkg would leave them.
	for _, f := range []string{"/etc/kerbgate/svc-gw.keytab", "/etc/kerbgate/ad-ca.pem", "/etc/kerbgate/ldap.password"} {
		os.Remove(f)
	}
	purge()
	for _, p := range []string{"/etc/kerbgate", "/var/lib/kerbgate", "/usr/bin/kerbgate", "/lib/systemd/system/kerbgate.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after dpkg --purge", p)
		}
	}
	if _, err := user.Lookup("kerbgate"); err == nil {
		t.Error("the kerbgate user is left after dpkg --purge")
	}
}
