package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// These tests sign in against the real Samba AD test domain with real clients. They
// never skip: without the domain they fail (testrealm.Require).

func TestCurlSignsInAliceWithMutualAuth(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	res := g.curl(r, cc, "", g.url("sso.example.test", "/whoami"))
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	id := decodeIdentity(t, res.body)
	if id.Principal != "alice@EXAMPLE.TEST" || id.SAMAccountName != "alice" || !strings.EqualFold(id.UPN, "alice@example.test") {
		t.Errorf("identity %+v", id)
	}
	if want := r.SID(t, "alice"); id.SID != want {
		t.Errorf("sid %s, want %s", id.SID, want)
	}
	domainUsers := id.SID[:strings.LastIndex(id.SID, "-")] + "-513"
	if !slices.Contains(id.Groups, domainUsers) {
		t.Errorf("groups %v lack Domain Users %s", id.Groups, domainUsers)
	}
	// The AP-REP itself is checked by a GSS-API initiator in
	// TestPythonGSSAPIMutualAuthenticationCompletes; here, that curl got one.
	if !strings.HasPrefix(res.headers.Get("WWW-Authenticate"), "Negotiate ") {
		t.Errorf("no mutual authentication token in the 200 response: %v", res.headers)
	}
}

func TestNestedGroupsOfBob(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	res := g.curl(r, r.Kinit(t, "bob"), "", g.url("sso.example.test", "/whoami"))
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	id := decodeIdentity(t, res.body)
	for _, grp := range []string{"sso-users", "staff"} {
		if sid := r.SID(t, grp); !slices.Contains(id.Groups, sid) {
			t.Errorf("bob's groups %v lack %s (%s)", id.Groups, grp, sid)
		}
	}
}

func TestNoTicketGetsNegotiateChallenge(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	resp := g.get("/whoami", "")
	resp.Body.Close()
	wantReason(t, resp, 401, "no_token")
	if resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	// curl with an empty credential cache: it cannot answer the challenge.
	empty := filepath.Join(t.TempDir(), "ccache-empty")
	res := g.curl(r, empty, "", g.url("sso.example.test", "/whoami"))
	if res.status != 401 || res.headers.Get("Www-Authenticate") != "Negotiate" {
		t.Errorf("curl without ticket: %d %v", res.status, res.headers)
	}
}

func TestHeadlessChromiumSignsIn(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	profile := t.TempDir()
	// A fresh profile refuses the first Negotiate challenge unless it has seen one.
	mustWriteFile(t, filepath.Join(profile, "Local State"), `{"net":{"received_http_auth_negotiate_headers":true}}`)
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--auth-server-allowlist=*.example.test",
		"--dump-dom", g.url("sso.example.test", "/whoami"))
	cmd.Env = r.Env(cc)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	if !strings.Contains(out.String(), `"user": "alice@EXAMPLE.TEST"`) {
		t.Fatalf("chromium page does not show alice:\n%s\n%s", out.String(), g.logs.String())
	}
}

// pythonMutual is a GSS-API initiator (MIT krb5 through python3-gssapi) that
// requires mutual authentication and checks that kerbgate's answer completes the
// security context.
const pythonMutual = `
import base64, sys, urllib.request, urllib.error, gssapi
url = sys.argv[1]
name = gssapi.Name("HTTP@sso.example.test", gssapi.NameType.hostbased_service)
ctx = gssapi.SecurityContext(name=name, usage="initiate",
    flags=gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.out_of_sequence_detection,
    mech=gssapi.Mechanism.from_sasl_name("GS2-KRB5") if False else None)
tok = ctx.step()
req = urllib.request.Request(url, headers={"Authorization": "Negotiate " + base64.b64encode(tok).decode()})
resp = urllib.request.urlopen(req)
hdr = resp.headers["WWW-Authenticate"]
assert hdr and hdr.startswith("Negotiate "), hdr
ctx.step(base64.b64decode(hdr.split(" ", 1)[1]))
print("complete=%s mutual=%s user=%s" % (ctx.complete, bool(ctx.actual_flags & gssapi.RequirementFlag.mutual_authentication), resp.read().decode().count("alice@EXAMPLE.TEST")))
`

func TestPythonGSSAPIMutualAuthenticationCompletes(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	// Debian's python3 has the gssapi module; a pyenv python on PATH may not.
	cmd := exec.Command("/usr/bin/python3", "-c", pythonMutual, g.url("sso.example.test", "/whoami"))
	cmd.Env = r.Env(cc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3-gssapi: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "complete=True mutual=True user=1" {
		t.Fatalf("python3-gssapi: %s", got)
	}
}

func TestReplayedAuthenticatorIsRefused(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	h := negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{})
	first := g.get("/whoami", h)
	first.Body.Close()
	if first.StatusCode != 200 {
		t.Fatalf("first use: %d %s", first.StatusCode, first.Header.Get("Kerbgate-Reason"))
	}
	second := g.get("/whoami", h)
	second.Body.Close()
	wantReason(t, second, 401, "replay")
	// A new authenticator from the same ticket is fine.
	third := g.get("/whoami", negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{}))
	third.Body.Close()
	if third.StatusCode != 200 {
		t.Fatalf("fresh authenticator: %d %s", third.StatusCode, third.Header.Get("Kerbgate-Reason"))
	}
}

