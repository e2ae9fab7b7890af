package testrealm

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OIDCOptions describe the test OpenID provider's one client.
type OIDCOptions struct {
	ClientID, ClientSecret string
	RedirectURIs           []string
	// User is the account the provider signs in (alice when empty): its claims are
	// sub, upn (alice@example.test), preferred_username and email.
	User string
	// UserInfoSub, when set, is the sub the UserInfo endpoint answers instead of the
	// ID token's (a provider OIDC Core §5.3.2 says must not be trusted).
	UserInfoSub string
	// JWKS, when set, is a JWK set of private keys the provider signs with (its
	// development-only keys otherwise).
	JWKS string
}

// OIDCProvider is npm's oidc-provider (testrealm/oidc/provider.mjs) under the
// machine's Node.js, for one test.
type OIDCProvider struct {
	Issuer string
	cmd    *exec.Cmd
	log    string
}

// StartOIDC installs the provider's npm packages if needed (npm ci, once), starts
// it on a free loopback port, and stops it by its pid when the test ends.
func StartOIDC(t testing.TB, o OIDCOptions) *OIDCProvider {
	t.Helper()
	dir := filepath.Join(filepath.Dir(scriptPath()), "oidc")
	ensureNPM(t, dir, "oidc-provider")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := &OIDCProvider{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(t.TempDir(), "oidc.log")}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command("node", filepath.Join(dir, "provider.mjs"))
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "ISSUER="+p.Issuer, "CLIENT_ID="+o.ClientID,
		"CLIENT_SECRET="+o.ClientSecret, "REDIRECT_URIS="+strings.Join(o.RedirectURIs, ","), "USER_ID="+o.User, "USERINFO_SUB="+o.UserInfoSub, "JWKS="+o.JWKS)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testrealm: node: %v", err)
	}
	t.Cleanup(p.Stop)
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("testrealm: the OpenID provider did not start:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Pid is the provider's process id, for a benchmark that counts its CPU time.
func (p *OIDCProvider) Pid() int { return p.cmd.Process.Pid }

// Stop ends the provider (a provider outage, or the end of the test).
func (p *OIDCProvider) Stop() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// ensureNPM runs npm ci in dir once (until node_modules holds pkg), serialised
// across test binaries.
func ensureNPM(t testing.TB, dir, pkg string) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "kerbgate-oidc-npm.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err == nil {
		return
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testrealm: npm ci in %s: %v\n%s", dir, err, out)
	}
}

// OpenIDClient runs testrealm/oidcclient/rp.mjs (a relying party on npm
// openid-client) with command and args (JSON) and decodes what it prints into out.
func OpenIDClient(t testing.TB, command string, args, out any) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(scriptPath()), "oidcclient")
	ensureNPM(t, dir, "openid-client")
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "rp.mjs", command, string(a))
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("testrealm: openid-client %s: %v\n%s", command, err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("testrealm: openid-client %s printed %q: %v", command, b, err)
	}
}
