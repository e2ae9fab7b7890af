package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/testrealm"
)

// docSnippet returns the fenced block of docs/forward-auth.md after
// "<!-- snippet: name -->": the tests run what the documentation shows.
func docSnippet(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/forward-auth.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- snippet: " + regexp.QuoteMeta(name) + " -->\n```[a-z]*\n(.*?)```")
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/forward-auth.md has no snippet %s", name)
	}
	return string(m[1])
}

// withAddresses puts the test's kerbgate and application addresses where the
// documentation has 127.0.0.1:8080 and 127.0.0.1:3000.
func withAddresses(snippet string, gateway int, upstream string) string {
	s := strings.ReplaceAll(snippet, "127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(gateway))
	return strings.ReplaceAll(s, "127.0.0.1:3000", strings.TrimPrefix(upstream, "http://"))
}

// faSetup is a gateway with forward-auth for app.example.test (any user, with an
// assertion) and rc4.example.test (staff only), Negotiate at the application's host
// (kerbgate holds HTTP/app.example.test's keys), one session for example.test.
type faSetup struct {
	g        *gateway
	cfg      *config.Config
	issuer   string
	upstream *httptest.Server
	clock    *atomic.Int64 // seconds added to the gateway's clock
}

func startForwardAuth(t testing.TB, r *testrealm.Realm, mods ...func(*config.Config)) *faSetup {
	t.Helper()
	r.LockGateway(t, false)
	port := testrealm.FreePort(t)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Listen.Address = "127.0.0.1:" + strconv.Itoa(port)
	cfg.Listen.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Kerberos.Keytabs = []string{r.GatewayKeytab, r.AppKeytab}
	cfg.Kerberos.SPNs = []string{testrealm.GatewaySPN, testrealm.AppSPN}
	keys := filepath.Join(t.TempDir(), "oidc-keys.json")
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	issuer := "http://sso.example.test:" + strconv.Itoa(port) + "/oidc"
	cfg.OIDCProvider = config.OIDCProvider{Enabled: true, Issuer: issuer, SigningKeysFile: keys,
		IDTokenTTL: 5 * time.Minute, AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: time.Hour}
	all := config.GroupNames{Max: config.DefaultGroupNamesMax}
	cfg.ForwardAuth = config.ForwardAuth{
		Enabled: true, CookieName: "kerbgate_auth", CookieDomain: "example.test", SessionTTL: time.Hour,
		SessionCacheTTL: config.DefaultSessionCacheTTL, ReturnDomains: []string{".example.test"}, RequireDirectory: true,
		SignInURL: "http://sso.example.test:" + strconv.Itoa(port) + "/forward-auth/sign-in",
		Hosts: []config.ForwardAuthHost{
			{Host: "app.example.test", SignIn: "negotiate", IdentityHeaders: config.IdentityHeaders{
				Headers: config.DefaultHeaders(), GroupNames: all, Assertion: &config.Assertion{Header: "X-Auth-Request-Assertion", TTL: 5 * time.Minute}}},
			{Host: "rc4.example.test", SignIn: "negotiate", AllowedGroups: []string{"staff"},
				IdentityHeaders: config.IdentityHeaders{Headers: config.DefaultHeaders(), GroupNames: all}},
			{Host: "rbcd.example.test", SignIn: "redirect", IdentityHeaders: config.IdentityHeaders{Headers: config.DefaultHeaders(), GroupNames: all}},
		},
	}
	for _, mod := range mods {
		mod(cfg)
	}
	s := &faSetup{cfg: cfg, issuer: issuer, upstream: echoUpstream(t), clock: &atomic.Int64{}}
	s.g = startGatewayWith(t, cfg, Options{Now: func() time.Time { return time.Now().Add(time.Duration(s.clock.Load()) * time.Second) }})
	return s
}

// nginx runs the documentation's nginx snippets in front of the echo upstream for
// app.example.test, rc4.example.test and rbcd.example.test (the last with the
// redirect lines).
func (s *faSetup) nginx(t testing.TB, documented bool) *testrealm.Nginx {
	t.Helper()
	server := withAddresses(docSnippet(t, "nginx-server"), s.g.port, s.upstream.URL)
	if !documented { // nginx's default buffers: the snippet less its buffer settings
		server = regexp.MustCompile(`(?m)^\s*proxy_buffer(s|_size) .*\n`).ReplaceAllString(server, "")
	}
	redirect := strings.Replace(server, "    auth_request /_kerbgate;\n",
		"    auth_request /_kerbgate;\n    auth_request_set $kerbgate_sign_in $upstream_http_location;\n    error_page 401 =302 $kerbgate_sign_in;\n", 1)
	c := testrealm.NginxConfig{Server: "    server_name app.example.test rc4.example.test;\n" + server +
		"  }\n  server {\n    listen 127.0.0.1:PORT;\n    server_name rbcd.example.test;\n" + redirect}
	c.HTTP = withAddresses(docSnippet(t, "nginx-http"), s.g.port, s.upstream.URL)
	if !documented { // the kerbgate upstream block only
		c.HTTP = regexp.MustCompile(`(?m)^large_client_header_buffers .*\n`).ReplaceAllString(c.HTTP, "")
	}
	return testrealm.StartNginxWith(t, c)
}

// caddy runs the documentation's Caddy snippet for the same hosts.
func (s *faSetup) caddy(t testing.TB) *testrealm.Caddy {
	t.Helper()
	site := withAddresses(docSnippet(t, "caddy"), s.g.port, s.upstream.URL)
	site = strings.Replace(site, "app.example.com {", "http://app.example.test:PORT, http://rc4.example.test:PORT {", 1)
	return testrealm.StartCaddy(t, site)
}

// sessionCookie returns the forward-auth cookie of a curl answer.
func faCookie(t testing.TB, res curlResult) string {
	t.Helper()
	for _, sc := range res.headers.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "kerbgate_auth=") {
			if !strings.Contains(sc, "Domain=example.test") || !strings.Contains(sc, "HttpOnly") {
				t.Errorf("cookie %q", sc)
			}
			v, _, _ := strings.Cut(sc, ";")
			return v
		}
	}
	t.Fatalf("no kerbgate_auth cookie in %v", res.headers)
	return ""
}

