package server

import (
	"bytes"
	"context"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/setup"
	"github.com/kerbgate/kerbgate/testrealm"
)

// gateway is a kerbgate server on a loopback port, signing in against the real test
// domain, with its log captured.
type gateway struct {
	t    testing.TB
	port int
	srv  *Server
	logs *lockedBuffer
	// seen holds the secrets that crossed the gateway's edge; no log line may
	// hold one (checked at cleanup).
	seen *secretSeen
	stop func() // shuts the server down (idempotent)
	ln   *trackingListener
}

// trackingListener remembers accepted connections so that kill can drop them all,
// as a crashed node would.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

// kill ends the node abruptly: the listener and every connection close at once,
// requests in flight get no answer.
func (g *gateway) kill() {
	g.ln.mu.Lock()
	g.ln.killed = true
	conns := g.ln.conns
	g.ln.mu.Unlock()
	g.ln.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// baseConfig is what `kerbgate serve` would load from a minimal file for the realm.
func baseConfig(r *testrealm.Realm) *config.Config {
	return &config.Config{
		// No drain delay: a test's gateway stops at once unless the test drains it.
		Listen: config.Listen{Address: "127.0.0.1:0", ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64<<10 + 32<<10,
			ShutdownTimeout: 10 * time.Second},
		Kerberos: config.Kerberos{
			Realm:           "EXAMPLE.TEST",
			Keytabs:         []string{r.GatewayKeytab},
			SPNs:            []string{"HTTP/sso.example.test"},
			Enctypes:        []int32{18, 17, 20, 19},
			ClockSkew:       5 * time.Minute,
			MaxTokenBytes:   64 << 10,
			ReplayCacheSize: 1 << 20,
		},
		Log: config.Log{Level: slog.LevelDebug, Format: "json", ExposeReasons: true},
	}
}

// newFromConfig builds a server from cfg as `kerbgate serve` does: the plan, then New.
func newFromConfig(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	p, err := setup.NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	return New(p, log, opts)
}

// recordSecrets wraps every gateway's handler to record the secrets crossing its
// edge (checked against its log at cleanup). Benchmarks that compare kerbgate's own
// endpoints may turn it off: it costs a cookie parse and a lock per request.
var recordSecrets = true

func startGateway(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, Options{})
}

func startGatewayWith(t testing.TB, cfg *config.Config, opts Options) *gateway {
	t.Helper()
	g := &gateway{t: t, logs: &lockedBuffer{}, seen: &secretSeen{}}
	if cfg.Store.Path == "" && cfg.Store.Redis == nil {
		// Each gateway gets its own store unless the test shares one on purpose.
		c := *cfg
		c.Store.Path = filepath.Join(t.TempDir(), "kerbgate.db")
		cfg = &c
	}
	log := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: cfg.Log.Level}))
	srv, err := newFromConfig(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	if recordSecrets {
		srv.handler = g.seen.record(srv.handler)
	}
	g.srv = srv
	raw, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		t.Fatal(err)
	}
	ln := &trackingListener{Listener: raw}
	g.ln = ln
	g.port = raw.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			ln.mu.Lock()
			killed := ln.killed
			ln.mu.Unlock()
			if err := <-done; err != nil && !killed {
				t.Errorf("server: %v", err)
			}
			if err := srv.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		g.stop()
		g.seen.check(t, g.logs.String())
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.logs.String())
		}
	})
	return g
}

// url returns the URL of path on host (a name in /etc/hosts pointing at loopback).
func (g *gateway) url(host, path string) string {
	scheme := "http"
	if g.srv.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + host + ":" + strconv.Itoa(g.port) + path
}

// get sends a GET with the given Authorization header value ("" for none).
func (g *gateway) get(path, authorization string) *http.Response {
	g.t.Helper()
	req, err := http.NewRequest("GET", g.url("127.0.0.1", path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp
}

// curlResult is what curl saw.
type curlResult struct {
	status  int
	headers http.Header
	body    string
	stderr  string
}

// curl runs the real curl with --negotiate as the owner of ccache.
func (g *gateway) curl(r *testrealm.Realm, ccache, krb5conf, url string, extra ...string) curlResult {
	g.t.Helper()
	args := append([]string{"-sS", "--negotiate", "-u", ":", "-D", "-", "-o", "/dev/stderr", "-w", ""}, extra...)
	args = append(args, url)
	cmd := exec.Command("curl", args...)
	cmd.Env = r.Env(ccache)
	if krb5conf != "" {
		cmd.Env = append(cmd.Env, "KRB5_CONFIG="+krb5conf)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("curl %s: %v\n%s", url, err, stderr.String())
	}
	return parseCurl(g.t, stdout.String(), stderr.String())
}

// parseCurl takes the last response's headers from -D output; the body went to
// stderr (with any curl diagnostics).
func parseCurl(t testing.TB, headers, body string) curlResult {
	t.Helper()
	blocks := strings.Split(strings.TrimSpace(strings.ReplaceAll(headers, "\r\n", "\n")), "\n\n")
	last := blocks[len(blocks)-1]
	lines := strings.Split(last, "\n")
	f := strings.Fields(lines[0])
	if len(f) < 2 {
		t.Fatalf("curl status line %q", lines[0])
	}
	status, _ := strconv.Atoi(f[1])
	h := http.Header{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return curlResult{status: status, headers: h, body: body, stderr: body}
}

func decodeIdentity(t testing.TB, body string) identity.Identity {
	t.Helper()
	var id identity.Identity
	start := strings.Index(body, "{")
	if start < 0 {
		t.Fatalf("no JSON in %q", body)
	}
	if err := json.NewDecoder(strings.NewReader(body[start:])).Decode(&id); err != nil {
		t.Fatalf("identity JSON: %v in %q", err, body)
	}
	return id
}

// negotiateHeader builds an Authorization header from the service ticket in ccache,
// with a fresh authenticator shaped by o: what a client would send, under the
// test's control.
func negotiateHeader(t testing.TB, ccache, spn string, o initiator.Options) string {
	t.Helper()
	h, err := tryNegotiateHeader(ccache, spn, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tryNegotiateHeader is negotiateHeader for goroutines (which must not call Fatal).
func tryNegotiateHeader(ccache, spn string, o initiator.Options) (string, error) {
	c, err := initiator.FromCCache(ccache, spn)
	if err != nil {
		return "", err
	}
	ap, err := c.APReq(o)
	if err != nil {
		return "", err
	}
	gss := spnego.WrapKerberos(spnego.OIDKerberos, [2]byte{0x01, 0x00}, ap)
	return "Negotiate " + base64.StdEncoding.EncodeToString(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, gss)), nil
}

func wantReason(t testing.TB, resp *http.Response, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Kerbgate-Reason") != code {
		t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"), status, code)
	}
}

func mustWriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// spnegoInit builds a NegTokenInit offering the mechanisms (dotted OIDs) with an
// optimistic token.
func spnegoInit(t testing.TB, oids []string, token []byte) []byte {
	t.Helper()
	var mechs []asn1.ObjectIdentifier
	for _, s := range oids {
		var oid asn1.ObjectIdentifier
		for _, part := range strings.Split(s, ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				t.Fatal(err)
			}
			oid = append(oid, n)
		}
		mechs = append(mechs, oid)
	}
	return spnego.EncodeNegTokenInit(mechs, token)
}

// waitFor polls cond until it holds, and fails the test naming what it waited for
// when timeout passes first: tests wait on a condition, not a fixed time.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
