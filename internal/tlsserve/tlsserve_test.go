package tlsserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a fresh self-signed certificate for 127.0.0.1 with the given
// serial, and its key, to cert and key, stamped mtime.
func writePair(t *testing.T, cert, key string, serial int64, mtime time.Time) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sso.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"sso.example.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cert, key} {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type fixture struct {
	cert, key string
	files     *Files
	url       string
	roots     *x509.CertPool
}

// serve loads the pair and serves, over f's Listener, the serial number of the
// certificate Served says the request's connection got.
func serve(t *testing.T, interval time.Duration) (*fixture, *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), roots: x509.NewCertPool()}
	first := writePair(t, f.cert, f.key, 1, time.Now().Add(-time.Minute))
	f.roots.AddCert(first)
	files, err := Load(f.cert, f.key, interval, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	f.files = files
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{ConnContext: ConnContext, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served := files.Served(r.Context())
		if len(served) != 1 {
			http.Error(w, "served certificates: "+big.NewInt(int64(len(served))).String(), 500)
			return
		}
		io.WriteString(w, served[0].Leaf.SerialNumber.String())
	})}
	go hs.Serve(files.Listener(ln))
	t.Cleanup(func() { hs.Close() })
	f.url = "https://" + ln.Addr().String() + "/"
	return f, first
}

// client is one connection's worth of client: a transport that keeps its
// connection between requests.
func (f *fixture) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots, ServerName: "sso.example.test"}}}
}

// get returns the serial the server says it served on the connection, and the one
// the client saw.
func get(t *testing.T, c *http.Client, url string) (server, peer string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return string(b), resp.TLS.PeerCertificates[0].SerialNumber.String()
}

// After a reload, new connections get the new certificate, and a connection opened
// before keeps the certificate it was served: channel binding compares with that.
func TestReloadBindsEachConnectionToItsCertificate(t *testing.T) {
	f, _ := serve(t, 0)
	before := f.client()
	if srv, peer := get(t, before, f.url); srv != "1" || peer != "1" {
		t.Fatalf("first connection: server says %s, client saw %s", srv, peer)
	}
	if changed, err := f.files.Reload(); err != nil || changed {
		t.Fatalf("Reload of unchanged files = %v, %v", changed, err)
	}
	f.roots.AddCert(writePair(t, f.cert, f.key, 2, time.Now()))
	if changed, err := f.files.Reload(); err != nil || !changed {
		t.Fatalf("Reload after the files changed = %v, %v", changed, err)
	}
	if f.files.Current().Leaf.SerialNumber.Int64() != 2 || f.files.Current().Binding == nil {
		t.Fatalf("current certificate after reload: serial %v", f.files.Current().Leaf.SerialNumber)
	}
	if srv, peer := get(t, f.client(), f.url); srv != "2" || peer != "2" {
		t.Errorf("new connection: server says %s, client saw %s; want 2", srv, peer)
	}
	if srv, peer := get(t, before, f.url); srv != "1" || peer != "1" {
		t.Errorf("connection opened before the reload: server says %s, client saw %s; want 1", srv, peer)
	}
}

// A pair that does not load leaves the current certificate in place.
func TestReloadKeepsCertificateOnBadFiles(t *testing.T) {
	f, first := serve(t, 0)
	if err := os.WriteFile(f.cert, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.files.Reload(); err == nil || changed {
		t.Fatalf("Reload of a bad pair = %v, %v; want an error", changed, err)
	}
	if !f.files.Current().Leaf.Equal(first) {
		t.Fatal("a bad pair replaced the certificate")
	}
	if srv, _ := get(t, f.client(), f.url); srv != "1" {
		t.Errorf("served %s after a failed reload, want 1", srv)
	}
}

// With an interval, a changed pair is picked up without a call to Reload.
func TestWatchReloads(t *testing.T) {
	f, _ := serve(t, 10*time.Millisecond)
	f.roots.AddCert(writePair(t, f.cert, f.key, 3, time.Now()))
	deadline := time.Now().Add(10 * time.Second)
	for f.files.Current().Leaf.SerialNumber.Int64() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload the changed pair")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if srv, _ := get(t, f.client(), f.url); srv != "3" {
		t.Errorf("served %s after the watcher reloaded, want 3", srv)
	}
}

// A request that did not arrive over the Listener has no served certificate.
func TestServedOutsideListener(t *testing.T) {
	f, _ := serve(t, 0)
	if got := f.files.Served(t.Context()); got != nil {
		t.Errorf("Served = %v, want nil", got)
	}
	if _, err := Load(f.cert+".missing", f.key, 0, nil); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