// plainGet sends GET url with a Cookie header and headers, no Kerberos.
func plainGet(t testing.TB, u, cookie string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

var forged = []string{"X-Auth-Request-User", "admin", "X-Auth-Request-Groups", "Domain Admins", "X-Auth-Request-Assertion", "forged"}

// TestForwardAuthNginx: Debian's nginx with the documented auth_request snippet, in
// front of an upstream that echoes its headers. alice signs in once with curl
// --negotiate and is alice to the upstream, never the admin she claims to be; her
// cookie serves every host under example.test; bob's groups include staff by name;
// a bad or expired cookie gets the Negotiate challenge again; dave's 130 groups
// pass with the documented buffers (and not without them).
func TestForwardAuthNginx(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	n := s.nginx(t, true)
	app := fmt.Sprintf("http://app.example.test:%d/page?x=1", n.Port)
	staff := fmt.Sprintf("http://rc4.example.test:%d/staff", n.Port)

	alice := r.Kinit(t, "alice")
	res := s.g.curl(r, alice, "", app, "-H", "X-Auth-Request-User: admin", "-H", "X-Auth-Request-Groups: Domain Admins")
	if res.status != 200 {
		t.Fatalf("alice: %d %v %s", res.status, res.headers, res.body)
	}
	e := decodeEcho(t, res.body)
	h := e.Headers
	if h.Get("X-Auth-Request-User") != "alice" || h.Get("X-Auth-Request-Sid") != r.SID(t, "alice") ||
		h.Get("X-Auth-Request-Preferred-Username") != "alice@example.test" || slices.Contains(h.Values("X-Auth-Request-Groups"), "Domain Admins") ||
		h.Get("Authorization") != "" || e.URI != "/page?x=1" {
		t.Fatalf("upstream saw %v %s", h, e.URI)
	}
	if !strings.HasPrefix(res.headers.Get("WWW-Authenticate"), "Negotiate ") {
		t.Errorf("no Negotiate answer token to the browser: %v", res.headers)
	}
	cookie := faCookie(t, res)

	// The cookie alone: no Negotiate, on this host and on another under example.test;
	// a forged header never reaches the upstream.
	resp, body := plainGet(t, app, cookie, forged...)
	if resp.StatusCode != 200 || decodeEcho(t, body).Headers.Get("X-Auth-Request-User") != "alice" {
		t.Fatalf("cookie: %d %s", resp.StatusCode, body)
	}
	if a := decodeEcho(t, body).Headers.Get("X-Auth-Request-Assertion"); a == "" || a == "forged" {
		t.Errorf("assertion %q", a)
	}
	resp, _ = plainGet(t, staff, cookie)
	if resp.StatusCode != 403 {
		t.Errorf("alice (not in staff) at the staff host: %d", resp.StatusCode)
	}

	// bob: signs in at app, then is let in at the staff host; his groups by name.
	res = s.g.curl(r, r.Kinit(t, "bob"), "", app)
	bob := faCookie(t, res)
	resp, body = plainGet(t, staff, bob)
	groups := strings.Split(decodeEcho(t, body).Headers.Get("X-Auth-Request-Groups"), ",")
	if resp.StatusCode != 200 || !slices.Contains(groups, "staff") || !slices.Contains(groups, "sso-users") {
		t.Fatalf("bob at the staff host: %d groups %v", resp.StatusCode, groups)
	}

	// A bad cookie, then an expired session: the Negotiate challenge again.
	for _, c := range []string{"kerbgate_auth=forged", cookie[:len(cookie)-2] + "xx"} {
		resp, _ = plainGet(t, app, c)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
			t.Errorf("cookie %q: %d %v", c, resp.StatusCode, resp.Header)
		}
	}
	s.clock.Store(int64((s.cfg.ForwardAuth.SessionTTL + time.Minute) / time.Second))
	resp, _ = plainGet(t, app, cookie)
	s.clock.Store(0)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("expired session: %d %v", resp.StatusCode, resp.Header)
	}

	// Every answer is counted by host and result; the refusal by its reason too.
	for _, c := range []struct {
		result string
		min    float64
	}{{"signed_in", 2}, {"ok", 2}, {"refused", 1}, {"challenge", 3}} {
		if n := s.g.counter(t, "kerbgate_forward_auth_requests_total", "result", c.result); n < c.min {
			t.Errorf("kerbgate_forward_auth_requests_total{result=%q} = %v, want at least %v", c.result, n, c.min)
		}
	}
	if n := s.g.counter(t, "kerbgate_refusals_total", "reason", "not_in_group"); n != 1 {
		t.Errorf("not_in_group refusals: %v", n)
	}

	// dave: a ticket with 130 groups, a header over nginx's default buffers.
	dave := r.Kinit(t, "dave")
	r.Kvno(t, dave, testrealm.AppSPN)
	res = s.g.curl(r, dave, "", app)
	dh := decodeEcho(t, res.body).Headers
	if res.status != 200 || len(strings.Split(dh.Get("X-Auth-Request-Groups"), ",")) < 130 {
		t.Fatalf("dave through the documented nginx: %d %s", res.status, res.body)
	}
	answer := 0
	for k, v := range dh {
		if strings.HasPrefix(k, "X-Auth-Request-") {
			answer += len(k) + len(v[0]) + 4
		}
	}
	t.Logf("dave: Authorization header %d bytes; kerbgate's identity headers %d bytes",
		len(negotiateHeader(t, dave, testrealm.AppSPN, initiator.Options{})), answer)
	plain := s.nginx(t, false)
	res = s.g.curl(r, dave, "", fmt.Sprintf("http://app.example.test:%d/", plain.Port))
	if res.status != 500 || !strings.Contains(plain.ErrorLog(), "upstream sent too big header") {
		t.Errorf("dave through nginx's default buffers: %d (the documented setting would not be needed)\n%s", res.status, plain.ErrorLog())
	}

	// sign_in redirect: nginx sends the browser to kerbgate's sign-in page, which
	// signs it in under kerbgate's own SPN and sends it back with the cookie.
	back := fmt.Sprintf("http://rbcd.example.test:%d/wiki?a=1", n.Port)
	resp, _ = plainGet(t, back, "")
	want := s.cfg.ForwardAuth.SignInURL + "?rd=" + url.QueryEscape(back)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != want {
		t.Fatalf("redirect host: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	jar := filepath.Join(t.TempDir(), "jar")
	res = s.g.curl(r, alice, "", back, "-L", "--location-trusted", "-c", jar, "-b", jar)
	if res.status != 200 || decodeEcho(t, res.body).Headers.Get("X-Auth-Request-User") != "alice" {
		t.Fatalf("alice via the sign-in page: %d %s", res.status, res.body)
	}
}

// TestForwardAuthNginxSignOut: through the documented nginx snippet, alice's cookie
// serves two hosts under example.test; a sign-out form on one of them (POST to
// /kerbgate/sign-out, proxied to kerbgate) ends the session, clears the
// parent-domain cookie and returns to rd, and the cookie kept by the client opens
// nothing on the other host any more. Another site's sign-out is refused first.
func TestForwardAuthNginxSignOut(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	n := s.nginx(t, true)
	app := fmt.Sprintf("http://app.example.test:%d", n.Port)
	other := fmt.Sprintf("http://rbcd.example.test:%d/wiki", n.Port)
	res := s.g.curl(r, r.Kinit(t, "alice"), "", app+"/page")
	if res.status != 200 {
		t.Fatalf("alice: %d %s", res.status, res.body)
	}
	cookie := faCookie(t, res)
	signedIn := func(when string) {
		t.Helper()
		resp, body := plainGet(t, other, cookie)
		if resp.StatusCode != 200 || decodeEcho(t, body).Headers.Get("X-Auth-Request-User") != "alice" {
			t.Fatalf("%s, the cookie at the other host: %d %s", when, resp.StatusCode, body)
		}
	}
	signedIn("before")

	signOut := func(origin string) *http.Response {
		t.Helper()
		form := url.Values{"rd": {app + "/bye"}}
		req, _ := http.NewRequest("POST", app+"/kerbgate/sign-out", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Origin", origin)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := signOut("http://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Kerbgate-Reason") != "cross_site_request" {
		t.Fatalf("another site's sign-out: %d %v", resp.StatusCode, resp.Header)
	}
	signedIn("after another site's sign-out")

	resp := signOut(app)
	cleared := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != app+"/bye" ||
		!strings.HasPrefix(cleared, "kerbgate_auth=;") || !strings.Contains(cleared, "Domain=example.test") || !strings.Contains(cleared, "Max-Age=0") {
		t.Fatalf("sign-out: %d %v", resp.StatusCode, resp.Header)
	}
	// The client kept the old cookie anyway: the other host sends it to sign in,
	// the first answers the Negotiate challenge.
	if resp, _ := plainGet(t, other, cookie); resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), s.cfg.ForwardAuth.SignInURL) {
		t.Errorf("the other host after sign-out: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := plainGet(t, app+"/page", cookie); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("the first host after sign-out: %d %v", resp.StatusCode, resp.Header)
	}
	if n := s.g.counter(t, "kerbgate_forward_auth_requests_total", "result", "signed_out"); n != 1 {
		t.Errorf("signed_out answers: %v", n)
	}
	if l := s.g.logs.String(); !strings.Contains(l, `"msg":"forward-auth sign-out","user":"alice@EXAMPLE.TEST"`) {
		t.Errorf("no sign-out log line for alice:\n%s", l)
	}
}

// TestForwardAuthCaddy: Debian's Caddy 2.6.2 with the documented forward_auth
// snippet: alice signs in with curl --negotiate (401, then 307 back with the cookie),
// is alice to the upstream and never admin; bob's groups include staff.
func TestForwardAuthCaddy(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	c := s.caddy(t)
	app := fmt.Sprintf("http://app.example.test:%d/page?x=1", c.Port)
	jar := filepath.Join(t.TempDir(), "jar")
	res := s.g.curl(r, r.Kinit(t, "alice"), "", app, "-L", "-c", jar, "-b", jar, "-H", "X-Auth-Request-User: admin", "-H", "X-Auth-Request-Groups: Domain Admins")
	if res.status != 200 {
		t.Fatalf("alice: %d %v %s", res.status, res.headers, res.body)
	}
	h := decodeEcho(t, res.body).Headers
	if h.Get("X-Auth-Request-User") != "alice" || h.Get("X-Auth-Request-Sid") != r.SID(t, "alice") || len(h.Values("X-Auth-Request-User")) != 1 ||
		strings.Contains(h.Get("X-Auth-Request-Groups"), "Domain Admins") || h.Get("Authorization") != "" {
		t.Fatalf("upstream saw %v", h)
	}
	jarBytes, _ := os.ReadFile(jar)
	m := regexp.MustCompile(`kerbgate_auth\t(\S+)`).FindSubmatch(jarBytes)
	if m == nil || !strings.Contains(string(jarBytes), ".example.test") {
		t.Fatalf("cookie jar %s", jarBytes)
	}
	cookie := "kerbgate_auth=" + string(m[1])
	resp, body := plainGet(t, app, cookie, forged...)
	if resp.StatusCode != 200 || decodeEcho(t, body).Headers.Get("X-Auth-Request-User") != "alice" || decodeEcho(t, body).Headers.Get("X-Auth-Request-Assertion") == "forged" {
		t.Fatalf("cookie: %d %s", resp.StatusCode, body)
	}
	resp, _ = plainGet(t, app, "", forged...)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("no cookie: %d %v", resp.StatusCode, resp.Header)
	}
	bobJar := filepath.Join(t.TempDir(), "bob-jar")
	res = s.g.curl(r, r.Kinit(t, "bob"), "", app, "-L", "-c", bobJar, "-b", bobJar)
	resp, body = plainGet(t, fmt.Sprintf("http://rc4.example.test:%d/", c.Port), "kerbgate_auth="+cookieFromJar(t, bobJar))
	if res.status != 200 || resp.StatusCode != 200 || !slices.Contains(strings.Split(decodeEcho(t, body).Headers.Get("X-Auth-Request-Groups"), ","), "staff") {
		t.Fatalf("bob at the staff host: %d %d %s", res.status, resp.StatusCode, body)
	}
}