func TestClockSkewWithRealTicket(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	resp := g.get("/whoami", negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{Now: time.Now().Add(-7 * time.Minute)}))
	resp.Body.Close()
	wantReason(t, resp, 401, "clock_skew")
	if !strings.Contains(g.logs.String(), `"skew_seconds":420`) {
		t.Errorf("log lacks the skew in seconds:\n%s", g.logs.String())
	}
}

func TestTicketForAnotherSPNIsSPNMismatch(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	// curl asks for HTTP/app.example.test because that is the host it talks to.
	res := g.curl(r, r.Kinit(t, "alice"), "", g.url("app.example.test", "/whoami"))
	if res.status != 401 || res.headers.Get("Kerbgate-Reason") != "spn_mismatch" {
		t.Fatalf("got %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
	if !strings.Contains(g.logs.String(), `"ticket_spn":"HTTP/app.example.test"`) {
		t.Errorf("log does not name the ticket's SPN:\n%s", g.logs.String())
	}
}

func TestRC4TicketIsRefusedUnlessAllowed(t *testing.T) {
	r := testrealm.Require(t)
	// svc-rc4 allows only RC4 (msDS-SupportedEncryptionTypes 4), so the KDC encrypts
	// its tickets with RC4: the legacy account an administrator may still have.
	cfg := baseConfig(r)
	cfg.Kerberos.SPNs = []string{"HTTP/rc4.example.test"}
	cfg.Kerberos.Keytabs = []string{r.RC4Keytab}
	g := startGateway(t, cfg)
	cc := r.KinitConf(t, "alice", r.Krb5ConfRC4)
	res := g.curl(r, cc, r.Krb5ConfRC4, g.url("rc4.example.test", "/whoami"))
	if res.status != 401 || res.headers.Get("Kerbgate-Reason") != "enctype_not_allowed" {
		t.Fatalf("got %d %q\n%s", res.status, res.headers.Get("Kerbgate-Reason"), res.body)
	}
	if !strings.Contains(g.logs.String(), `"ticket_enctype":"rc4-hmac"`) {
		t.Errorf("log does not name rc4-hmac:\n%s", g.logs.String())
	}
	cfg = baseConfig(r)
	cfg.Kerberos.SPNs = []string{"HTTP/rc4.example.test"}
	cfg.Kerberos.Keytabs = []string{r.RC4Keytab}
	cfg.Kerberos.Enctypes = append(cfg.Kerberos.Enctypes, 23)
	g2 := startGateway(t, cfg)
	res = g2.curl(r, cc, r.Krb5ConfRC4, g2.url("rc4.example.test", "/whoami"))
	if res.status != 200 {
		t.Fatalf("RC4 allowed but got %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
	if id := decodeIdentity(t, res.body); id.Principal != "alice@EXAMPLE.TEST" {
		t.Errorf("identity %+v", id)
	}
}

func TestNTLMIsRefusedAsNTLMOffered(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	// An NTLM NEGOTIATE_MESSAGE (type 1), as a Windows client sends when it has no
	// Kerberos ticket for the SPN.
	ntlm := append([]byte("NTLMSSP\x00\x01\x00\x00\x00"), 0x97, 0x82, 0x08, 0xe2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x00, 0x63, 0x45, 0, 0, 0, 0x0f)
	wrapped := spnegoInit(t, []string{"1.3.6.1.4.1.311.2.2.10"}, ntlm)
	for name, h := range map[string]string{
		"raw NTLMSSP":         "Negotiate " + base64.StdEncoding.EncodeToString(ntlm),
		"NTLMSSP in SPNEGO":   "Negotiate " + base64.StdEncoding.EncodeToString(wrapped),
		"NTLM scheme":         "NTLM " + base64.StdEncoding.EncodeToString(ntlm),
		"NTLM mech, no token": "Negotiate " + base64.StdEncoding.EncodeToString(spnegoInit(t, []string{"1.3.6.1.4.1.311.2.2.10"}, nil)),
	} {
		t.Run(name, func(t *testing.T) {
			resp := g.get("/whoami", h)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantReason(t, resp, 401, "ntlm_offered")
			if !strings.Contains(string(body), "NTLM") {
				t.Errorf("page does not explain NTLM: %s", body)
			}
		})
	}
}

func TestDaveWithManyGroupsSignsIn(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	res := g.curl(r, r.Kinit(t, "dave"), "", g.url("sso.example.test", "/whoami"))
	if res.status != 200 {
		t.Fatalf("status %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
	id := decodeIdentity(t, res.body)
	if len(id.Groups) < 120 {
		t.Errorf("dave has %d groups, want ≥ 120", len(id.Groups))
	}
}

func TestTokenTooLarge(t *testing.T) {
	r := testrealm.Require(t)
	cfg := baseConfig(r)
	cfg.Kerberos.MaxTokenBytes = 2500
	g := startGateway(t, cfg)
	// dave's real token (130 groups) is about 3.3 KB of base64, alice's about 1.9 KB.
	res := g.curl(r, r.Kinit(t, "dave"), "", g.url("sso.example.test", "/whoami"))
	if res.status != 431 || res.headers.Get("Kerbgate-Reason") != "token_too_large" {
		t.Fatalf("got %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
	// Alice's small token still fits.
	res = g.curl(r, r.Kinit(t, "alice"), "", g.url("sso.example.test", "/whoami"))
	if res.status != 200 {
		t.Fatalf("alice: %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
}

func TestReasonHeaderOnlyWhenExposed(t *testing.T) {
	r := testrealm.Require(t)
	cfg := baseConfig(r)
	cfg.Log.ExposeReasons = false
	g := startGateway(t, cfg)
	resp := g.get("/whoami", "Negotiate !!!")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Kerbgate-Reason") != "" || strings.Contains(string(body), "malformed_token") {
		t.Fatalf("reason exposed: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if !strings.Contains(g.logs.String(), `"reason":"malformed_token"`) {
		t.Error("refusal not logged with its reason")
	}
	m := g.get("/metrics", "")
	mb, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if !strings.Contains(string(mb), `kerbgate_refusals_total{reason="malformed_token"} 1`) {
		t.Errorf("refusal not counted:\n%s", grepLines(string(mb), "kerbgate_refusals_total"))
	}
}

// TestKeyVersionRotation changes svc-gw's password, as an administrator would, and
// restores it afterwards (with a new kvno, and the exported keytabs refreshed).
func TestKeyVersionRotation(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, true)
	const spn = "HTTP/sso.example.test"
	dir := t.TempDir()
	oldKeytab, newKeytab := filepath.Join(dir, "old.keytab"), filepath.Join(dir, "new.keytab")
	r.ExportKeytab(t, spn, oldKeytab)
	oldKVNO := r.KVNO(t, "svc-gw")

	cfg := baseConfig(r)
	cfg.Kerberos.Keytabs = []string{oldKeytab}
	g := startGateway(t, cfg)
	oldTicket := r.Kinit(t, "alice")
	if res := g.curl(r, oldTicket, "", g.url("sso.example.test", "/whoami")); res.status != 200 {
		t.Fatalf("before rotation: %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}

	r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword=SvcGw#Rotated1")
	t.Cleanup(func() {
		r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword="+testrealm.Password("svc-gw"))
		r.ExportKeytab(t, spn, r.GatewayKeytab)
		r.ExportKeytab(t, "svc-gw", r.GatewayAccountKeytab)
	})
	newKVNO := r.KVNO(t, "svc-gw")
	if newKVNO == oldKVNO {
		t.Fatalf("kvno did not change (%d)", newKVNO)
	}
	newTicket := r.Kinit(t, "alice")
	res := g.curl(r, newTicket, "", g.url("sso.example.test", "/whoami"))
	if res.status != 401 || res.headers.Get("Kerbgate-Reason") != "kvno_not_in_keytab" {
		t.Fatalf("after rotation: %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
	facts := fmt.Sprintf(`"ticket_kvno":%d,"keytab_kvnos":"%d"`, newKVNO, oldKVNO)
	if !strings.Contains(g.logs.String(), facts) {
		t.Errorf("log does not name both key versions (%s):\n%s", facts, g.logs.String())
	}

	// The administrator exports the new keys next to the old ones: tickets of both
	// versions are accepted. curl reuses each cache's service ticket.
	r.ExportKeytab(t, spn, newKeytab)
	cfg.Kerberos.Keytabs = []string{oldKeytab, newKeytab}
	g2 := startGateway(t, cfg)
	for name, cc := range map[string]string{"old": oldTicket, "new": newTicket} {
		res := g2.curl(r, cc, "", g2.url("sso.example.test", "/whoami"))
		if res.status != 200 {
			t.Errorf("%s ticket with both keytabs: %d %q", name, res.status, res.headers.Get("Kerbgate-Reason"))
		}
	}
	if n := strings.Count(g2.logs.String(), "request refused"); n != 0 {
		t.Errorf("%d refusals with both keytabs", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var _ = json.Marshal
var _ = os.Getenv
var _ = http.StatusOK
var _ identity.Identity

// A keytab replaced on disk is loaded without a restart, and the keys it no longer
// holds stay usable for kerberos.retain_old_keys: after the service account's
// password changes, tickets of both key versions are accepted and no sign-in fails.
func TestKeytabHotReloadAcrossPasswordChange(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, true)
	const spn = "HTTP/sso.example.test"
	keytab := filepath.Join(t.TempDir(), "svc-gw.keytab")
	r.ExportKeytab(t, spn, keytab)
	oldKVNO := r.KVNO(t, "svc-gw")

	cfg := baseConfig(r)
	cfg.Kerberos.Keytabs = []string{keytab}
	cfg.Kerberos.KeytabReloadInterval = 100 * time.Millisecond
	cfg.Kerberos.RetainOldKeys = time.Hour
	g := startGateway(t, cfg)
	oldTicket := r.Kinit(t, "alice")
	if res := g.curl(r, oldTicket, "", g.url("sso.example.test", "/whoami")); res.status != 200 {
		t.Fatalf("before rotation: %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}

	r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword=SvcGw#Rotated2")
	t.Cleanup(func() {
		r.SambaTool(t, "user", "setpassword", "svc-gw", "--newpassword="+testrealm.Password("svc-gw"))
		r.ExportKeytab(t, spn, r.GatewayKeytab)
		r.ExportKeytab(t, "svc-gw", r.GatewayAccountKeytab)
	})
	newKVNO := r.KVNO(t, "svc-gw")
	// The administrator replaces the file with one holding only the new key.
	r.ExportKeytab(t, spn, keytab)
	deadline := time.Now().Add(10 * time.Second)
	for {
		kvnos := g.srv.Acceptor.Keyring().KVNOs(spn, "EXAMPLE.TEST")
		if len(kvnos) == 2 && kvnos[0] == oldKVNO && kvnos[1] == newKVNO {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyring holds kvnos %v, want [%d %d]", kvnos, oldKVNO, newKVNO)
		}
		time.Sleep(50 * time.Millisecond)
	}
	newTicket := r.Kinit(t, "alice")
	for name, cc := range map[string]string{"old": oldTicket, "new": newTicket} {
		if res := g.curl(r, cc, "", g.url("sso.example.test", "/whoami")); res.status != 200 {
			t.Errorf("%s ticket after reload: %d %q", name, res.status, res.headers.Get("Kerbgate-Reason"))
		}
	}
	if n := strings.Count(g.logs.String(), "request refused"); n != 0 {
		t.Errorf("%d refusals across the rotation", n)
	}
	if !strings.Contains(g.logs.String(), "keytabs reloaded") {
		t.Errorf("no reload log line")
	}

	// A broken file keeps the current keys.
	mustWriteFile(t, keytab, "not a keytab")
	if _, err := g.srv.Keys.Check(); err == nil {
		t.Fatal("a broken keytab loaded")
	}
	if res := g.curl(r, newTicket, "", g.url("sso.example.test", "/whoami")); res.status != 200 {
		t.Errorf("after a broken keytab: %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
}

// Item 8: a real MIT client limited to RC4 gets an RC4 session key (with an AES
// ticket, since svc-gw allows AES): kerbgate's AES-only policy refuses it.
func TestRC4SessionKeyFromRealClientIsRefusedUnlessAllowed(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	g := startGateway(t, baseConfig(r))
	cc := r.KinitConf(t, "alice", r.Krb5ConfRC4)
	res := g.curl(r, cc, r.Krb5ConfRC4, g.url("sso.example.test", "/whoami"))
	if res.status != 401 || res.headers.Get("Kerbgate-Reason") != "enctype_not_allowed" {
		t.Fatalf("got %d %q, want 401 enctype_not_allowed\n%s", res.status, res.headers.Get("Kerbgate-Reason"), res.body)
	}
	if l := g.logs.String(); !strings.Contains(l, `"session_enctype":"rc4-hmac"`) || !strings.Contains(l, `"ticket_enctype":"aes256-cts-hmac-sha1-96"`) {
		t.Errorf("log does not name the session key's enctype:\n%s", grepLines(l, "enctype_not_allowed"))
	}
	cfg := baseConfig(r)
	cfg.Kerberos.Enctypes = append(cfg.Kerberos.Enctypes, 23)
	g2 := startGateway(t, cfg)
	if res := g2.curl(r, cc, r.Krb5ConfRC4, g2.url("sso.example.test", "/whoami")); res.status != 200 {
		t.Fatalf("rc4-hmac allowed but got %d %q", res.status, res.headers.Get("Kerbgate-Reason"))
	}
}
