package testrealm

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TempUserPassword is the password of users made by TempUser.
const TempUserPassword = "Temp#Pass1"

// TempUser creates a fresh user named prefix-<random hex> (password
// TempUserPassword, never expires) and deletes it when the test ends. Use it for
// tests that disable, lock or expire an account instead of changing a shared user.
// It returns the sAMAccountName.
func (r *Realm) TempUser(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testrealm: %v", err)
	}
	name := prefix + "-" + hex.EncodeToString(b[:])
	if len(name) > 20 { // sAMAccountName limit for users
		t.Fatalf("testrealm: user name %q longer than 20 characters", name)
	}
	r.SambaTool(t, "user", "create", name, TempUserPassword)
	t.Cleanup(func() {
		cmd := exec.Command("samba-tool", "user", "delete", name, "-s", r.SmbConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("testrealm: samba-tool user delete %s: %v\n%s", name, err, out)
		}
	})
	r.SambaTool(t, "user", "setexpiry", name, "--noexpiry")
	return name
}

// TempGroup creates a fresh security group named prefix-<random hex> with scope
// "Global", "Domain" (domain-local) or "Universal", makes each of members (names of
// users or groups) a member, and deletes it when the test ends. It returns the
// group's name.
func (r *Realm) TempGroup(t testing.TB, prefix, scope string, members ...string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testrealm: %v", err)
	}
	name := prefix + "-" + hex.EncodeToString(b[:])
	r.SambaTool(t, "group", "add", name, "--group-scope="+scope)
	t.Cleanup(func() {
		cmd := exec.Command("samba-tool", "group", "delete", name, "-s", r.SmbConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("testrealm: samba-tool group delete %s: %v\n%s", name, err, out)
		}
	})
	if len(members) > 0 {
		r.SambaTool(t, "group", "addmembers", name, strings.Join(members, ","))
	}
	return name
}

// DN returns the distinguished name of the object whose sAMAccountName is name.
func (r *Realm) DN(t testing.TB, name string) string {
	t.Helper()
	dn, _ := r.attribute(t, name, "sAMAccountName")
	return dn
}

// LDBModify applies an LDIF change (with "changetype: modify" records) directly to
// the DC's database, bypassing LDAP access checks. For attributes samba-tool
// cannot set, such as lockoutTime or accountExpires.
func (r *Realm) LDBModify(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command("ldbmodify", "-H", filepath.Join(r.Dir, "private", "sam.ldb"))
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testrealm: ldbmodify: %v\n%s\nLDIF:\n%s", err, out, ldif)
	}
}
