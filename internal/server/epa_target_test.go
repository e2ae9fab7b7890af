package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// refusalText sends a token built by the Go initiator to g and returns the status,
// the reason header and the plain-text refusal page.
func refusalText(t *testing.T, g *gateway, ccache, spn string, o initiator.Options) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/whoami"), nil)
	req.Header.Set("Authorization", negotiateHeader(t, ccache, spn, o))
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Kerbgate-Reason"), string(body)
}

// A ticket's server name travels in clear (RFC 4120 §5.3): with a shared service
// account, a token alice made for HTTP/other.example.test can be relayed here with
// its server name rewritten to HTTP/sso.example.test, and the shared key opens it.
// A Windows client also sends the name it asked for inside the authenticator,
// encrypted with the session key (KERB_AUTH_DATA_CLIENT_TARGET, MS-KILE §3.2.5.8):
// when it is there, kerbgate checks that name, and refuses a ticket whose clear-text
// name differs from it.
func TestServiceBindingUsesAuthenticatorTarget(t *testing.T) {
	w := newEPAWorld(t)
	w.sharedAccountSPNs(t) // HTTP/other.example.test and HTTP/sso on svc-gw; alice has tickets for both
	ssoOnly := []string{"HTTP/sso.example.test"}
	// SSL offload at a proxy (IIS scenario 5): the service name is the only check.
	proxy := epa.Policy{TokenChecking: epa.Require, Flags: epa.Proxy, SPNs: ssoOnly}
	relayed := func(ticketFor, target string) initiator.Options {
		return initiator.Options{ChannelBindingHash: someBindings, TicketServerName: "HTTP/sso.example.test", TargetName: target}
	}

	g := w.gateway(t, proxy, false)
	url := g.url("127.0.0.1", "/whoami")

	// An honest Windows-style client passes.
	if resp := w.goClient(t, w.alice, "HTTP/sso.example.test", url, initiator.Options{ChannelBindingHash: someBindings,
		TargetName: "HTTP/sso.example.test@EXAMPLE.TEST"}); resp.StatusCode != 200 {
		t.Fatalf("Windows-style client for the right name: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}

	// (b) With the target name, the rewritten ticket is refused, naming both names.
	wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, relayed("HTTP/other.example.test", "HTTP/other.example.test@EXAMPLE.TEST")), 401, "spn_mismatch")
	for _, want := range []string{`"ticket_spn":"HTTP/sso.example.test"`, `"authenticator_target":"HTTP/other.example.test@EXAMPLE.TEST"`} {
		if !strings.Contains(g.logs.String(), want) {
			t.Errorf("refusal log lacks %s:\n%s", want, g.logs.String())
		}
	}
	// The whole class: a dotless name rewritten to a listed one is refused too.
	wantReason(t, w.goClient(t, w.alice, "HTTP/sso", url, relayed("HTTP/sso", "HTTP/sso@EXAMPLE.TEST")), 401, "spn_mismatch")

	// Without Extended Protection, kerberos.spns is checked against the same
	// authenticated name.
	g = w.gateway(t, epa.Policy{TokenChecking: epa.None}, false)
	url = g.url("127.0.0.1", "/whoami")
	wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, relayed("HTTP/other.example.test", "HTTP/other.example.test@EXAMPLE.TEST")), 401, "spn_mismatch")

	// (a)/(c) Without the target name (MIT, Heimdal, Chromium on Linux send none)
	// nothing in the AP-REQ tells the names apart: the relayed token passes. This is
	// the weakness docs/epa.md and the doctor describe, and the start-up warning names.
	g = w.gateway(t, proxy, false)
	url = g.url("127.0.0.1", "/whoami")
	if resp := w.goClient(t, w.alice, "HTTP/other.example.test", url, relayed("HTTP/other.example.test", "")); resp.StatusCode != 200 {
		t.Fatalf("relayed token without a target name: %d %s (the test's premise changed: update docs/epa.md)", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
}

// spn_mismatch comes from two settings: kerberos.spns (the acceptor) and epa.spns
// (service binding). The page and the log line name the one that refused.
func TestSPNMismatchNamesTheRefusingSetting(t *testing.T) {
	w := newEPAWorld(t)
	shared := w.sharedAccountSPNs(t)

	// kerberos.spns refuses.
	g := w.gateway(t, epa.Policy{TokenChecking: epa.None}, false)
	status, code, page := refusalText(t, g, w.alice, "HTTP/other.example.test", initiator.Options{})
	if status != 401 || code != "spn_mismatch" || !strings.Contains(page, "kerberos.spns") || strings.Contains(page, "epa.spns") {
		t.Fatalf("kerberos.spns refusal: %d %s\n%s", status, code, page)
	}
	if !strings.Contains(g.logs.String(), `"setting":"kerberos.spns"`) {
		t.Errorf("log does not name kerberos.spns:\n%s", g.logs.String())
	}

	// epa.spns refuses a name kerberos.spns accepts.
	g = w.gateway(t, epa.Policy{TokenChecking: epa.Allow, SPNs: []string{"HTTP/sso.example.test"}}, false, func(c *config.Config) {
		c.Kerberos.Keytabs = append(c.Kerberos.Keytabs, shared...)
		c.Kerberos.SPNs = []string{"HTTP/sso.example.test", "HTTP/other.example.test"}
	})
	status, code, page = refusalText(t, g, w.alice, "HTTP/other.example.test", initiator.Options{})
	if status != 401 || code != "spn_mismatch" || !strings.Contains(page, "epa.spns") || strings.Contains(page, "to kerberos.spns") {
		t.Fatalf("epa.spns refusal: %d %s\n%s", status, code, page)
	}
	if !strings.Contains(g.logs.String(), `"setting":"epa.spns"`) {
		t.Errorf("log does not name epa.spns:\n%s", g.logs.String())
	}
}

// When the account holding epa.spns also holds SPNs this gateway does not accept,
// service binding cannot tell a relayed token whose clear-text server name was
// rewritten from clients that send no authenticator target name: kerbgate warns at
// start-up, naming the account, the other SPNs and the fix.
func TestStartupWarnsWhenEPASPNsShareAnAccount(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	other := "HTTP/" + randomHost(t, "epashare")
	r.SambaTool(t, "spn", "add", other, "svc-gw")
	t.Cleanup(func() {
		if out, err := exec.Command("samba-tool", "spn", "delete", other, "svc-gw", "-s", r.SmbConf).CombinedOutput(); err != nil {
			t.Logf("samba-tool spn delete %s: %v\n%s", other, err, out)
		}
	})

	cfg := handoffConfig(t, r, "http://app.example.test:1")
	cfg.EPA.Policy = epa.Policy{TokenChecking: epa.Allow, Flags: epa.Proxy | epa.ProxyCohosting, SPNs: []string{"HTTP/sso.example.test"}}
	g := startGateway(t, cfg)
	var line map[string]any
	for _, l := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(l, `"check":"epa_shared_account"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil || line["level"] != "WARN" || line["account"] != "svc-gw" ||
		!strings.Contains(fmt.Sprint(line["other_spns"]), other) || !strings.Contains(fmt.Sprint(line["fix"]), "own service account") {
		t.Fatalf("no start-up warning naming svc-gw and %s:\n%s", other, g.logs.String())
	}

	// With EPA off there is no service binding to weaken: no warning.
	cfg = handoffConfig(t, r, "http://app.example.test:1")
	g = startGateway(t, cfg)
	if strings.Contains(g.logs.String(), "epa_shared_account") {
		t.Fatalf("warning without EPA:\n%s", g.logs.String())
	}
}
