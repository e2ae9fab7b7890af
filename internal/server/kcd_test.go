package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// kcdConfig publishes the Apache + mod_auth_gssapi application (HTTP/app.example.test)
// under sso.example.test with IWA pre-authentication, once per login identity, token
// format and send mode, with svc-gw (or another account) as kerbgate's delegation
// identity.
func kcdConfig(t testing.TB, r *testrealm.Realm, upstream, account, keytab string, kdcs ...string) *config.Config {
	t.Helper()
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	if len(kdcs) == 0 {
		kdcs = []string{"127.0.0.1:88"}
	}
	app := func(id, identity, format, send string) config.ProxyApp {
		return config.ProxyApp{ID: id, Host: "sso.example.test", PathPrefix: "/apps/" + id + "/", Upstream: mustURL(t, upstream),
			Timeout: 10 * time.Second, PreAuth: "iwa",
			Kerberos: &config.ProxyKerberos{SPN: "HTTP/app.example.test", LoginIdentity: identity, TokenFormat: format, Send: send, MaxReplayBody: 1 << 20}}
	}
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour,
		Delegation: config.Delegation{Keytab: keytab, Principal: account, KDCs: kdcs, TicketCacheSize: 1000},
		Apps: []config.ProxyApp{
			app("upnpart", "upn_user_part", "spnego", "always"),
			app("upn", "upn", "spnego", "always"),
			app("sam", "sam_account_name", "kerberos", "always"),
			app("lazy", "sam_account_name", "kerberos", "on_401"),
		}}
	return cfg
}

func TestProxyKCDToApache(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	g := startGateway(t, kcdConfig(t, r, apache.URL, "svc-gw", r.GatewayAccountKeytab))
	alice := r.Kinit(t, "alice")
	url := func(app string) string { return g.url("sso.example.test", "/apps/"+app+"/whoami") }

	// curl --negotiate as alice: signed in at kerbgate, delegated to Apache, which
	// sees alice — by each login identity, token format and send mode.
	for app, want := range map[string]string{
		"upnpart": "user=alice@EXAMPLE.TEST",
		"sam":     "user=alice@EXAMPLE.TEST",
		"lazy":    "user=alice@EXAMPLE.TEST",
		"upn":     "user=alice", // an enterprise name: alice@example.test as Samba's KDC keeps it
	} {
		c := g.curl(r, alice, "", url(app), "--data", "payload-"+app)
		if c.status != 200 || !strings.Contains(c.body, want) || !strings.Contains(c.body, "method=POST\nbody=payload-"+app) {
			t.Fatalf("%s: %d %s\n%s\napache: %s", app, c.status, c.headers.Get("Kerbgate-Reason"), c.body, apache.ErrorLog())
		}
		if c.headers.Get("X-User") == "" {
			t.Errorf("%s: no X-User from Apache", app)
		}
	}
	if l := g.logs.String(); !strings.Contains(l, `"msg":"kerberos delegation"`) || !strings.Contains(l, `"delegated_identity":"alice@example.test"`) ||
		!strings.Contains(l, `"delegated_identity":"alice"`) || !strings.Contains(l, `"preauth_identity":"alice@EXAMPLE.TEST"`) {
		t.Errorf("no audit events:\n%s", grepLines(l, "delegation"))
	}

	// Headless Chromium through the proxy.
	page := chromium(t, r, alice, url("sam"))
	if !strings.Contains(page, "user=alice@EXAMPLE.TEST") {
		t.Fatalf("chromium page:\n%s", page)
	}

	// 1000 requests by bob (proxy session cookie after the first): one S4U2Self and
	// one S4U2Proxy, read from /metrics.
	bob := r.Kinit(t, "bob")
	jar := filepath.Join(t.TempDir(), "jar")
	if c := g.curl(r, bob, "", url("upnpart"), "-c", jar); c.status != 200 || !strings.Contains(c.body, "user=bob@EXAMPLE.TEST") {
		t.Fatalf("bob: %d %s", c.status, c.body)
	}
	cookie := proxyCookie(t, jar)
	before := kdcRequests(t, g)
	client := &http.Client{}
	for i := 0; i < 999; i++ {
		req, _ := http.NewRequest("GET", url("upnpart"), nil)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "user=bob@EXAMPLE.TEST") {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	after := kdcRequests(t, g)
	if after["s4u2self"]-before["s4u2self"] != 0 || after["s4u2proxy"]-before["s4u2proxy"] != 0 {
		t.Errorf("999 more requests by bob made KDC requests: %v -> %v", before, after)
	}
	if after["as"] != 1 {
		t.Errorf("TGT requests: %v", after["as"])
	}
	t.Logf("KDC requests for all of the above: %v", after)
}

// proxyCookie reads the proxy session cookie from a curl cookie jar.
func proxyCookie(t testing.TB, jar string) *http.Cookie {
	t.Helper()
	raw, err := os.ReadFile(jar)
	if err != nil {
		t.Fatal(err)
	}
	b := string(raw)
	for _, l := range strings.Split(b, "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 7 && f[5] == "kerbgate_proxy" {
			return &http.Cookie{Name: f[5], Value: f[6]}
		}
	}
	t.Fatalf("no proxy cookie in %s", b)
	return nil
}

func kdcRequests(t *testing.T, g *gateway) map[string]float64 {
	out := map[string]float64{}
	for _, k := range []string{"as", "s4u2self", "s4u2proxy"} {
		out[k] = g.counter(t, "kerbgate_kdc_requests_total", "kind", k)
	}
	return out
}

