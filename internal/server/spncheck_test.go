package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

func randomHost(t *testing.T, prefix string) string {
	var b [3]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:]) + ".example.test"
}

// The start-up SPN check names a missing SPN, a duplicate (with both accounts) and
// a keytab whose key version is behind AD's, with the fix; kerberos.spn_check: fail
// refuses to start, warn logs and starts.
func TestStartupSPNCheck(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)

	// The correct setup passes.
	cfg := handoffConfig(t, r, "http://app.example.test:1")
	cfg.Kerberos.SPNCheck = "fail"
	g := startGateway(t, cfg)
	if !strings.Contains(g.logs.String(), "SPN check passed") {
		t.Fatalf("no pass:\n%s", g.logs.String())
	}

	newServer := func(spns []string, keytabs []string) error {
		c := handoffConfig(t, r, "http://app.example.test:1")
		c.Kerberos.SPNCheck = "fail"
		c.Kerberos.SPNs = append(c.Kerberos.SPNs, spns...)
		c.Kerberos.Keytabs = append(c.Kerberos.Keytabs, keytabs...)
		c.Store.Path = filepath.Join(t.TempDir(), "kg.db")
		srv, err := newFromConfig(c, slog.New(slog.DiscardHandler), Options{})
		if err == nil {
			srv.Close()
		}
		return err
	}

	// Missing: registered nowhere.
	missing := "HTTP/" + randomHost(t, "missing")
	err := newServer([]string{missing}, nil)
	if err == nil || !strings.Contains(err.Error(), "spn_registered "+missing) || !strings.Contains(err.Error(), "samba-tool spn add "+missing) {
		t.Fatalf("missing SPN: %v", err)
	}

	// Duplicate: on a service account and, bypassing Samba's uniqueness check, on a
	// second one.
	first, second := r.TempUser(t, "svcdup"), r.TempUser(t, "svcdup")
	dup := "HTTP/" + randomHost(t, "dup")
	r.SambaTool(t, "spn", "add", dup, first)
	keytab := filepath.Join(t.TempDir(), "dup.keytab")
	r.ExportKeytab(t, dup, keytab) // before the duplicate, which exportkeytab refuses
	r.AddSPNUnchecked(t, second, dup)
	err = newServer([]string{dup}, []string{keytab})
	if err == nil || !strings.Contains(err.Error(), "Duplicate SPN found") || !strings.Contains(err.Error(), first) || !strings.Contains(err.Error(), second) ||
		!strings.Contains(err.Error(), "setspn -D "+dup) {
		t.Fatalf("duplicate SPN: %v", err)
	}

	// Key version behind: the account's password changed after the export.
	svc := r.TempUser(t, "svckv")
	kv := "HTTP/" + randomHost(t, "kv")
	r.SambaTool(t, "spn", "add", kv, svc)
	r.SetEnctypes(t, svc, 24)
	kvKeytab := filepath.Join(t.TempDir(), "kv.keytab")
	r.ExportKeytab(t, kv, kvKeytab)
	r.SambaTool(t, "user", "setpassword", svc, "--newpassword=Changed#Pass9")
	err = newServer([]string{kv}, []string{kvKeytab})
	if err == nil || !strings.Contains(err.Error(), "keytab_kvno "+kv) || !strings.Contains(err.Error(), "export a new keytab") {
		t.Fatalf("kvno behind: %v", err)
	}

	// Under warn, the same problems are logged with their facts and kerbgate starts.
	c := handoffConfig(t, r, "http://app.example.test:1")
	c.Kerberos.SPNCheck = "warn"
	c.Kerberos.SPNs = append(c.Kerberos.SPNs, dup)
	c.Kerberos.Keytabs = append(c.Kerberos.Keytabs, keytab)
	g = startGateway(t, c)
	if l := g.logs.String(); !strings.Contains(l, "Duplicate SPN found") || !strings.Contains(l, `"accounts":"`) {
		t.Fatalf("warn mode log:\n%s", l)
	}
}

func TestReadiness(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:1"))
	resp := getURL(t, g.url("127.0.0.1", "/readyz"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"directory":"ok"`) {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	// A directory that does not answer: not ready (liveness still fine).
	c := handoffConfig(t, r, "http://app.example.test:1")
	c.Directory.URL = "ldaps://dc1.example.test:1"
	c.Kerberos.SPNCheck = "off"
	g = startGateway(t, c)
	resp = getURL(t, g.url("127.0.0.1", "/readyz"))
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"status":"not ready"`) {
		t.Fatalf("readyz without directory: %d %s", resp.StatusCode, b)
	}
	if resp := getURL(t, g.url("127.0.0.1", "/healthz")); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// GET /debug/last-failures lists recent refusals with their facts, only for the
// configured bearer token.
func TestDebugLastFailures(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	tokenFile := filepath.Join(t.TempDir(), "debug.token")
	const token = "0123456789abcdef0123456789abcdef-debug"
	mustWriteFile(t, tokenFile, token+"\n")
	cfg := baseConfig(r)
	cfg.Log.DebugTokenFile = tokenFile
	g := startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	h := negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{})
	g.get("/whoami", h).Body.Close()
	wantReason(t, g.get("/whoami", h), 401, "replay")

	if resp := g.get("/debug/last-failures", ""); resp.StatusCode != 401 {
		t.Fatalf("without the token: %d", resp.StatusCode)
	}
	if resp := g.get("/debug/last-failures", "Bearer wrong"); resp.StatusCode != 401 {
		t.Fatalf("with a wrong token: %d", resp.StatusCode)
	}
	resp := g.get("/debug/last-failures", "Bearer "+token)
	var got []struct {
		Reason string         `json:"reason"`
		Facts  map[string]any `json:"facts"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got) == 0 || got[0].Reason != "replay" || got[0].Facts["client"] != "alice@EXAMPLE.TEST" {
		t.Fatalf("last failures: %+v", got)
	}
	// Off by default.
	g2 := startGateway(t, baseConfig(r))
	if resp := g2.get("/debug/last-failures", "Bearer "+token); resp.StatusCode != 404 {
		t.Fatalf("debug endpoint without debug_token_file: %d", resp.StatusCode)
	}
}
