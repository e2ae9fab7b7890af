package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testAppID           = "demo"
	testSecret          = "s3cret-for-demo"
	testBrowserKerbgate = "http://sso.example.test:8088"
	testPublic          = "http://app.example.test:9090"
)

// fakeKerbgate fakes only kerbgate's POST /sso/redeem contract.
type fakeKerbgate struct {
	mu    sync.Mutex
	calls []redeemCall
	// answers maps an ssoToken to a status and JSON body.
	answers map[string]fakeAnswer
}

type redeemCall struct {
	user, pass, token, contentType string
	basicOK                        bool
}

type fakeAnswer struct {
	status int
	body   any
}

func (f *fakeKerbgate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/sso/redeem" {
		http.Error(w, "unexpected request", http.StatusNotFound)
		return
	}
	user, pass, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	token := r.PostForm.Get("ssoToken")
	f.mu.Lock()
	f.calls = append(f.calls, redeemCall{user: user, pass: pass, token: token, basicOK: ok, contentType: r.Header.Get("Content-Type")})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok || user != testAppID || pass != testSecret {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "bad_client_credentials", "message": "wrong client secret"})
		return
	}
	a, found := f.answers[token]
	if !found {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "token_invalid", "message": "token cannot be redeemed"})
		return
	}
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

func (f *fakeKerbgate) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var aliceAnswer = map[string]any{
	"app": "demo",
	"identity": map[string]any{
		"user": "alice@EXAMPLE.TEST", "upn": "alice@example.test", "sam_account_name": "alice",
		"display_name": "Alice Example", "mail": "alice@example.test",
		"sid":    "S-1-5-21-1111111111-2222222222-3333333333-1104",
		"groups": []string{"S-1-5-21-1111111111-2222222222-3333333333-513", "S-1-5-21-1111111111-2222222222-3333333333-1105", "S-1-5-32-545"},
		"realm":  "EXAMPLE.TEST", "auth_method": "negotiate",
	},
	"session": map[string]any{"id": "kg-session-1", "expires_at": "2099-11-22T23:00:00Z"},
}

