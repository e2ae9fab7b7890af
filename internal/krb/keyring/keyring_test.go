package keyring

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/testrealm"
)

func TestLoadsExportedKeytabFromTheDomain(t *testing.T) {
	r := testrealm.Require(t)
	kr, err := Load(r.GatewayKeytab, r.AppKeytab)
	if err != nil {
		t.Fatal(err)
	}
	keys, _, known := kr.Find("http/SSO.example.test", "example.test", 0, kcrypto.AES256SHA1)
	if !known || len(keys) == 0 {
		t.Fatalf("no AES256 key for HTTP/sso.example.test in %s", r.GatewayKeytab)
	}
	kvnos := kr.KVNOs("HTTP/sso.example.test", "EXAMPLE.TEST")
	if len(kvnos) == 0 {
		t.Fatal("no kvno")
	}
	keys, others, _ := kr.Find("HTTP/sso.example.test", "EXAMPLE.TEST", kvnos[len(kvnos)-1]+1, kcrypto.AES256SHA1)
	if len(keys) != 0 || !slices.Contains(others, kvnos[len(kvnos)-1]) {
		t.Errorf("unknown kvno: keys %d, held kvnos %v", len(keys), others)
	}
	if !kr.HasPrincipal("HTTP/app.example.test", "EXAMPLE.TEST") || kr.HasPrincipal("HTTP/nope.example.test", "EXAMPLE.TEST") {
		t.Error("HasPrincipal")
	}
	if et := kr.ETypes("HTTP/app.example.test", "EXAMPLE.TEST"); !slices.Contains(et, kcrypto.AES256SHA1) || slices.Contains(et, kcrypto.RC4HMAC) {
		t.Errorf("svc-app is AES only, got %v", et)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.keytab")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	garbage := filepath.Join(dir, "garbage.keytab")
	if err := os.WriteFile(garbage, []byte("not a keytab"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(garbage); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("garbage file: %v", err)
	}
	empty := filepath.Join(dir, "empty.keytab")
	if err := os.WriteFile(empty, []byte{5, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "no usable keys") {
		t.Errorf("empty keytab: %v", err)
	}
}
