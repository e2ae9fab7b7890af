package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/testrealm"
)

// epaWorld is what the Extended Protection tests share: a CA, kerbgate's certificate
// and a load balancer's (both for sso.example.test), and alice with a service ticket.
type epaWorld struct {
	r     *testrealm.Realm
	ca    *testrealm.TestCA
	kg    *testrealm.ServerCert // kerbgate's own certificate
	lb    *testrealm.ServerCert // the load balancer's
	alice string                // ccache
}

func newEPAWorld(t *testing.T) *epaWorld {
	t.Helper()
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	ca := testrealm.NewTestCA(t)
	w := &epaWorld{r: r, ca: ca,
		kg:    ca.Issue(t, "kerbgate", "sso.example.test"),
		lb:    ca.Issue(t, "balancer", "sso.example.test"),
		alice: r.Kinit(t, "alice")}
	r.Kvno(t, w.alice, "HTTP/sso.example.test")
	return w
}

// gateway starts kerbgate with policy; with TLS when tlsOn.
func (w *epaWorld) gateway(t *testing.T, policy epa.Policy, tlsOn bool, edit ...func(*config.Config)) *gateway {
	t.Helper()
	cfg := baseConfig(w.r)
	if policy.SPNs == nil {
		policy.SPNs = cfg.Kerberos.SPNs
	}
	cfg.EPA.Policy = policy
	if tlsOn {
		cfg.TLS = config.TLS{Enabled: true, CertFile: w.kg.CertFile, KeyFile: w.kg.KeyFile}
	}
	for _, e := range edit {
		e(cfg)
	}
	return startGateway(t, cfg)
}

// py runs the python3-gssapi channel-binding client (testdata/cbt_client.py).
func (w *epaWorld) py(t *testing.T, url, mode string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "testdata/cbt_client.py", url, mode, w.ca.CAFile)
	cmd.Env = w.r.Env(w.alice)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cbt_client.py %s %s: %v\n%s", url, mode, err, out)
	}
	return strings.TrimSpace(string(out))
}

// curlTLS is curl --negotiate (no channel bindings) trusting the test CA.
func (w *epaWorld) curl(t *testing.T, g *gateway, url string) curlResult {
	t.Helper()
	return g.curl(w.r, w.alice, "", url, "--cacert", w.ca.CAFile)
}

