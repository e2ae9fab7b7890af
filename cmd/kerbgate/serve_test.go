package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/testrealm"
)

// TestServeSignsInWithCurl runs the built binary as an administrator would: a YAML
// file, `kerbgate serve`, curl --negotiate as alice, then SIGTERM.
func TestServeSignsInWithCurl(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	dir := t.TempDir()
	bin := testrealm.GoBuild(t, ".")
	port := testrealm.FreePort(t)
	cfg := fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
  drain_delay: 200ms
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [%s]
  spns: [HTTP/sso.example.test]
log:
  format: json
  expose_reasons: true
`, port, r.GatewayKeytab)
	path := filepath.Join(dir, "kerbgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "serve", "--config", path)
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	base := fmt.Sprintf("http://sso.example.test:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("kerbgate did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	curl := exec.Command("curl", "-sS", "--negotiate", "-u", ":", "-w", "\n%{http_code}", base+"/whoami")
	curl.Env = r.Env(r.Kinit(t, "alice"))
	out, err := curl.CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.HasSuffix(string(out), "\n200") || !strings.Contains(string(out), `"user": "alice@EXAMPLE.TEST"`) {
		t.Fatalf("curl got:\n%s\nlog:\n%s", out, logs.String())
	}
	metrics, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	m.ReadFrom(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(m.String(), `kerbgate_signins_total{enctype="aes256-cts-hmac-sha1-96"} 1`) {
		t.Errorf("sign-in not counted")
	}

	// A refused request whose path holds a session id: the log names the route,
	// never the id (issue 13 item 9).
	const sessionID = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE"
	refused, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/sso/sessions/%s", port, sessionID))
	if err != nil {
		t.Fatal(err)
	}
	refused.Body.Close()
	if refused.StatusCode != 401 {
		t.Errorf("session lookup without credentials: %d", refused.StatusCode)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kerbgate exited with %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("kerbgate did not stop on SIGTERM")
	}
	// SIGTERM drains (docs/operations.md): each step is logged.
	for _, step := range []string{"shutdown: draining", "shutdown: listener closed", "shutdown: done"} {
		if !strings.Contains(logs.String(), `"msg":"`+step) {
			t.Errorf("the log lacks %q after SIGTERM", step)
		}
	}
	if l := logs.String(); strings.Contains(l, sessionID) || !strings.Contains(l, `"route":"GET /sso/sessions/{id}"`) {
		t.Errorf("the log holds the session id, or not the route:\n%s", l)
	}
}