// The administrator's mistakes reach the browser as a 502 page naming the reason,
// and the log names the AD attribute: delegation right removed, protocol transition
// off, KDC away.
func TestProxyDelegationFailuresAreNamed(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false) // signs in with the gateway keytab: no rotation meanwhile
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	alice := r.Kinit(t, "alice")

	// A delegation identity of its own, so that svc-gw stays as it is.
	svc := r.TempUser(t, "svckcd")
	r.SambaTool(t, "spn", "add", "HTTP/"+svc+".example.test", svc)
	r.SetEnctypes(t, svc, 24)
	r.SambaTool(t, "delegation", "for-any-protocol", svc, "on")
	r.SambaTool(t, "delegation", "add-service", svc, "HTTP/app.example.test")
	kt := filepath.Join(t.TempDir(), svc+".keytab")
	r.ExportKeytab(t, svc, kt)
	try := func() curlResult {
		g := startGateway(t, kcdConfig(t, r, apache.URL, svc, kt))
		c := g.curl(r, alice, "", g.url("sso.example.test", "/apps/sam/whoami"), "-H", "Accept: text/html")
		c.body += g.logs.String()
		return c
	}
	if c := try(); c.status != 200 {
		t.Fatalf("with delegation rights: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}

	r.SambaTool(t, "delegation", "del-service", svc, "HTTP/app.example.test")
	c := try()
	if c.status != 502 || c.headers.Get("Kerbgate-Reason") != "delegation_not_allowed" || !strings.Contains(c.body, "msDS-AllowedToDelegateTo") {
		t.Fatalf("without msDS-AllowedToDelegateTo: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}

	r.SambaTool(t, "delegation", "add-service", svc, "HTTP/app.example.test")
	r.SambaTool(t, "delegation", "for-any-protocol", svc, "off")
	c = try()
	if c.status != 502 || c.headers.Get("Kerbgate-Reason") != "protocol_transition_not_allowed" || !strings.Contains(c.body, "TRUSTED_TO_AUTH_FOR_DELEGATION") {
		t.Fatalf("without protocol transition: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}
}

// A KDC outage does not stop users whose tickets are cached; others get
// kdc_unreachable.
func TestProxyKDCOutage(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	kdc := newTCPProxy(t, "127.0.0.1:88")
	g := startGateway(t, kcdConfig(t, r, apache.URL, "svc-gw", r.GatewayAccountKeytab, kdc.addr))
	alice, bob := r.Kinit(t, "alice"), r.Kinit(t, "bob")
	url := g.url("sso.example.test", "/apps/upnpart/whoami")
	if c := g.curl(r, alice, "", url); c.status != 200 {
		t.Fatalf("warm-up: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	kdc.stop()
	if c := g.curl(r, alice, "", url); c.status != 200 || !strings.Contains(c.body, "user=alice@EXAMPLE.TEST") {
		t.Fatalf("cached user during the outage: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	if c := g.curl(r, bob, "", url); c.status != 502 || c.headers.Get("Kerbgate-Reason") != "kdc_unreachable" {
		t.Fatalf("uncached user during the outage: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}
}

// TestProxyIdentityHeadersBesideKCD: a proxy.apps[] route sends the identity headers
// (Entra's header-based SSO) beside the delegated ticket, and alone; a client's
// X-Auth-Request-User: admin reaches no upstream, whether or not its app sends
// headers.
func TestProxyIdentityHeadersBesideKCD(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	up := echoUpstream(t)
	cfg := kcdConfig(t, r, apache.URL, "svc-gw", r.GatewayAccountKeytab)
	withHeaders := cfg.Proxy.Apps[2] // sam: kerberos, sam_account_name
	withHeaders.ID, withHeaders.PathPrefix = "hdr", "/apps/hdr/"
	withHeaders.IdentityHeaders = config.IdentityHeaders{Headers: config.DefaultHeaders(), GroupNames: config.GroupNames{Max: config.DefaultGroupNamesMax}}
	alone := config.ProxyApp{ID: "alone", Host: "sso.example.test", PathPrefix: "/apps/alone/", Upstream: mustURL(t, up.URL), Timeout: 10 * time.Second,
		PreAuth: "iwa", IdentityHeaders: withHeaders.IdentityHeaders}
	cfg.Proxy.Apps = append(cfg.Proxy.Apps, withHeaders, alone)
	g := startGateway(t, cfg)
	bob := r.Kinit(t, "bob")
	url := func(app string) string { return g.url("sso.example.test", "/apps/"+app+"/whoami") }

	c := g.curl(r, bob, "", url("hdr"), "-H", "X-Auth-Request-User: admin")
	if c.status != 200 || !strings.Contains(c.body, "identity_header=bob\n") || !strings.Contains(c.body, "user=bob@EXAMPLE.TEST") {
		t.Fatalf("headers beside KCD: %d %s", c.status, c.body)
	}
	c = g.curl(r, bob, "", url("sam"), "-H", "X-Auth-Request-User: admin")
	if c.status != 200 || !strings.Contains(c.body, "identity_header=\n") || !strings.Contains(c.body, "user=bob@EXAMPLE.TEST") {
		t.Fatalf("an app without headers: %d %s", c.status, c.body)
	}
	c = g.curl(r, bob, "", url("alone"), "-H", "X-Auth-Request-User: admin", "-H", "X-Auth-Request-Groups: Domain Admins")
	h := decodeEcho(t, c.body).Headers
	if c.status != 200 || h.Get("X-Auth-Request-User") != "bob" || !slices.Contains(strings.Split(h.Get("X-Auth-Request-Groups"), ","), "staff") ||
		h.Get("Authorization") != "" {
		t.Fatalf("headers alone: %d %v", c.status, h)
	}
}
