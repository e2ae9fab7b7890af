package server

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// Issue 13: the handoff's hardening (items 4, 5, 9, 10 and 11), each against the real
// domain.

// Item 11: an authenticated app that presents another app's token neither gets it
// nor burns it.
func TestTokenOfAnotherAppIsNotConsumed(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	status, loc, why := g.login(r, r.Kinit(t, "alice"), "app=demo")
	if status != 302 {
		t.Fatalf("login: %d %s", status, why)
	}
	tok := loc.Query().Get("ssoToken")
	resp, body := g.redeem("staff-app", staffSecret, tok)
	wantAPIError(t, resp, body, 400, "token_invalid")
	if !strings.Contains(g.logs.String(), `"cause":"other_app"`) {
		t.Error("log does not name the cause other_app")
	}
	resp, body = g.redeem("demo", demoSecret, tok)
	if resp.StatusCode != 200 {
		t.Fatalf("the rightful app cannot redeem its token after another app presented it: %d %s", resp.StatusCode, body)
	}
}

// Item 9: a refused session lookup logs the route, not the session id, and the
// recent failures keep no id either.
func TestRefusedSessionLookupLogsNoSessionID(t *testing.T) {
	r := testrealm.Require(t)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Log.DebugTokenFile = filepath.Join(t.TempDir(), "debug.token")
	mustWriteFile(t, cfg.Log.DebugTokenFile, "debug-token-0123456789")
	g := startGateway(t, cfg)
	const id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE" // the shape of store.NewID
	if resp := g.sessionRequest("GET", "demo", demoSecret, id); resp.StatusCode != 404 {
		t.Fatalf("unknown session: %d", resp.StatusCode)
	}
	if strings.Contains(g.logs.String(), id) {
		t.Errorf("the log holds the session id of a refused request:\n%s", g.logs.String())
	}
	req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/debug/last-failures"), nil)
	req.Header.Set("Authorization", "Bearer debug-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recent, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(recent), "session_not_found") {
		t.Fatalf("last failures: %d %s", resp.StatusCode, recent)
	}
	if strings.Contains(string(recent), id) {
		t.Errorf("/debug/last-failures keeps the session id:\n%s", recent)
	}
}

