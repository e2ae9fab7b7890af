package testrealm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Caddy is Debian's caddy (2.6) running one Caddyfile for one test, on a loopback
// port, with its data and configuration directories of its own (no file of the
// system's caddy is read or written, no certificate is asked for).
type Caddy struct {
	Port int
	dir  string
	cmd  *exec.Cmd
}

// StartCaddy starts caddy with the global options that keep it local (no admin
// endpoint, no automatic HTTPS) followed by site, a Caddyfile fragment in which the
// string PORT is caddy's own port. It stops caddy by its pid when the test ends.
func StartCaddy(t testing.TB, site string) *Caddy {
	t.Helper()
	if _, err := exec.LookPath("caddy"); err != nil {
		t.Fatalf("testrealm: caddy is not installed (testrealm/realm.sh up installs it): %v", err)
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + strings.ReplaceAll(site, "PORT", strconv.Itoa(port))
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Caddy{Port: port, dir: dir}
	c.cmd = exec.Command("caddy", "run", "--config", path, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config")
	startDaemon(t, daemon{name: "caddy", cmd: c.cmd, output: filepath.Join(dir, "caddy.log"), port: port,
		stop: syscall.SIGTERM, logs: func() string { return "Caddyfile:\n" + conf + "\ncaddy log:\n" + c.Log() }})
	return c
}

// Log returns caddy's output.
func (c *Caddy) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "caddy.log"))
	return string(b)
}
