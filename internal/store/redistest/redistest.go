// Package redistest runs a real redis-server for tests: on a free loopback port, in
// a temporary directory, without persistence (an empty --save), and stopped by its own pid
// when the test ends. It can require a password or ACL users and serve TLS with a
// fresh CA (Debian 12's redis-server is built with TLS), and it can be killed,
// paused and restarted on the same port to test outages.
//
// It is for tests only and must not be imported by product code. It never skips:
// without /usr/bin/redis-server (or redis-server on PATH) the test fails.
package redistest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options shape the server.
type Options struct {
	// Password is the default user's password (requirepass); "" for none.
	Password string
	// Users are ACL users, each a redis.conf user rule without the "user" keyword,
	// like "kerbgate on >secret ~kerbgate:* +get +set".
	Users []string
	// TLS serves TLS only, with a certificate for 127.0.0.1 and localhost issued by
	// a fresh CA (CAFile).
	TLS bool
	// ClientCert makes the server require a client certificate issued by the CA
	// (ClientCertFile, ClientKeyFile). Implies TLS.
	ClientCert bool
}

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // working directory, log file redis.log

	// With TLS: the CA's certificate, and a client certificate and key it issued.
	CAFile, ClientCertFile, ClientKeyFile string
	certFile, keyFile                     string

	t    testing.TB
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// binary is the redis-server to run.
func binary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redistest: redis-server is not installed (apt-get install redis-server)")
	}
	return p
}

// Start runs a redis-server for the test and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.ClientCert {
		o.TLS = true
	}
	s := &Server{t: t, opts: o, Dir: t.TempDir()}
	if o.TLS {
		s.makeCerts()
	}
	t.Cleanup(s.Kill)
	var lastErr error
	for range 5 { // a free port can be taken between choosing and binding it
		s.Port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *Server) args() []string {
	a := []string{
		"--bind", "127.0.0.1",
		"--dir", s.Dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}
	if s.opts.TLS {
		auth := "no"
		if s.opts.ClientCert {
			auth = "yes"
		}
		a = append(a, "--port", "0", "--tls-port", strconv.Itoa(s.Port),
			"--tls-cert-file", s.certFile, "--tls-key-file", s.keyFile,
			"--tls-ca-cert-file", s.CAFile, "--tls-auth-clients", auth)
	} else {
		a = append(a, "--port", strconv.Itoa(s.Port))
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	for _, u := range s.opts.Users {
		a = append(a, "--user")
		a = append(a, splitRule(u)...)
	}
	return a
}

// splitRule splits an ACL rule at spaces (rules in tests have no quoted parts).
func splitRule(u string) []string {
	var out []string
	for _, f := range bytes.Fields([]byte(u)) {
		out = append(out, string(f))
	}
	return out
}

// start runs the server on s.Port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stderr bytes.Buffer
	cmd := exec.Command(binary(s.t), s.args()...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s%s", stderr.String(), tail(log))
		default:
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server on %s does not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// client is an administrator's client: the default user, with Password.
func (s *Server) client() *redis.Client {
	o := &redis.Options{
		Addr: s.Addr, Password: s.opts.Password, MaxRetries: -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if s.opts.TLS {
		o.TLSConfig = s.TLSConfig()
	}
	return redis.NewClient(o)
}

// Client returns an administrator's client (the default user), closed when the test
// ends, to look at what the store wrote.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := s.client()
	t.Cleanup(func() { c.Close() })
	return c
}

// TLSConfig returns a client TLS configuration trusting the CA, with the client
// certificate.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(s.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		s.t.Fatalf("redistest: CA: %v", err)
	}
	cert, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// Pid is the server process's id (of its last start; 0 before it), for a
// benchmark that counts the server's CPU time.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server with SIGKILL (by its pid) and waits for it to exit; the
// data is lost. Restart brings a new one up on the same port.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// Restart starts a new server on the same port (after Kill), empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart on %s: %v", s.Addr, err)
	}
}

// Pause stops the process (SIGSTOP): connections stay open but nothing answers, as
// with a hung server. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatal("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and localhost, and a
// client certificate, with their keys, in s.Dir.
func (s *Server) makeCerts() {
	t := s.t
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	s.CAFile = s.writePEM("ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, name string) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return s.writePEM(name+".pem", "CERTIFICATE", der), s.writePEM(name+".key", "EC PRIVATE KEY", kder)
	}
	s.certFile, s.keyFile = issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	s.ClientCertFile, s.ClientKeyFile = issue(3, "kerbgate", x509.ExtKeyUsageClientAuth, "client")
}

func (s *Server) writePEM(name, typ string, der []byte) string {
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}
