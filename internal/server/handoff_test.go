package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/secret"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The handoff (ssoToken) flow against the real domain: Negotiate sign-in, LDAPS
// directory check, groups, token issue and redemption, sessions.

const (
	demoSecret  = "demo-client-secret-0123456789"
	staffSecret = "staff-client-secret-0123456789"
)

var (
	hashOnce            sync.Once
	demoHash, staffHash string
)

func secretHashes(t testing.TB) (string, string) {
	hashOnce.Do(func() {
		var err error
		if demoHash, err = secret.Hash(demoSecret); err != nil {
			t.Fatal(err)
		}
		if staffHash, err = secret.Hash(staffSecret); err != nil {
			t.Fatal(err)
		}
	})
	return demoHash, staffHash
}

// handoffConfig is baseConfig plus a directory (LDAPS, proxy account) and two apps:
// demo (any domain user) and staff-app (members of staff, nested included).
func handoffConfig(t testing.TB, r *testrealm.Realm, appBase string) *config.Config {
	t.Helper()
	dh, sh := secretHashes(t)
	cfg := baseConfig(r)
	cfg.Directory = config.Directory{
		Enabled: true, URL: "ldaps://dc1.example.test:636", CAFile: r.CACert, LegacyCommonName: true, BaseDN: testrealm.BaseDN,
		BindMethod: "simple", BindDN: testrealm.LDAPBindDN, PasswordFile: r.LDAPBindPasswordFile,
		CacheTTL: time.Second, Timeout: 3 * time.Second,
	}
	cfg.SSO = config.SSO{CookieName: "kerbgate_session", BrowserSessionTTL: time.Hour, Apps: []config.App{
		{ID: "demo", RedirectURIs: []string{appBase + "/callback"}, SecretHash: dh,
			TokenTTL: time.Minute, SessionTTL: time.Hour, RequireDirectory: true},
		{ID: "staff-app", RedirectURIs: []string{appBase + "/callback", "https://staff.example.test/cb?x=1"}, SecretHash: sh,
			TokenTTL: time.Minute, SessionTTL: time.Hour, AllowedGroups: []string{"staff"}, RequireDirectory: true},
	}}
	return cfg
}

// login runs GET /sso/login with curl --negotiate as the owner of ccache and returns
// the status and Location.
func (g *gateway) login(r *testrealm.Realm, ccache, query string) (int, *url.URL, string) {
	g.t.Helper()
	res := g.curl(r, ccache, "", g.url("sso.example.test", "/sso/login?"+query))
	var loc *url.URL
	if l := res.headers.Get("Location"); l != "" {
		var err error
		if loc, err = url.Parse(l); err != nil {
			g.t.Fatal(err)
		}
	}
	return res.status, loc, res.headers.Get("Kerbgate-Reason")
}

func (g *gateway) redeem(app, sec, token string) (*http.Response, []byte) {
	g.t.Helper()
	req, err := http.NewRequest("POST", g.url("127.0.0.1", "/sso/redeem"), strings.NewReader(url.Values{"ssoToken": {token}}.Encode()))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(app, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestHandoffIssuesTokenAndAppRedeemsIt(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	status, loc, why := g.login(r, r.Kinit(t, "alice"), "app=demo&state=xyz")
	if status != 302 || loc == nil {
		t.Fatalf("login: %d %q", status, why)
	}
	if loc.Host != "app.example.test:9" || loc.Path != "/callback" || loc.Query().Get("state") != "xyz" {
		t.Fatalf("redirect %s", loc)
	}
	token := loc.Query().Get("ssoToken")
	if len(token) < 43 { // 32 bytes base64url
		t.Fatalf("token %q too short", token)
	}
	resp, body := g.redeem("demo", demoSecret, token)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %s", resp.StatusCode, body)
	}
	var got sso.Response
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.App != "demo" || got.Identity.Principal != "alice@EXAMPLE.TEST" || got.Identity.SID != r.SID(t, "alice") || got.Session.ID == "" {
		t.Fatalf("redeem answer %+v", got)
	}
	if !got.Session.ExpiresAt.After(time.Now().Add(50 * time.Minute)) {
		t.Errorf("session expires %v", got.Session.ExpiresAt)
	}

	// A token redeems once.
	resp, body = g.redeem("demo", demoSecret, token)
	wantAPIError(t, resp, body, 400, "token_invalid")
	if !strings.Contains(g.logs.String(), `"cause":"used"`) {
		t.Error("log does not say the token was used")
	}
	// The session is visible to its app, and revocable.
	sess := g.sessionRequest("GET", "demo", demoSecret, got.Session.ID)
	if sess.StatusCode != 200 {
		t.Fatalf("session: %d", sess.StatusCode)
	}
	if other := g.sessionRequest("GET", "staff-app", staffSecret, got.Session.ID); other.StatusCode != 404 {
		t.Errorf("another app sees the session: %d", other.StatusCode)
	}
	if del := g.sessionRequest("DELETE", "demo", demoSecret, got.Session.ID); del.StatusCode != 204 {
		t.Fatalf("revoke: %d", del.StatusCode)
	}
	if after := g.sessionRequest("GET", "demo", demoSecret, got.Session.ID); after.StatusCode != 404 {
		t.Errorf("revoked session still answers %d", after.StatusCode)
	}
}

func (g *gateway) sessionRequest(method, app, sec, id string) *http.Response {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.url("127.0.0.1", "/sso/sessions/"+id), nil)
	req.SetBasicAuth(app, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func wantAPIError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e struct{ Error, Message string }
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != status || e.Error != code {
		t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, status, code)
	}
}

