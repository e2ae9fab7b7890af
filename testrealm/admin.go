package testrealm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// attribute returns the first value of attr on the object with sAMAccountName name,
// read from the domain database directly.
func (r *Realm) attribute(t testing.TB, name, attr string) (dn, value string) {
	t.Helper()
	sam := filepath.Join(r.Dir, "private", "sam.ldb")
	cmd := exec.Command("ldbsearch", "-H", sam, "(sAMAccountName="+ldapEscape(name)+")", "dn", attr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testrealm: ldbsearch %s of %q: %v\n%s", attr, name, err, stderr.Bytes())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "dn: "); ok {
			dn = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, attr+": "); ok && value == "" {
			value = strings.TrimSpace(v)
		}
	}
	if dn == "" {
		t.Fatalf("testrealm: no object with sAMAccountName %q", name)
	}
	return dn, value
}

// KVNO returns the account's current key version (msDS-KeyVersionNumber).
func (r *Realm) KVNO(t testing.TB, account string) uint32 {
	t.Helper()
	_, v := r.attribute(t, account, "msDS-KeyVersionNumber")
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		t.Fatalf("testrealm: kvno of %s: %q", account, v)
	}
	return uint32(n)
}

// SetEnctypes sets msDS-SupportedEncryptionTypes on an account (24 = AES only,
// 28 = AES and RC4, 4 = RC4 only), which decides the enctype of tickets for its SPNs.
func (r *Realm) SetEnctypes(t testing.TB, account string, types int) {
	t.Helper()
	dn, _ := r.attribute(t, account, "sAMAccountName")
	ldif := fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: %d\n", dn, types)
	cmd := exec.Command("ldbmodify", "-H", filepath.Join(r.Dir, "private", "sam.ldb"))
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testrealm: set enctypes of %s: %v\n%s", account, err, out)
	}
}

// LockGateway serialises tests that change svc-gw's keys (exclusive) against tests
// in other packages that sign in with the exported gateway keytab (shared). The lock
// is held until the test ends. Tests within one package run sequentially and need
// no lock among themselves.
func (r *Realm) LockGateway(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(r.Dir, "out", "svc-gw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("testrealm: gateway lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("testrealm: gateway lock: %v", err)
	}
	t.Cleanup(func() { f.Close() })
}

// AddSPNUnchecked adds spn to the account whose sAMAccountName is name, writing the
// domain partition's database directly. Samba refuses a duplicate SPN through LDAP
// and ldbmodify ("samldb: spn[...] would cause a conflict", even with the relax
// control), as AD's setspn -S does; real domains still end up with duplicates (old
// setspn -A, replication of concurrent changes), and this makes one for tests. The
// SPN is removed the same way when the test ends.
func (r *Realm) AddSPNUnchecked(t testing.TB, name, spn string) {
	t.Helper()
	dn := r.DN(t, name)
	partition := "tdb://" + filepath.Join(r.Dir, "private", "sam.ldb.d", "DC=EXAMPLE,DC=TEST.ldb")
	modify := func(op string) error {
		cmd := exec.Command("ldbmodify", "-H", partition)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("dn: %s\nchangetype: modify\n%s: servicePrincipalName\nservicePrincipalName: %s\n", dn, op, spn))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ldbmodify %s %s: %v\n%s", op, spn, err, out)
		}
		return nil
	}
	if err := modify("add"); err != nil {
		t.Fatalf("testrealm: %v", err)
	}
	t.Cleanup(func() {
		if err := modify("delete"); err != nil {
			t.Logf("testrealm: %v", err)
		}
	})
}