// Item 10: GET /sso/logout only asks; a same-origin POST signs out; a cross-site
// POST is refused and signs nothing out.
func TestLogoutIsASameOriginPost(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	origin := g.url("127.0.0.1", "")
	send := func(method, path, auth string, h map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, g.url("127.0.0.1", path), nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	signedIn := func() bool {
		t.Helper()
		resp, _ := send("GET", "/sso/login?app=demo", "", nil)
		return resp.StatusCode == 302
	}
	if resp, _ := send("GET", "/sso/login?app=demo", negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{}), nil); resp.StatusCode != 302 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	// A cross-site page can make the browser GET /sso/logout (an <img>): it only
	// shows a confirmation form.
	resp, page := send("GET", "/sso/logout", "", map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != 200 || !strings.Contains(page, `<form method="post" action="/sso/logout"`) {
		t.Fatalf("GET /sso/logout: %d %q", resp.StatusCode, page)
	}
	if !signedIn() {
		t.Fatal("GET /sso/logout signed the browser out")
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Referer": "https://evil.example/page"},
		{}, // no sign of the origin at all: refused (fail closed)
	} {
		resp, _ := send("POST", "/sso/logout", "", h)
		if resp.StatusCode != 403 || resp.Header.Get("Kerbgate-Reason") != "cross_site_request" {
			t.Errorf("cross-site POST %v: %d %q", h, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		if !signedIn() {
			t.Fatalf("cross-site POST %v signed the browser out", h)
		}
	}
	resp, _ = send("POST", "/sso/logout", "", map[string]string{"Origin": origin})
	if resp.StatusCode != 200 {
		t.Fatalf("same-origin POST: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	if signedIn() {
		t.Fatal("still signed in after a same-origin POST /sso/logout")
	}
}

// Item 4: bad client secrets cannot run argon2id without bound; the checks that
// would exceed the bound are answered 503 busy, repeated failures 429
// rate_limited, both with Retry-After, while the good client is served.
func TestBadSecretRedeemsAreBoundedAndLimited(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	cc := r.Kinit(t, "alice")
	status, loc, why := g.login(r, cc, "app=demo")
	if status != 302 {
		t.Fatalf("login: %d %s", status, why)
	}
	// The good client's secret is verified once (and cached) before the flood.
	if resp, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken")); resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %s", resp.StatusCode, body)
	}
	const n = 64
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
		noWait int
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := "staff-app"
			if i%2 == 0 {
				id = "no-such-app"
			}
			resp, body := g.redeem(id, "wrong-secret", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			var code string
			if i := strings.Index(string(body), `"error":"`); i >= 0 {
				code, _, _ = strings.Cut(string(body)[i+9:], `"`)
			}
			mu.Lock()
			defer mu.Unlock()
			counts[code]++
			if resp.StatusCode != 401 && resp.Header.Get("Retry-After") == "" {
				noWait++
			}
		}(i)
	}
	wg.Wait()
	t.Logf("64 concurrent bad-secret redeems: %v", counts)
	if counts["busy"] == 0 {
		t.Errorf("no redeem was answered busy: %v", counts)
	}
	if noWait > 0 {
		t.Errorf("%d busy or rate_limited answers without Retry-After", noWait)
	}
	// Keep failing from one address: the limiter answers 429 before any hashing.
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		resp, body := g.redeem("staff-app", "wrong-secret", "x")
		if resp.StatusCode == 429 {
			wantAPIError(t, resp, body, 429, "rate_limited")
			limited = resp.Header.Get("Retry-After") != ""
		}
	}
	if !limited {
		t.Error("40 more failures from one address were never rate_limited with Retry-After")
	}
	// The good client is still served (its secret is cached: no hash, no limit).
	status, loc, why = g.login(r, cc, "app=demo")
	if status != 302 {
		t.Fatalf("login: %d %s", status, why)
	}
	if resp, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken")); resp.StatusCode != 200 {
		t.Fatalf("good client refused during the flood: %d %s", resp.StatusCode, body)
	}
}

// listenFrom parses a listen section the way kerbgate serve would.
func listenFrom(t *testing.T, r *testrealm.Realm, listen string) config.Listen {
	t.Helper()
	src := "listen:\n" + listen + "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [" + r.GatewayKeytab + "]\n  spns: [HTTP/sso.example.test]\n"
	c, err := config.Parse("kerbgate.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c.Listen.Address = "127.0.0.1:0"
	return c.Listen
}

// sessionCookie signs in with a fresh Negotiate token and returns the browser
// session cookie the gateway set, sending the extra headers.
func sessionCookie(t *testing.T, g *gateway, cc string, h map[string]string) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/sso/login?app=demo"), nil)
	req.Header.Set("Authorization", negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{}))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
	}
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "kerbgate_session") {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return nil
}