func cookieFromJar(t testing.TB, jar string) string {
	b, _ := os.ReadFile(jar)
	m := regexp.MustCompile(`kerbgate_auth\t(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("cookie jar %s", b)
	}
	return string(m[1])
}

// TestForwardAuthBrowser: headless Chromium as alice sees alice through nginx and
// through Caddy.
func TestForwardAuthBrowser(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	n, c := s.nginx(t, true), s.caddy(t)
	alice := r.Kinit(t, "alice")
	for name, port := range map[string]int{"nginx": n.Port, "caddy": c.Port} {
		page := chromium(t, r, alice, fmt.Sprintf("http://app.example.test:%d/browser", port))
		if !strings.Contains(page, `"X-Auth-Request-User":["alice"]`) || !strings.Contains(page, r.SID(t, "alice")) {
			t.Errorf("%s: alice's page:\n%s", name, page)
		}
	}
}

// TestForwardAuthReturnURLsOffTheAllowlistAreRefused: the sign-in page refuses the
// handoff's hostile redirect list (less what only an exact comparison refuses)
// before any sign-in.
func TestForwardAuthReturnURLsOffTheAllowlistAreRefused(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	cc := r.Kinit(t, "alice")
	for _, rd := range append(hostileReturnURLs, "http://evil.example.test.evil.example/", "https://example.test.evil.example/") {
		res := s.g.curl(r, cc, "", s.g.url("sso.example.test", "/forward-auth/sign-in?rd="+url.QueryEscape(rd)))
		if res.status != 400 || res.headers.Get("Kerbgate-Reason") != "return_url_not_allowed" || res.headers.Get("Location") != "" {
			t.Errorf("%q: %d %v", rd, res.status, res.headers)
		}
	}
	if strings.Contains(s.g.logs.String(), "forward-auth sign-in") {
		t.Error("signed in for a hostile rd")
	}
	res := s.g.curl(r, cc, "", s.g.url("sso.example.test", "/forward-auth/sign-in?rd="+url.QueryEscape("http://app.example.test:9/x")))
	if res.status != 302 || res.headers.Get("Location") != "http://app.example.test:9/x" {
		t.Errorf("allowed rd: %d %v", res.status, res.headers)
	}
}

// TestForwardAuthAssertionVerifiesWithThePublishedJWKS: the assertion is checked
// by go-jose's jwt package against the JWKS the OpenID Provider publishes (found
// through discovery); after a key rotation the old assertion still verifies until
// it expires, and new ones are signed by the new key.
func TestForwardAuthAssertionVerifiesWithThePublishedJWKS(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, testrealm.AppSPN)
	assertion := func(g *gateway) string {
		req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/forward-auth/auth-request"), nil)
		req.Header.Set("X-Forwarded-Host", "app.example.test:8443")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Authorization", negotiateHeader(t, cc, testrealm.AppSPN, initiator.Options{}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("forward-auth: %v %v", err, resp)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Auth-Request-Assertion")
	}
	jwks := func(g *gateway) jose.JSONWebKeySet {
		var disc struct {
			JWKS string `json:"jwks_uri"`
		}
		getJSON(t, g.url("127.0.0.1", "/oidc/.well-known/openid-configuration"), &disc)
		var set jose.JSONWebKeySet
		getJSON(t, strings.Replace(disc.JWKS, "sso.example.test", "127.0.0.1", 1), &set)
		return set
	}
	verify := func(tok string, set jose.JSONWebKeySet, at time.Time) (jwt.Claims, error) {
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil {
			return jwt.Claims{}, err
		}
		var c jwt.Claims
		if err := parsed.Claims(set, &c); err != nil {
			return c, err
		}
		return c, c.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, AnyAudience: jwt.Audience{"app.example.test"}, Time: at}, 0)
	}
	old := assertion(s.g)
	c, err := verify(old, jwks(s.g), time.Now())
	if err != nil {
		t.Fatalf("assertion %s: %v", old, err)
	}
	if c.Subject != signingkeys.Subject(s.issuer, r.SID(t, "alice")) || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 5*time.Minute {
		t.Fatalf("claims %+v", c)
	}
	// Rotation: a new key in the file, the gateway restarted on the same address.
	newKid, err := signingkeys.Add(s.cfg.OIDCProvider.SigningKeysFile, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.g.stop()
	g2 := startGateway(t, s.cfg)
	set := jwks(g2)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS after rotation: %d keys", len(set.Keys))
	}
	if _, err := verify(old, set, time.Now()); err != nil {
		t.Errorf("old assertion after rotation: %v", err)
	}
	if _, err := verify(old, set, c.Expiry.Time().Add(time.Second)); err == nil {
		t.Error("old assertion verified after it expired")
	}
	fresh := assertion(g2)
	parsed, _ := jwt.ParseSigned(fresh, []jose.SignatureAlgorithm{jose.ES256})
	if _, err := verify(fresh, set, time.Now()); err != nil || parsed.Headers[0].KeyID != newKid {
		t.Errorf("new assertion: kid %s (want %s) %v", parsed.Headers[0].KeyID, newKid, err)
	}
}

func getJSON(t testing.TB, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