func TestTokenRefusals(t *testing.T) {
	r := testrealm.Require(t)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	g := startGatewayWith(t, handoffConfig(t, r, "http://app.example.test:9"), Options{Now: clock})
	cc := r.Kinit(t, "alice")
	token := func() string {
		t.Helper()
		status, loc, why := g.login(r, cc, "app=demo")
		if status != 302 {
			t.Fatalf("login: %d %s", status, why)
		}
		return loc.Query().Get("ssoToken")
	}

	t.Run("wrong secret", func(t *testing.T) {
		resp, body := g.redeem("demo", "not-the-secret", token())
		wantAPIError(t, resp, body, 401, "bad_client_credentials")
	})
	t.Run("unknown app", func(t *testing.T) {
		resp, body := g.redeem("nope", demoSecret, token())
		wantAPIError(t, resp, body, 401, "bad_client_credentials")
	})
	t.Run("another app's credentials", func(t *testing.T) {
		tok := token()
		resp, body := g.redeem("staff-app", staffSecret, tok)
		wantAPIError(t, resp, body, 400, "token_invalid")
		if !strings.Contains(g.logs.String(), `"cause":"other_app"`) {
			t.Error("log does not name the cause")
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		resp, body := g.redeem("demo", demoSecret, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		wantAPIError(t, resp, body, 400, "token_invalid")
	})
	t.Run("expired", func(t *testing.T) {
		tok := token()
		offset.Store(int64(61 * time.Second)) // token_ttl is 60 s; Kerberos skew allows this
		defer offset.Store(0)
		resp, body := g.redeem("demo", demoSecret, tok)
		wantAPIError(t, resp, body, 400, "token_invalid")
		if !strings.Contains(g.logs.String(), `"cause":"expired"`) {
			t.Error("log does not say expired")
		}
	})
	t.Run("50 concurrent redemptions, one success", func(t *testing.T) {
		tok := token()
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := g.redeem("demo", demoSecret, tok)
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 400:
					refused.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 49 {
			t.Fatalf("%d successes, %d refusals", ok.Load(), refused.Load())
		}
	})
}

// hostileReturnURLs are refused wherever kerbgate sends a browser back: by the
// handoff's exact comparison with the registered redirect URIs of an app at
// http://app.example.test:9/callback, and by forward-auth's return domains
// (.example.test) alike.
var hostileReturnURLs = []string{
	"http://evil.example/callback",
	"http://app.example.test:9.evil.example/callback",
	"http://app.example.test:9@evil.example/callback",
	"http://evil.example@app.example.test:9/callback",
	"//evil.example/callback",
	"/callback",
	`http:\\evil.example\callback`,
	"http://app.example.test:9\\@evil.example/callback",
	"http://app.example.test:9/callback#frag",
	"javascript:alert(1)",
	"http://app.example.test:9/callback ",
}

func TestHostileRedirectURIsAreRefused(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	cc := r.Kinit(t, "alice")
	// The shared hostile list, and what only an exact comparison refuses.
	for _, u := range append(slices.Clone(hostileReturnURLs),
		"http://app.example.test:9/callback/../evil",
		"http://app.example.test:9/callbackX",
		"http://app.example.test:9/callback?next=x",
		"HTTP://APP.EXAMPLE.TEST:9/callback",
		"http://app.example.test:9/%63allback",
		"https://app.example.test:9/callback",
		"https://staff.example.test/cb",
	) {
		status, loc, why := g.login(r, cc, "app=demo&redirect_uri="+url.QueryEscape(u))
		if status != 400 || why != "redirect_not_registered" || loc != nil {
			t.Errorf("%q: %d %q Location=%v", u, status, why, loc)
		}
	}
	// A registered URI with a query keeps it, and gets the token added.
	status, loc, why := g.login(r, cc, "app=staff-app&redirect_uri="+url.QueryEscape("https://staff.example.test/cb?x=1"))
	if status != 403 || why != "not_in_group" {
		t.Fatalf("alice is not in staff: %d %q %v", status, why, loc)
	}
	status, loc, why = g.login(r, r.Kinit(t, "bob"), "app=staff-app&redirect_uri="+url.QueryEscape("https://staff.example.test/cb?x=1"))
	if status != 302 || loc.Query().Get("x") != "1" || loc.Query().Get("ssoToken") == "" || loc.Host != "staff.example.test" {
		t.Fatalf("bob: %d %q %v", status, why, loc)
	}
	if status, _, why := g.login(r, cc, "app=nope"); status != 400 || why != "unknown_app" {
		t.Errorf("unknown app: %d %q", status, why)
	}
}

func TestDisabledUserIsRefusedAfterCacheTTL(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	cc := r.Kinit(t, "carol") // a valid ticket, obtained while carol is enabled
	if status, _, why := g.login(r, cc, "app=demo"); status != 302 {
		t.Fatalf("carol enabled: %d %q", status, why)
	}
	r.SambaTool(t, "user", "disable", "carol")
	t.Cleanup(func() { r.SambaTool(t, "user", "enable", "carol") })
	// The directory's cache_ttl is 1 s here: the refusal comes once it expires.
	var (
		status int
		loc    *url.URL
		why    string
	)
	waitFor(t, 15*time.Second, "carol refused once the directory cache expired", func() bool {
		status, loc, why = g.login(r, cc, "app=demo")
		return why == "user_disabled"
	})
	if status != 403 || why != "user_disabled" || loc != nil {
		t.Fatalf("carol disabled: %d %q", status, why)
	}
}

func TestSessionsSurviveRestart(t *testing.T) {
	r := testrealm.Require(t)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Store.Path = filepath.Join(t.TempDir(), "kerbgate.db")
	g := startGateway(t, cfg)
	_, loc, _ := g.login(r, r.Kinit(t, "alice"), "app=demo")
	resp, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken"))
	if resp.StatusCode != 200 {
		t.Fatalf("redeem %d %s", resp.StatusCode, body)
	}
	var got sso.Response
	_ = json.Unmarshal(body, &got)
	g.stop()

	g2 := startGateway(t, cfg)
	if s := g2.sessionRequest("GET", "demo", demoSecret, got.Session.ID); s.StatusCode != 200 {
		t.Fatalf("session after restart: %d", s.StatusCode)
	}
}

// tcpProxy forwards a loopback port to target; stop and start simulate the directory
// going away and coming back on the same address.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	p.t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestDirectoryOutageFailsClosedAndRecovers(t *testing.T) {
	r := testrealm.Require(t)
	proxy := newTCPProxy(t, "127.0.0.1:636")
	_, port, _ := net.SplitHostPort(proxy.addr)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Directory.URL = "ldaps://dc1.example.test:" + port
	cfg.Directory.CacheTTL = 0
	g := startGateway(t, cfg)
	cc := r.Kinit(t, "alice")
	if status, _, why := g.login(r, cc, "app=demo"); status != 302 {
		t.Fatalf("directory up: %d %q", status, why)
	}
	proxy.stop()
	if status, loc, why := g.login(r, cc, "app=demo"); status != 503 || why != "directory_unavailable" || loc != nil {
		t.Fatalf("directory down: %d %q", status, why)
	}
	proxy.start()
	if status, _, why := g.login(r, cc, "app=demo"); status != 302 {
		t.Fatalf("directory back: %d %q\n%s", status, why, g.logs.String())
	}
}

func TestBrowserSessionSparesNegotiateUntilLogout(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, handoffConfig(t, r, "http://app.example.test:9"))
	cc := r.Kinit(t, "alice")
	r.Kvno(t, cc, "HTTP/sso.example.test")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := g.url("127.0.0.1", "/sso/login?app=demo")
	get := func(auth string) *http.Response {
		req, _ := http.NewRequest("GET", login, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := get(negotiateHeader(t, cc, "HTTP/sso.example.test", initiator.Options{}))
	if first.StatusCode != 302 {
		t.Fatalf("sign-in: %d %s", first.StatusCode, first.Header.Get("Kerbgate-Reason"))
	}
	var cookie *http.Cookie
	for _, c := range first.Cookies() {
		if c.Name == "kerbgate_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/sso/" {
		t.Fatalf("browser session cookie %+v", cookie)
	}
	if again := get(""); again.StatusCode != 302 {
		t.Fatalf("returning browser renegotiated: %d %s", again.StatusCode, again.Header.Get("Kerbgate-Reason"))
	}
	// Sign-out is a same-origin POST (GET only shows the confirmation form).
	req, _ := http.NewRequest("POST", g.url("127.0.0.1", "/sso/logout"), nil)
	req.Header.Set("Origin", g.url("127.0.0.1", ""))
	out, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if after := get(""); after.StatusCode != 401 || after.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("after logout: %d", after.StatusCode)
	}
}