// goClient sends a token built by the Go initiator (exact control of the
// authenticator) to url, over TLS trusting the test CA when url is https.
func (w *epaWorld) goClient(t *testing.T, ccache, spn, url string, o initiator.Options) *http.Response {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(w.ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", negotiateHeader(t, ccache, spn, o))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// cbtSignal is the authenticator authorization data by which Windows clients say
// they support channel binding: AD-IF-RELEVANT { KERB_AUTH_DATA_AP_OPTIONS (143):
// KERB_AP_OPTIONS_CBT (0x4000) } (MS-KILE §2.2.8, §3.2.5.8).
func cbtSignal(t *testing.T) []wire.AuthorizationData {
	t.Helper()
	var opts [4]byte
	binary.LittleEndian.PutUint32(opts[:], 0x4000)
	inner, err := wire.MarshalAuthorizationData([]wire.AuthorizationData{{Type: 143, Data: opts[:]}})
	if err != nil {
		t.Fatal(err)
	}
	return []wire.AuthorizationData{{Type: 1, Data: inner}}
}

// someBindings is a non-zero Bnd for a channel nobody is on.
var someBindings = func() []byte { b := epa.BindingHash(epa.Binding("tls-server-end-point:elsewhere")); return b[:] }()

func (g *gateway) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label, value) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func wantLine(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

const (
	ok200       = "status=200 reason=- alice=1 mutual=True"
	cbtMismatch = "status=401 reason=cbt_mismatch alice=0 mutual=False"
	cbtMissing  = "status=401 reason=cbt_missing alice=0 mutual=False"
)

func TestChannelBindingAllowOverTLS(t *testing.T) {
	w := newEPAWorld(t)
	g := w.gateway(t, epa.Policy{TokenChecking: epa.Allow}, true)
	url := g.url("sso.example.test", "/whoami")

	// An MIT client binding to the certificate it was served.
	wantLine(t, w.py(t, url, "peer"), ok200)
	if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "channel_bound"); n != 1 {
		t.Errorf("channel_bound = %v, want 1", n)
	}
	// Bound to another certificate (a token made for a man in the middle's TLS
	// connection, relayed here).
	wantLine(t, w.py(t, url, "file:"+w.lb.CertFile), cbtMismatch)
	if !strings.Contains(g.logs.String(), `"expected_bindings_md5"`) || !strings.Contains(g.logs.String(), `"served_certificate_hash"`) {
		t.Errorf("cbt_mismatch log line lacks the facts:\n%s", g.logs.String())
	}
	// No bindings: a client that cannot bind passes under Allow, like curl.
	wantLine(t, w.py(t, url, "none"), ok200)
	if c := w.curl(t, g, url); c.status != 200 || !strings.Contains(c.body, "alice@EXAMPLE.TEST") {
		t.Fatalf("curl over TLS under Allow: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "unbound_allowed"); n != 2 {
		t.Errorf("unbound_allowed = %v, want 2", n)
	}
	// A client that says it supports channel binding but sent none made its token for
	// a plain-HTTP connection: refused even under Allow.
	resp := w.goClient(t, w.alice, "HTTP/sso.example.test", url, initiator.Options{AuthorizationData: cbtSignal(t)})
	wantReason(t, resp, 401, "cbt_missing")
	if n := g.counter(t, "kerbgate_refusals_total", "reason", "cbt_mismatch"); n != 1 {
		t.Errorf("refusals{cbt_mismatch} = %v, want 1", n)
	}
	if n := g.counter(t, "kerbgate_refusals_total", "reason", "cbt_missing"); n != 1 {
		t.Errorf("refusals{cbt_missing} = %v, want 1", n)
	}
	// With the signal and the right bindings, the Go client passes too.
	served := g.srv.TLS.Current().Binding
	h := epa.BindingHash(served)
	resp = w.goClient(t, w.alice, "HTTP/sso.example.test", url, initiator.Options{AuthorizationData: cbtSignal(t), ChannelBindingHash: h[:]})
	if resp.StatusCode != 200 {
		t.Fatalf("Go client with bindings: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
}

func TestChannelBindingRequireOverTLS(t *testing.T) {
	w := newEPAWorld(t)
	g := w.gateway(t, epa.Policy{TokenChecking: epa.Require}, true)
	url := g.url("sso.example.test", "/whoami")
	wantLine(t, w.py(t, url, "peer"), ok200)
	wantLine(t, w.py(t, url, "none"), cbtMissing)
	if c := w.curl(t, g, url); c.status != 401 || c.headers.Get("Kerbgate-Reason") != "cbt_missing" {
		t.Fatalf("curl (no bindings) under Require: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	wantLine(t, w.py(t, url, "file:"+w.lb.CertFile), cbtMismatch)
	// The refusal page tells a person what to do.
	if !strings.Contains(g.logs.String(), `"reason":"cbt_missing"`) {
		t.Errorf("no cbt_missing log line:\n%s", g.logs.String())
	}
}

// Debian's Chromium sends no channel bindings over HTTPS (checksum Bnd all zeros, no
// KERB_AP_OPTIONS_CBT): it signs in under Allow and is refused under Require.
func TestChromiumSendsNoChannelBindings(t *testing.T) {
	w := newEPAWorld(t)
	for _, mode := range []epa.TokenChecking{epa.Allow, epa.Require} {
		t.Run(mode.String(), func(t *testing.T) {
			g := w.gateway(t, epa.Policy{TokenChecking: mode}, true)
			page := chromium(t, w.r, w.alice, g.url("sso.example.test", "/whoami"), "--ignore-certificate-errors")
			bound := g.counter(t, "kerbgate_epa_checks_total", "outcome", "channel_bound")
			unbound := g.counter(t, "kerbgate_epa_checks_total", "outcome", "unbound_allowed")
			missing := g.counter(t, "kerbgate_refusals_total", "reason", "cbt_missing")
			t.Logf("Chromium under %s: channel_bound=%v unbound_allowed=%v cbt_missing=%v", mode, bound, unbound, missing)
			if bound != 0 {
				t.Errorf("Chromium sent channel bindings (channel_bound=%v): update docs/epa.md", bound)
			}
			switch mode {
			case epa.Allow:
				if !strings.Contains(page, `"user": "alice@EXAMPLE.TEST"`) || unbound != 1 {
					t.Fatalf("Chromium under Allow: unbound_allowed=%v page:\n%s", unbound, page)
				}
			case epa.Require:
				if strings.Contains(page, `"user": "alice@EXAMPLE.TEST"`) || missing == 0 {
					t.Fatalf("Chromium under Require: cbt_missing=%v page:\n%s", missing, page)
				}
			}
		})
	}
}

// sharedAccountSPNs registers HTTP/other.example.test and the dotless HTTP/sso on
// svc-gw (the shared service account: its one key opens tickets for every SPN on
// it), exports a keytab naming them, and gets alice tickets for both.
var sharedSPNsOnce sync.Mutex

func (w *epaWorld) sharedAccountSPNs(t *testing.T) []string {
	t.Helper()
	sharedSPNsOnce.Lock()
	defer sharedSPNsOnce.Unlock()
	registered := map[string]bool{}
	for _, l := range strings.Split(w.r.SambaTool(t, "spn", "list", "svc-gw"), "\n") {
		registered[strings.TrimSpace(l)] = true
	}
	dir := t.TempDir()
	var keytabs []string
	for i, spn := range []string{"HTTP/other.example.test", "HTTP/sso"} {
		if !registered[spn] {
			w.r.SambaTool(t, "spn", "add", spn, "svc-gw")
			t.Cleanup(func() {
				if out, err := exec.Command("samba-tool", "spn", "delete", spn, "svc-gw", "-s", w.r.SmbConf).CombinedOutput(); err != nil {
					t.Logf("samba-tool spn delete %s: %v\n%s", spn, err, out)
				}
			})
		}
		kt := filepath.Join(dir, fmt.Sprintf("shared%d.keytab", i))
		w.r.ExportKeytab(t, spn, kt)
		keytabs = append(keytabs, kt)
		w.r.Kvno(t, w.alice, spn)
	}
	return keytabs
}

func TestServiceBinding(t *testing.T) {
	w := newEPAWorld(t)
	shared := w.sharedAccountSPNs(t)
	withShared := func(c *config.Config) {
		c.Kerberos.Keytabs = append(c.Kerberos.Keytabs, shared...)
		c.Kerberos.SPNs = []string{"HTTP/sso.example.test", "HTTP/other.example.test", "HTTP/sso"}
	}
	ssoOnly := []string{"HTTP/sso.example.test"}
	send := func(g *gateway, spn string) *http.Response {
		return w.goClient(t, w.alice, spn, g.url("127.0.0.1", "/whoami"), initiator.Options{})
	}

	// Without Extended Protection, the shared key opens a ticket for the other name:
	// a token obtained for other.example.test can be relayed here.
	g := w.gateway(t, epa.Policy{TokenChecking: epa.None}, false, withShared)
	if resp := send(g, "HTTP/other.example.test"); resp.StatusCode != 200 {
		t.Fatalf("EPA off, other SPN: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}

	// Service binding (plain HTTP, no channel): only listed names pass.
	g = w.gateway(t, epa.Policy{TokenChecking: epa.Allow, SPNs: ssoOnly}, false, withShared)
	if resp := send(g, "HTTP/sso.example.test"); resp.StatusCode != 200 {
		t.Fatalf("listed SPN: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	wantReason(t, send(g, "HTTP/other.example.test"), 401, "spn_mismatch")
	wantReason(t, send(g, "HTTP/sso"), 401, "spn_dotless")
	if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "service_bound"); n != 1 {
		t.Errorf("service_bound = %v, want 1", n)
	}

	// Listing it lets it through.
	g = w.gateway(t, epa.Policy{TokenChecking: epa.Allow, SPNs: []string{"HTTP/sso.example.test", "HTTP/other.example.test"}}, false, withShared)
	if resp := send(g, "HTTP/other.example.test"); resp.StatusCode != 200 {
		t.Fatalf("listed other SPN: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}

	// NoServiceNameCheck: the name check always succeeds (dotless names still need
	// AllowDotlessSpn).
	g = w.gateway(t, epa.Policy{TokenChecking: epa.Allow, Flags: epa.NoServiceNameCheck, SPNs: ssoOnly}, false, withShared)
	if resp := send(g, "HTTP/other.example.test"); resp.StatusCode != 200 {
		t.Fatalf("NoServiceNameCheck: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	wantReason(t, send(g, "HTTP/sso"), 401, "spn_dotless")

	// AllowDotlessSpn with the NetBIOS name listed.
	g = w.gateway(t, epa.Policy{TokenChecking: epa.Allow, Flags: epa.AllowDotlessSpn, SPNs: []string{"HTTP/sso.example.test", "HTTP/sso"}}, false, withShared)
	if resp := send(g, "HTTP/sso"); resp.StatusCode != 200 {
		t.Fatalf("AllowDotlessSpn: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}

	// A dotless name listed without the flag is a configuration error.
	cfg := baseConfig(w.r)
	withShared(cfg)
	cfg.Store.Path = filepath.Join(t.TempDir(), "kg.db")
	cfg.EPA.Policy = epa.Policy{TokenChecking: epa.Allow, SPNs: []string{"HTTP/sso"}}
	if _, err := newFromConfig(cfg, slog.New(slog.DiscardHandler), Options{}); err == nil || !strings.Contains(err.Error(), "AllowDotlessSpn") {
		t.Fatalf("dotless epa.spns without AllowDotlessSpn: %v", err)
	}
}

// IIS documents five deployments (seed "<spn>", "Extended Protection scenarios"); each
// runs here with HAProxy where there is a proxy, with the check IIS applies, and a
// relayed or mis-targeted token is refused.
func TestIISScenarios(t *testing.T) {
	w := newEPAWorld(t)
	shared := w.sharedAccountSPNs(t)
	withShared := func(c *config.Config) {
		c.Kerberos.Keytabs = append(c.Kerberos.Keytabs, shared...)
		c.Kerberos.SPNs = []string{"HTTP/sso.example.test", "HTTP/other.example.test"}
	}
	ssoOnly := []string{"HTTP/sso.example.test"}
	proxied := func(h *testrealm.HAProxy, scheme string) string {
		return fmt.Sprintf("%s://sso.example.test:%d/whoami", scheme, h.Port)
	}

	t.Run("1 client to server over HTTP: Proxy,ProxyCohosting, service binding", func(t *testing.T) {
		g := w.gateway(t, epa.Policy{TokenChecking: epa.Allow, Flags: epa.Proxy | epa.ProxyCohosting, SPNs: ssoOnly}, false, withShared)
		url := g.url("sso.example.test", "/whoami")
		if c := w.curl(t, g, url); c.status != 200 {
			t.Fatalf("curl: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
		}
		wantLine(t, w.py(t, url, "none"), ok200)
		wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, initiator.Options{}), 401, "spn_mismatch")
		if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "service_bound"); n != 2 {
			t.Errorf("service_bound = %v, want 2", n)
		}
	})

	t.Run("2 client to server over SSL: None, channel binding", func(t *testing.T) {
		g := w.gateway(t, epa.Policy{TokenChecking: epa.Require}, true, withShared)
		url := g.url("sso.example.test", "/whoami")
		wantLine(t, w.py(t, url, "peer"), ok200)
		wantLine(t, w.py(t, url, "file:"+w.lb.CertFile), cbtMismatch)
		// Through a TCP (TLS passthrough) balancer the client still sees kerbgate's
		// certificate, so exact channel binding works unchanged.
		h := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTCP, Backends: []string{fmt.Sprintf("127.0.0.1:%d", g.port)}})
		wantLine(t, w.py(t, proxied(h, "https"), "peer"), ok200)
		wantLine(t, w.py(t, proxied(h, "https"), "file:"+w.lb.CertFile), cbtMismatch)
		// The service name is not what protects this scenario: a token for the other
		// name on the shared account, bound to this channel, passes, as in IIS (the
		// channel proves the endpoint); unbound, it is refused.
		served := epa.BindingHash(g.srv.TLS.Current().Binding)
		if resp := w.goClient(t, w.alice, "HTTP/other.example.test", url, initiator.Options{ChannelBindingHash: served[:]}); resp.StatusCode != 200 {
			t.Fatalf("bound token for the other SPN: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, initiator.Options{}), 401, "cbt_missing")
		if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "channel_bound"); n != 3 {
			t.Errorf("channel_bound = %v, want 3", n)
		}
	})

	t.Run("3 through a proxy, HTTP all the way: Proxy,ProxyCohosting", func(t *testing.T) {
		g := w.gateway(t, epa.Policy{TokenChecking: epa.Allow, Flags: epa.Proxy | epa.ProxyCohosting, SPNs: ssoOnly}, false, withShared)
		h := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyHTTP, Backends: []string{fmt.Sprintf("127.0.0.1:%d", g.port)}})
		if c := w.curl(t, g, proxied(h, "http")); c.status != 200 || !strings.Contains(c.body, "alice@EXAMPLE.TEST") {
			t.Fatalf("curl through HAProxy: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
		}
		wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", proxied(h, "http"), initiator.Options{}), 401, "spn_mismatch")
	})

	t.Run("4 through a proxy, SSL all the way: Proxy", func(t *testing.T) {
		g := w.gateway(t, epa.Policy{TokenChecking: epa.Require, Flags: epa.Proxy, SPNs: ssoOnly}, true, withShared)
		h := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTLSReencrypt, Cert: w.lb,
			BackendCAFile: w.ca.CAFile, Backends: []string{fmt.Sprintf("127.0.0.1:%d", g.port)}})
		url := proxied(h, "https")
		// The client binds to HAProxy's certificate; kerbgate cannot compute that,
		// so it checks the bindings are present and the service name.
		wantLine(t, w.py(t, url, "peer"), ok200)
		wantLine(t, w.py(t, url, "none"), cbtMissing)
		wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, initiator.Options{ChannelBindingHash: someBindings}), 401, "spn_mismatch")
	})

	t.Run("5 SSL to the proxy, HTTP to the server (offload): Proxy", func(t *testing.T) {
		g := w.gateway(t, epa.Policy{TokenChecking: epa.Require, Flags: epa.Proxy, SPNs: ssoOnly}, false, withShared)
		h := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTLSOffload, Cert: w.lb,
			Backends: []string{fmt.Sprintf("127.0.0.1:%d", g.port)}})
		url := proxied(h, "https")
		wantLine(t, w.py(t, url, "peer"), ok200)
		if c := w.curl(t, g, url); c.status != 401 || c.headers.Get("Kerbgate-Reason") != "cbt_missing" {
			t.Fatalf("curl (no bindings) under Require behind offload: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
		}
		wantReason(t, w.goClient(t, w.alice, "HTTP/other.example.test", url, initiator.Options{ChannelBindingHash: someBindings}), 401, "spn_mismatch")
	})
}

// Beyond IIS: with the balancer's certificate configured, channel binding stays exact
// behind SSL offload.
func TestChannelBindingBehindTLSTerminatingBalancer(t *testing.T) {
	w := newEPAWorld(t)
	lbBinding, err := epa.ServerEndPoint(w.lb.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	g := w.gateway(t, epa.Policy{TokenChecking: epa.Require, ProxyBindings: []epa.Binding{lbBinding}}, false)
	h := testrealm.StartHAProxy(t, testrealm.HAProxyOptions{Mode: testrealm.HAProxyTLSOffload, Cert: w.lb,
		Backends: []string{fmt.Sprintf("127.0.0.1:%d", g.port)}})
	url := fmt.Sprintf("https://sso.example.test:%d/whoami", h.Port)
	wantLine(t, w.py(t, url, "peer"), ok200) // bound to HAProxy's certificate
	if n := g.counter(t, "kerbgate_epa_checks_total", "outcome", "channel_bound"); n != 1 {
		t.Errorf("channel_bound = %v, want 1", n)
	}
	wantLine(t, w.py(t, url, "file:"+w.kg.CertFile), cbtMismatch) // bound to any other certificate
	if c := w.curl(t, g, url); c.status != 401 || c.headers.Get("Kerbgate-Reason") != "cbt_missing" {
		t.Fatalf("curl under Require: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	// A token bound to the balancer's certificate but sent straight to kerbgate over
	// plain HTTP is accepted: the balancer's certificate is the channel clients see.
	// (Keep kerbgate's plain port off the clients' network in this deployment.)
}

// The certificate and key are reloaded when they change: new connections get the
// new certificate, and channel binding follows the certificate each connection was
// actually served.
func TestTLSCertificateReload(t *testing.T) {
	w := newEPAWorld(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	copyFile(t, w.kg.CertFile, certFile)
	copyFile(t, w.kg.KeyFile, keyFile)
	g := w.gateway(t, epa.Policy{TokenChecking: epa.Require}, true, func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
	})
	url := g.url("sso.example.test", "/whoami")

	// A connection opened before the change keeps its certificate.
	pool := x509.NewCertPool()
	pool.AddCert(w.ca.Cert)
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", g.url("sso.example.test", "/healthz"), nil)
	resp, err := old.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	oldSerial := resp.TLS.PeerCertificates[0].SerialNumber

	next := w.ca.Issue(t, "kerbgate-next", "sso.example.test")
	copyFile(t, next.KeyFile, keyFile)
	copyFile(t, next.CertFile, certFile)
	if changed, err := g.srv.TLS.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	wantLine(t, w.py(t, url, "peer"), ok200)
	wantLine(t, w.py(t, url, "file:"+w.kg.CertFile), cbtMismatch)

	// The old connection is still open and still served by its certificate.
	h := epa.BindingHash(mustBinding(t, w.kg.Leaf))
	req, _ = http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", negotiateHeader(t, w.alice, "HTTP/sso.example.test", initiator.Options{ChannelBindingHash: h[:]}))
	resp, err = old.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(oldSerial) != 0 || resp.StatusCode != 200 {
		t.Fatalf("old connection after reload: serial %v (was %v), status %d %s", resp.TLS.PeerCertificates[0].SerialNumber,
			oldSerial, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	// A broken file leaves the current certificate in place.
	mustWriteFile(t, certFile, "not a certificate")
	if _, err := g.srv.TLS.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	wantLine(t, w.py(t, url, "peer"), ok200)
}

func mustBinding(t *testing.T, c *x509.Certificate) epa.Binding {
	t.Helper()
	b, err := epa.ServerEndPoint(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