func setup(t *testing.T) (*App, *fakeKerbgate) {
	t.Helper()
	fake := &fakeKerbgate{answers: map[string]fakeAnswer{
		"good-token": {http.StatusOK, aliceAnswer},
		"evil-token": {http.StatusOK, map[string]any{
			"app":      "demo",
			"identity": map[string]any{"user": "mallory@EXAMPLE.TEST", "display_name": `<script>alert(1)</script>`, "groups": []string{}},
			"session":  map[string]any{"id": "kg-2", "expires_at": "2099-01-01T00:00:00Z"},
		}},
		"other-app-token": {http.StatusOK, map[string]any{"app": "other", "identity": map[string]any{"user": "bob@EXAMPLE.TEST"}}},
		"broken-token":    {http.StatusInternalServerError, "not an object"},
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	a, err := New(Config{
		Kerbgate: testBrowserKerbgate, KerbgateBackend: srv.URL, AppID: testAppID,
		Secret: testSecret, PublicURL: testPublic,
	}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, fake
}

func do(a *App, target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	return w
}

func cookie(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, w.Result().Header["Set-Cookie"])
	return nil
}

var signInLink = regexp.MustCompile(`<a href="([^"]+)">Sign in with Windows</a>`)

// startLogin fetches / without a session and returns the sign-in link and the
// state cookie.
func startLogin(t *testing.T, a *App) (*url.URL, *http.Cookie) {
	t.Helper()
	w := do(a, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d", w.Code)
	}
	m := signInLink.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no sign-in link in %s", w.Body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u, cookie(t, w, stateCookie)
}

func TestLoginLink(t *testing.T) {
	a, fake := setup(t)
	u, c := startLogin(t, a)
	if got := u.Scheme + "://" + u.Host + u.Path; got != testBrowserKerbgate+"/sso/login" {
		t.Errorf("link goes to %s", got)
	}
	q := u.Query()
	if q.Get("app") != testAppID {
		t.Errorf("app = %q", q.Get("app"))
	}
	if q.Get("redirect_uri") != testPublic+"/callback" {
		t.Errorf("redirect_uri = %q", q.Get("redirect_uri"))
	}
	if q.Get("state") == "" || q.Get("state") != c.Value || len(c.Value) < 40 {
		t.Errorf("state = %q, cookie %q", q.Get("state"), c.Value)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 || c.MaxAge > 600 {
		t.Errorf("state cookie %+v: want HttpOnly, SameSite=Lax, short-lived", c)
	}
	// Each visit gets its own state.
	if u2, _ := startLogin(t, a); u2.Query().Get("state") == q.Get("state") {
		t.Error("two visits got the same state")
	}
	if fake.callCount() != 0 {
		t.Error("GET / called kerbgate")
	}
}

func TestCallbackBadState(t *testing.T) {
	a, fake := setup(t)
	_, c := startLogin(t, a)
	for name, tc := range map[string]struct {
		target  string
		cookies []*http.Cookie
	}{
		"wrong state":  {"/callback?ssoToken=good-token&state=wrong", []*http.Cookie{c}},
		"no state":     {"/callback?ssoToken=good-token", []*http.Cookie{c}},
		"no cookie":    {"/callback?ssoToken=good-token&state=" + url.QueryEscape(c.Value), nil},
		"empty both":   {"/callback?ssoToken=good-token&state=", []*http.Cookie{{Name: stateCookie, Value: ""}}},
		"state prefix": {"/callback?ssoToken=good-token&state=" + url.QueryEscape(c.Value[:20]), []*http.Cookie{c}},
	} {
		w := do(a, tc.target, tc.cookies...)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, w.Code)
		}
		if !strings.Contains(w.Body.String(), "state_mismatch") {
			t.Errorf("%s: page does not name state_mismatch: %s", name, w.Body)
		}
		for _, sc := range w.Result().Cookies() {
			if sc.Name == sessionCookie && sc.MaxAge >= 0 {
				t.Errorf("%s: a session cookie was set", name)
			}
		}
	}
	if n := fake.callCount(); n != 0 {
		t.Fatalf("redeem called %d times with a bad state", n)
	}
}

func TestCallbackSuccess(t *testing.T) {
	a, fake := setup(t)
	_, c := startLogin(t, a)
	w := do(a, "/callback?ssoToken=good-token&state="+url.QueryEscape(c.Value), c)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("callback = %d, Location %q; body %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if fake.callCount() != 1 {
		t.Fatalf("redeem called %d times", fake.callCount())
	}
	call := fake.calls[0]
	if !call.basicOK || call.user != testAppID || call.pass != testSecret {
		t.Errorf("redeem Basic auth = %v %q %q", call.basicOK, call.user, call.pass)
	}
	if call.token != "good-token" || call.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("redeem token %q, content type %q", call.token, call.contentType)
	}
	sc := cookie(t, w, sessionCookie)
	if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Value == "" || sc.Value == "kg-session-1" {
		t.Errorf("session cookie %+v", sc)
	}
	// The state cookie is cleared.
	if st := cookie(t, w, stateCookie); st.MaxAge >= 0 {
		t.Errorf("state cookie not cleared: %+v", st)
	}

	home := do(a, "/", sc)
	body := home.Body.String()
	for _, want := range []string{
		"Welcome, Alice Example", "alice@example.test", "S-1-5-21-1111111111-2222222222-3333333333-1104",
		"3 groups", `href="/logout"`, "Sign out",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q:\n%s", want, body)
		}
	}

	// The same state cannot be used twice: the browser no longer has the cookie.
	if w := do(a, "/callback?ssoToken=good-token&state="+url.QueryEscape(c.Value)); w.Code != http.StatusBadRequest {
		t.Errorf("replay without the state cookie = %d", w.Code)
	}

	// Sign out: the session ends here, and the browser goes to kerbgate's logout.
	out := do(a, "/logout", sc)
	if out.Code != http.StatusSeeOther || out.Header().Get("Location") != testBrowserKerbgate+"/sso/logout" {
		t.Fatalf("logout = %d, Location %q", out.Code, out.Header().Get("Location"))
	}
	if cleared := cookie(t, out, sessionCookie); cleared.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %+v", cleared)
	}
	if again := do(a, "/", sc); strings.Contains(again.Body.String(), "Welcome") || !strings.Contains(again.Body.String(), "Sign in with Windows") {
		t.Errorf("after logout the old cookie still signs in:\n%s", again.Body)
	}
}

