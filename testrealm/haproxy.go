package testrealm

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxyMode is how a test load balancer forwards connections.
type HAProxyMode int

const (
	// HAProxyTCP passes TCP through (TLS, if any, ends at the backend).
	HAProxyTCP HAProxyMode = iota
	// HAProxyHTTP forwards plain HTTP to a plain-HTTP backend.
	HAProxyHTTP
	// HAProxyTLSOffload terminates TLS with its own certificate and forwards plain
	// HTTP (SSL offload).
	HAProxyTLSOffload
	// HAProxyTLSReencrypt terminates TLS with its own certificate and opens a new
	// TLS connection to the backend.
	HAProxyTLSReencrypt
)

// HAProxyOptions describe a test load balancer.
type HAProxyOptions struct {
	Mode     HAProxyMode
	Backends []string // host:port
	// Cert is HAProxy's own certificate (TLS modes).
	Cert *ServerCert
	// BackendCAFile verifies the backend's certificate (HAProxyTLSReencrypt).
	BackendCAFile string
	// Check health-checks the backends (a TCP connect every 100 ms; one failure
	// takes a backend out) and redispatches connections a dead backend refused.
	Check bool
	// HealthPath, with Check, makes the checks HTTP GETs of this path (like
	// "/readyz") that take a backend out unless it answers 200.
	HealthPath string
	// NoRetry sends each request to one backend only: no retry and no redispatch
	// when the backend refuses the connection, so a node that stops badly shows as
	// failed requests rather than being hidden by HAProxy.
	NoRetry bool
}

// HAProxy is Debian's haproxy running for one test.
type HAProxy struct {
	Port int
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// StartHAProxy starts haproxy on a free loopback port and stops it (by its pid) when
// the test ends.
func StartHAProxy(t testing.TB, o HAProxyOptions) *HAProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	mode, bind, server := "http", "", ""
	switch o.Mode {
	case HAProxyTCP:
		mode = "tcp"
	case HAProxyTLSOffload:
		bind = " ssl crt " + o.Cert.Combined
	case HAProxyTLSReencrypt:
		bind = " ssl crt " + o.Cert.Combined
		server = " ssl verify required ca-file " + o.BackendCAFile + " sni str(sso.example.test) verifyhost sso.example.test"
	}
	if o.Check {
		server += " check inter 100ms fall 1 rise 1"
	}
	retry := "  option redispatch\n  retries 3\n"
	if o.NoRetry {
		retry = "  no option redispatch\n  retries 0\n"
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
  maxconn 1024
defaults
  mode %s
  timeout connect 2s
  timeout client 60s
  timeout server 60s
%sfrontend fe
  bind 127.0.0.1:%d%s
  default_backend be
backend be
  balance roundrobin
`, mode, retry, port, bind)
	if o.Check && o.HealthPath != "" {
		fmt.Fprintf(&cfg, "  option httpchk GET %s\n  http-check expect status 200\n", o.HealthPath)
	}
	for i, b := range o.Backends {
		fmt.Fprintf(&cfg, "  server s%d %s%s\n", i, b, server)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &HAProxy{Port: port, log: &bytes.Buffer{}}
	h.cmd = exec.Command("haproxy", "-db", "-f", file)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("testrealm: haproxy: %v", err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy config:\n%s\nhaproxy output:\n%s", cfg.String(), h.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("testrealm: haproxy did not listen on %d: %s\nconfig:\n%s", port, h.log.String(), cfg.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
