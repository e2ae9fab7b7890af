// Package redistest runs real Redis for tests, from Debian's redis-server and
// redis-sentinel: a single server (Start), a Sentinel set-up of one primary, its
// replicas and three Sentinels (StartSentinel), and a Redis Cluster of primaries
// with replicas (StartCluster). Every process runs on free loopback ports, in a
// temporary directory, and is stopped by its own pid when the test ends. A server
// can require a password or ACL users and serve TLS with a fresh CA (Debian 12's
// redis-server is built with TLS), keep its data in an append-only file, and be
// killed (SIGKILL), paused (SIGSTOP), resumed and restarted on the same port to
// test outages and failovers.
//
// It is for tests only and must not be imported by product code. It never skips:
// without redis-server (or redis-sentinel, redis-cli for a Cluster) the test fails.
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
	"strings"
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
	// Persist keeps the data in an append-only file fsynced every second, as
	// docs/farm.md asks of a farm's Redis: a restarted server has it back.
	Persist bool
	// Directives are more redis.conf lines, each a directive and its arguments,
	// like {"replicaof", "127.0.0.1", "6379"}.
	Directives [][]string

	// cluster runs the server as a Cluster node, its bus on a second free port.
	cluster bool
	// sentinel makes the process a Sentinel; the directives then are sentinel.conf's.
	sentinel bool
}

// Server is a running redis-server (or redis-sentinel). It runs from a
// configuration file in Dir, written once when it first starts, so that what a
// Sentinel or Cluster rewrites there (a node's new master, a Sentinel's view)
// survives a restart, as it does for an installed server.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // working directory: redis.conf, log file redis.log, data

	// With TLS: the CA's certificate, and a client certificate and key it issued.
	CAFile, ClientCertFile, ClientKeyFile string
	certFile, keyFile                     string

	busPort int // a Cluster node's bus

	t      testing.TB
	opts   Options
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

// binary is the program to run: redis-server, or redis-sentinel (Debian's
// redis-sentinel package) for a Sentinel.
func binary(t testing.TB, sentinel bool) string {
	t.Helper()
	name, pkg := "redis-server", "redis-server"
	if sentinel {
		name, pkg = "redis-sentinel", "redis-sentinel"
	}
	if _, err := os.Stat("/usr/bin/" + name); err == nil {
		return "/usr/bin/" + name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s is not installed (apt-get install %s)", name, pkg)
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
		if o.cluster {
			s.busPort = freePort(t)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if lastErr = s.writeConf(); lastErr != nil {
			break
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %s did not start: %v", filepath.Base(binary(t, o.sentinel)), lastErr)
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

func (s *Server) directives() [][]string {
	d := [][]string{
		{"bind", "127.0.0.1"},
		{"dir", s.Dir},
		{"daemonize", "no"},
		{"logfile", filepath.Join(s.Dir, "redis.log")},
	}
	if s.opts.sentinel {
		return append(append(d, []string{"port", strconv.Itoa(s.Port)}), s.opts.Directives...)
	}
	// A replica's first sync starts at once instead of waiting 5s for others to
	// join it (Redis 7's default for diskless sync).
	d = append(d, []string{"repl-diskless-sync-delay", "0"})
	if s.opts.Persist {
		d = append(d, []string{"save", ""}, []string{"appendonly", "yes"}, []string{"appendfsync", "everysec"})
	} else {
		d = append(d, []string{"save", ""}, []string{"appendonly", "no"})
	}
	if s.opts.TLS {
		auth := "no"
		if s.opts.ClientCert {
			auth = "yes"
		}
		d = append(d, []string{"port", "0"}, []string{"tls-port", strconv.Itoa(s.Port)},
			[]string{"tls-cert-file", s.certFile}, []string{"tls-key-file", s.keyFile},
			[]string{"tls-ca-cert-file", s.CAFile}, []string{"tls-auth-clients", auth})
		if s.opts.cluster {
			d = append(d, []string{"tls-cluster", "yes"}, []string{"tls-replication", "yes"})
		}
	} else {
		d = append(d, []string{"port", strconv.Itoa(s.Port)})
	}
	if s.opts.cluster {
		d = append(d, []string{"cluster-enabled", "yes"}, []string{"cluster-config-file", "nodes.conf"},
			[]string{"cluster-port", strconv.Itoa(s.busPort)})
	}
	if s.opts.Password != "" {
		d = append(d, []string{"requirepass", s.opts.Password}, []string{"masterauth", s.opts.Password})
	}
	for _, u := range s.opts.Users {
		d = append(d, append([]string{"user"}, splitRule(u)...))
	}
	return append(d, s.opts.Directives...)
}

// writeConf writes the configuration file the server starts from.
func (s *Server) writeConf() error {
	var b strings.Builder
	for _, line := range s.directives() {
		for i, w := range line {
			if i > 0 {
				b.WriteByte(' ')
			}
			if w == "" || strings.ContainsAny(w, " \t\"'") {
				w = strconv.Quote(w)
			}
			b.WriteString(w)
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(s.confPath(), []byte(b.String()), 0o600)
}

func (s *Server) confPath() string {
	if s.opts.sentinel {
		return filepath.Join(s.Dir, "sentinel.conf")
	}
	return filepath.Join(s.Dir, "redis.conf")
}

// splitRule splits an ACL rule at spaces (rules in tests have no quoted parts).
func splitRule(u string) []string {
	var out []string
	for _, f := range bytes.Fields([]byte(u)) {
		out = append(out, string(f))
	}
	return out
}

// start runs the server from its configuration file and waits until it answers
// PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stderr bytes.Buffer
	cmd := exec.Command(binary(s.t, s.opts.sentinel), s.confPath())
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
			return fmt.Errorf("%s exited: %s%s", filepath.Base(binary(s.t, s.opts.sentinel)), stderr.String(), tail(log))
		default:
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("%s on %s does not answer: %v", filepath.Base(binary(s.t, s.opts.sentinel)), s.Addr, err)
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
	s.cmd, s.paused = nil, false
}

// Restart starts a new server on the same port, from the same configuration file
// (after Kill): empty, unless Persist kept the data; a Cluster node or a replica
// comes back with what its cluster or Sentinel last wrote in that file.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart on %s: %v", s.Addr, err)
	}
}

// Pause stops the process (SIGSTOP): connections stay open but nothing answers, as
// with a hung server or one cut off by a network partition. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatal("redistest: server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	s.paused = paused
}

// Alive reports whether the process runs and is not paused.
func (s *Server) Alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil && !s.paused
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

// LogTail returns the end of the server's log file.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return tail(b)
}