func TestCallbackRedeemErrors(t *testing.T) {
	for _, tc := range []struct {
		name, token, secret, code string
		status                    int
	}{
		{"token invalid", "unknown-token", testSecret, "token_invalid", http.StatusForbidden},
		{"wrong secret", "good-token", "wrong", "bad_client_credentials", http.StatusForbidden},
		{"server error without JSON", "broken-token", testSecret, "http_500", http.StatusBadGateway},
		{"answer for another app", "other-app-token", testSecret, "bad_answer", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, fake := setup(t)
			a.cfg.Secret = tc.secret
			_, c := startLogin(t, a)
			w := do(a, "/callback?ssoToken="+tc.token+"&state="+url.QueryEscape(c.Value), c)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if !strings.Contains(w.Body.String(), "<code>"+tc.code+"</code>") {
				t.Errorf("page does not show %s:\n%s", tc.code, w.Body)
			}
			if fake.callCount() != 1 {
				t.Errorf("redeem called %d times", fake.callCount())
			}
			for _, sc := range w.Result().Cookies() {
				if sc.Name == sessionCookie {
					t.Errorf("a session cookie was set: %+v", sc)
				}
			}
		})
	}
}

func TestKerbgateUnreachable(t *testing.T) {
	a, _ := setup(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	a.cfg.KerbgateBackend = srv.URL
	srv.Close()
	_, c := startLogin(t, a)
	w := do(a, "/callback?ssoToken=good-token&state="+url.QueryEscape(c.Value), c)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "kerbgate_unreachable") {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
}

func TestEscapesIdentity(t *testing.T) {
	a, _ := setup(t)
	_, c := startLogin(t, a)
	w := do(a, "/callback?ssoToken=evil-token&state="+url.QueryEscape(c.Value), c)
	home := do(a, "/", cookie(t, w, sessionCookie))
	body := home.Body.String()
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("display name not escaped:\n%s", body)
	}
}

func TestSessionExpiresWithKerbgateSession(t *testing.T) {
	a, _ := setup(t)
	a.now = func() time.Time { return time.Date(2099, 11, 22, 22, 0, 0, 0, time.UTC) }
	_, c := startLogin(t, a)
	sc := cookie(t, do(a, "/callback?ssoToken=good-token&state="+url.QueryEscape(c.Value), c), sessionCookie)
	if !strings.Contains(do(a, "/", sc).Body.String(), "Welcome") {
		t.Fatal("not signed in")
	}
	a.now = func() time.Time { return time.Date(2099, 11, 22, 23, 0, 0, 0, time.UTC) } // kerbgate's expires_at
	if strings.Contains(do(a, "/", sc).Body.String(), "Welcome") {
		t.Fatal("session outlived kerbgate's expires_at")
	}
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("from-file\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SSOAPP_SECRET": "from-env", "SSOAPP_APP_ID": "envapp"}
	getenv := func(k string) string { return env[k] }
	var stderr strings.Builder

	c, err := parseConfig([]string{"--kerbgate", "https://sso.example.test/", "--public-url", "http://app.example.test:9090/"}, getenv, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kerbgate != "https://sso.example.test" || c.KerbgateBackend != c.Kerbgate || c.PublicURL != testPublic ||
		c.AppID != "envapp" || c.Secret != "from-env" || c.Listen != "127.0.0.1:9090" {
		t.Errorf("config %+v", c)
	}
	c, err = parseConfig([]string{"--secret-file", file, "--kerbgate-backend", "http://127.0.0.1:8088", "--app-id", "demo"}, getenv, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret != "from-file" || c.KerbgateBackend != "http://127.0.0.1:8088" || c.AppID != "demo" {
		t.Errorf("config %+v", c)
	}
	for _, args := range [][]string{
		{"--kerbgate", "sso.example.test"},
		{"--public-url", "ftp://app.example.test"},
		{"--kerbgate-backend", "http://x/?a=b"},
		{"--app-id", ""},
		{"--secret-file", filepath.Join(dir, "missing")},
		{"extra"},
	} {
		if _, err := parseConfig(args, getenv, &stderr); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
	if _, err := parseConfig(nil, func(string) string { return "" }, &stderr); err == nil || !strings.Contains(err.Error(), "no client secret") {
		t.Errorf("no secret: %v", err)
	}
}
