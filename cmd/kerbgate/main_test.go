package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckConfigReportsEveryErrorWithItsPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kerbgate.yaml")
	if err := os.WriteFile(path, []byte("kerberos:\n  realm: example.test\n  keytabs: [missing.keytab]\n  spns: [HTTP/sso.example.test@EXAMPLE.TEST]\n  clock_skew: 10y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check-config", "--config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		path + ":2:10: kerberos.realm:", "EXAMPLE.TEST",
		path + ":3:13: kerberos.keytabs[0]:", "missing.keytab",
		path + ":4:10: kerberos.spns[0]:",
		path + ":5:15: kerberos.clock_skew:",
		"4 configuration error(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExampleConfigChecksOnceItsKeytabExists(t *testing.T) {
	var example, stderr bytes.Buffer
	if code := run([]string{"example-config"}, &example, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	dir := t.TempDir()
	keytab := filepath.Join(dir, "svc-gw.keytab")
	if err := os.WriteFile(keytab, []byte{5, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, password := filepath.Join(dir, "ad-ca.pem"), filepath.Join(dir, "ldap.password")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(password, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("/etc/kerbgate/svc-gw.keytab", keytab, "/etc/kerbgate/ad-ca.pem", ca,
		"/etc/kerbgate/ldap.password", password).Replace(example.String())
	path := filepath.Join(dir, "kerbgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if code := run([]string{"check-config", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("example does not check: %s", stderr.String())
	}
}

func TestUnknownCommandShowsUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"frobnicate"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "kerbgate serve --config FILE") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