// Item 5: behind a TLS-terminating balancer (plain HTTP to kerbgate), cookies are
// still Secure and prefixed; X-Forwarded-Proto is believed only from trusted
// proxies.
func TestCookiesAreSecureBehindATLSTerminatingBalancer(t *testing.T) {
	r := testrealm.Require(t)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")

	t.Run("external_url https", func(t *testing.T) {
		cfg := handoffConfig(t, r, "http://app.example.test:9")
		cfg.Listen = listenFrom(t, r, "  external_url: https://sso.example.test\n")
		g := startGateway(t, cfg)
		c := sessionCookie(t, g, cc, nil)
		if !c.Secure || c.Name != "__Secure-kerbgate_session" || c.Path != "/sso/" || !c.HttpOnly {
			t.Fatalf("cookie behind an https front end: %+v", c)
		}
	})
	t.Run("X-Forwarded-Proto from an untrusted address", func(t *testing.T) {
		cfg := handoffConfig(t, r, "http://app.example.test:9")
		cfg.Listen = listenFrom(t, r, "  trusted_proxies: [192.0.2.0/24]\n")
		g := startGateway(t, cfg)
		c := sessionCookie(t, g, cc, map[string]string{"X-Forwarded-Proto": "https"})
		if c.Secure || c.Name != "kerbgate_session" {
			t.Fatalf("X-Forwarded-Proto believed from 127.0.0.1: %+v", c)
		}
	})
	t.Run("X-Forwarded-Proto from a trusted proxy", func(t *testing.T) {
		cfg := handoffConfig(t, r, "http://app.example.test:9")
		cfg.Listen = listenFrom(t, r, "  trusted_proxies: [127.0.0.0/8, \"::1/128\"]\n")
		g := startGateway(t, cfg)
		c := sessionCookie(t, g, cc, map[string]string{"X-Forwarded-Proto": "https"})
		if !c.Secure || c.Name != "__Secure-kerbgate_session" {
			t.Fatalf("X-Forwarded-Proto from a trusted proxy ignored: %+v", c)
		}
		// The prefixed cookie signs the browser in again without Negotiate.
		req, _ := http.NewRequest("GET", g.url("127.0.0.1", "/sso/login?app=demo"), nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 {
			t.Fatalf("returning browser with %s: %d", c.Name, resp.StatusCode)
		}
	})
}

// Item 5, the application proxy's cookie: behind an https front end it is Secure,
// __Host- for an app published at "/", __Secure- at a path prefix, and it still
// signs the browser in and never reaches the upstream.
func TestProxyCookieIsSecureBehindATLSTerminatingBalancer(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	up := echoUpstream(t)
	cfg := baseConfig(r)
	cfg.Listen = listenFrom(t, r, "  external_url: https://sso.example.test\n")
	base := config.ProxyApp{Upstream: mustURL(t, up.URL+"/base"), Timeout: 5 * time.Second, PreAuth: "iwa"}
	prefixed, root := base, base
	prefixed.ID, prefixed.Host, prefixed.PathPrefix = "echo", "sso.example.test", "/apps/echo/"
	root.ID, root.Host, root.PathPrefix = "root", "app.example.test", "/"
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour, Apps: []config.ProxyApp{prefixed, root}}
	g := startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	for _, c := range []struct{ host, path, name, cookiePath string }{
		{"sso.example.test", "/apps/echo/page", "__Secure-kerbgate_proxy", "/apps/echo/"},
		{"app.example.test", "/page", "__Host-kerbgate_proxy", "/"},
	} {
		req, _ := http.NewRequest("GET", g.url(c.host, c.path), nil)
		req.Header.Set("Authorization", negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{}))
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var got *http.Cookie
		for _, k := range resp.Cookies() {
			if strings.HasSuffix(k.Name, "kerbgate_proxy") {
				got = k
			}
		}
		if resp.StatusCode != 200 || got == nil || got.Name != c.name || !got.Secure || got.Path != c.cookiePath || !got.HttpOnly {
			t.Fatalf("%s%s: %d, cookie %+v", c.host, c.path, resp.StatusCode, got)
		}
		req, _ = http.NewRequest("GET", g.url(c.host, c.path), nil)
		req.AddCookie(&http.Cookie{Name: got.Name, Value: got.Value})
		req.AddCookie(&http.Cookie{Name: "other", Value: "1"})
		resp, err = http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s with %s: %d %s", c.host, got.Name, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"))
		}
		if e := decodeEcho(t, string(body)); strings.Join(e.Cookies, ",") != "other" {
			t.Fatalf("upstream saw cookies %v", e.Cookies)
		}
	}
}
