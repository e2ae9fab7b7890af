package testrealm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA is a certificate authority made for one test, to issue server certificates
// (kerbgate's, a load balancer's).
type TestCA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CAFile  string // PEM of the CA certificate
	dir     string
	counter int64
}

// NewTestCA makes a CA in a temporary directory.
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kerbgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	ca := &TestCA{Cert: cert, key: key, dir: dir, counter: 1}
	ca.CAFile = filepath.Join(dir, "ca.pem")
	writePEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// ServerCert is an issued certificate and its key, as files.
type ServerCert struct {
	Leaf     *x509.Certificate
	CertFile string // PEM certificate
	KeyFile  string // PEM PKCS#8 key
	// Combined holds certificate then key (HAProxy's "crt" format).
	Combined string
}

// Issue makes a server certificate for hosts (DNS names), signed with RSA/SHA-256 by
// the CA, so that its tls-server-end-point hash is SHA-256 as with most AD PKI
// certificates. name distinguishes the files.
func (ca *TestCA) Issue(t testing.TB, name string, hosts ...string) *ServerCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca.counter++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.counter),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	// An ECDSA CA signs with ECDSA-SHA256: still a SHA-256 end-point hash.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sc := &ServerCert{
		Leaf:     leaf,
		CertFile: filepath.Join(ca.dir, name+".crt"),
		KeyFile:  filepath.Join(ca.dir, name+".key"),
		Combined: filepath.Join(ca.dir, name+".pem"),
	}
	writePEM(t, sc.CertFile, "CERTIFICATE", der)
	writePEM(t, sc.KeyFile, "PRIVATE KEY", keyDER)
	both := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(sc.Combined, both, 0o600); err != nil {
		t.Fatal(err)
	}
	return sc
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
