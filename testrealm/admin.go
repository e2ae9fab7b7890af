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
