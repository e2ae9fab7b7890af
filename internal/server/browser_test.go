package server

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/testrealm"
)

// exampleApp builds and starts examples/ssoapp as application appID, on a free port,
// talking to the gateway. It returns the app's public base URL.
func exampleApp(t *testing.T, g *gateway, appID, secret string, port int) string {
	t.Helper()
	// Built per test (Go's build cache makes it quick): a binary in the first
	// test's temporary directory is gone when the next test runs.
	appBinary := testrealm.GoBuild(t, "../../examples/ssoapp")
	public := fmt.Sprintf("http://app.example.test:%d", port)
	cmd := exec.Command(appBinary,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--kerbgate", g.url("sso.example.test", ""),
		"--kerbgate-backend", g.url("127.0.0.1", ""),
		"--app-id", appID, "--public-url", public)
	cmd.Env = append(cmd.Environ(), "SSOAPP_SECRET="+secret)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("example app log:\n%s", logs.String())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
			return public
		}
		if i == 100 {
			t.Fatalf("example app did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int { t.Helper(); return testrealm.FreePort(t) }

// chromium loads url in headless Chromium as the owner of ccache and returns the
// final page's DOM.
func chromium(t *testing.T, r *testrealm.Realm, ccache, url string, flags ...string) string {
	t.Helper()
	profile := t.TempDir()
	mustWriteFile(t, filepath.Join(profile, "Local State"), `{"net":{"received_http_auth_negotiate_headers":true}}`)
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--auth-server-allowlist=*.example.test")
	cmd.Args = append(append(cmd.Args, flags...), "--dump-dom", url)
	cmd.Env = r.Env(ccache)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, errb.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("chromium did not finish in 90 s\n%s", errb.String())
	}
	return out.String()
}

// TestBrowserHandoffThroughExampleApp is the whole CAMServer-style flow in a real
// browser: example app → kerbgate (Negotiate, LDAPS check, groups) → back to the app,
// which redeems the token and greets the user.
func TestBrowserHandoffThroughExampleApp(t *testing.T) {
	r := testrealm.Require(t)
	demoPort, staffPort := freePort(t), freePort(t)
	cfg := handoffConfig(t, r, fmt.Sprintf("http://app.example.test:%d", demoPort))
	cfg.SSO.Apps[1].RedirectURIs = []string{fmt.Sprintf("http://app.example.test:%d/callback", staffPort)}
	g := startGateway(t, cfg)
	demo := exampleApp(t, g, "demo", demoSecret, demoPort)
	staff := exampleApp(t, g, "staff-app", staffSecret, staffPort)

	alice := r.Kinit(t, "alice")
	page := chromium(t, r, alice, demo+"/login")
	if !strings.Contains(page, "Welcome, alice") || !strings.Contains(page, r.SID(t, "alice")) {
		t.Fatalf("alice at demo:\n%s", page)
	}

	page = chromium(t, r, alice, staff+"/login")
	if !strings.Contains(page, "Not allowed for this application") || strings.Contains(page, "Welcome") {
		t.Fatalf("alice at staff-app (not in staff):\n%s", page)
	}

	page = chromium(t, r, r.Kinit(t, "bob"), staff+"/login")
	if !strings.Contains(page, "Welcome, bob") {
		t.Fatalf("bob at staff-app (staff through sso-users):\n%s", page)
	}
}
