package forwardauth

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/idheaders"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/returnurl"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
)

type harness struct {
	h      http.Handler
	signIn *signintest.SignIn
	store  *signintest.Sessions
	svc    *Service
}

func newHarness(t testing.TB, mod func(*Options)) *harness {
	t.Helper()
	rep, err := refusal.NewReporter(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), true)
	if err != nil {
		t.Fatal(err)
	}
	pol := &idheaders.Policy{Headers: idheaders.Defaults()}
	if err := pol.Prepare(); err != nil {
		t.Fatal(err)
	}
	fe := frontend.New(nil, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")})
	h := &harness{signIn: &signintest.SignIn{Identity: identity.Identity{Principal: "alice@EXAMPLE.TEST", SAMAccountName: "alice", SID: "S-1-5-21-1-2-3-1105"}},
		store: signintest.NewSessions()}
	o := Options{
		Hosts: []Host{
			{Name: "app.example.test", Headers: pol},
			{Name: "*.example.test", Headers: pol, SignIn: SignInRedirect},
		},
		CookieDomain: "example.test",
		ReturnURLs:   returnurl.New([]string{".example.test"}),
		SignInURL:    "https://sso.example.test/forward-auth/sign-in",
		SignIn:       h.signIn, Store: h.store, Reporter: rep, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = s
	mux := http.NewServeMux()
	s.Register(mux)
	h.h = fe.Middleware(mux)
	return h
}

// ask sends a proxy's question from peer about host (X-Forwarded-Host).
func (h *harness) ask(path, peer, host string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = peer + ":5555"
	for k, v := range hdr {
		r.Header[k] = v
	}
	if host != "" {
		r.Header.Set("X-Forwarded-Host", host)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Uri", "/page?x=1")
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

func TestUntrustedPeerAndUnknownHostAreRefused(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Hosts = o.Hosts[:1] })
	if w := h.ask(AuthPath, "10.9.9.9", "app.example.test", nil); w.Code != 403 || w.Header().Get("Kerbgate-Reason") != "forward_auth_untrusted" {
		t.Errorf("untrusted peer: %d %q", w.Code, w.Header().Get("Kerbgate-Reason"))
	}
	if w := h.ask(AuthPath, "10.0.0.1", "", nil); w.Code != 403 || w.Header().Get("Kerbgate-Reason") != "forward_auth_untrusted" {
		t.Errorf("no X-Forwarded-Host: %d %q", w.Code, w.Header().Get("Kerbgate-Reason"))
	}
	if w := h.ask(AuthPath, "10.0.0.1", "other.example.test", nil); w.Code != 403 || w.Header().Get("Kerbgate-Reason") != "forward_auth_unknown_host" {
		t.Errorf("unknown host: %d %q", w.Code, w.Header().Get("Kerbgate-Reason"))
	}
	if h.signIn.Count() != 0 {
		t.Error("signed in for a refused request")
	}
}

// Caddy and Traefik drop a 2xx answer's Set-Cookie: a sign-in through AuthPath
// sends the browser to the same page again, with the cookie.
func TestSignInThroughCaddyRepeatsTheRequestWithTheCookie(t *testing.T) {
	h := newHarness(t, nil)
	w := h.ask(AuthPath, "10.0.0.1", "app.example.test", nil)
	if w.Code != 307 || w.Header().Get("Location") != "https://app.example.test/page?x=1" || len(w.Result().Cookies()) != 1 {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}

func TestSignInOnceThenTheParentDomainCookie(t *testing.T) {
	h := newHarness(t, nil)
	w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", nil)
	c := w.Result().Cookies()
	if w.Code != 200 || w.Header().Get("X-Auth-Request-User") != "alice" || len(c) != 1 {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if c[0].Name != "__Secure-kerbgate_auth" || c[0].Domain != "example.test" || !c[0].Secure || !c[0].HttpOnly {
		t.Fatalf("cookie %+v", c[0])
	}
	// Another host under the domain: the cookie, no second sign-in; a forged
	// header is not echoed.
	hdr := http.Header{"Cookie": {c[0].Name + "=" + c[0].Value}, "X-Auth-Request-User": {"admin"}}
	w = h.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", hdr)
	if w.Code != 200 || w.Header().Get("X-Auth-Request-User") != "alice" || h.signIn.Count() != 1 {
		t.Fatalf("%d %v sign-ins %d", w.Code, w.Header(), h.signIn.Count())
	}
	// A revoked session: signed in again (the fake signs anyone in).
	h.store.SetDown(true)
	if w = h.ask(AuthPath, "10.0.0.1", "app.example.test", hdr); w.Code != 503 || w.Header().Get("Kerbgate-Reason") != "store_unavailable" {
		t.Fatalf("store down: %d %q", w.Code, w.Header().Get("Kerbgate-Reason"))
	}
}

func TestRedirectModeSendsTheBrowserToSignInWithTheReturnURL(t *testing.T) {
	h := newHarness(t, nil)
	want := "https://sso.example.test/forward-auth/sign-in?rd=" + url.QueryEscape("https://wiki.example.test/page?x=1")
	w := h.ask(AuthPath, "10.0.0.1", "wiki.example.test", nil)
	if w.Code != 302 || w.Header().Get("Location") != want {
		t.Fatalf("caddy: %d %q", w.Code, w.Header().Get("Location"))
	}
	w = h.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", nil)
	if w.Code != 401 || w.Header().Get("Location") != want || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("nginx: %d %v", w.Code, w.Header())
	}
	if h.signIn.Count() != 0 {
		t.Error("signed in before the redirect")
	}
}

func TestSignInPageRefusesReturnURLsOffTheAllowlist(t *testing.T) {
	h := newHarness(t, nil)
	for _, rd := range []string{"https://evil.example/", "//evil.example/", "https://app.example.test@evil.example/", "/relative", ""} {
		w := h.ask(SignInPath+"?rd="+url.QueryEscape(rd), "127.0.0.1", "", nil)
		if w.Code != 400 || w.Header().Get("Kerbgate-Reason") != "return_url_not_allowed" || w.Header().Get("Location") != "" {
			t.Errorf("%q: %d %v", rd, w.Code, w.Header())
		}
	}
	if h.signIn.Count() != 0 {
		t.Error("signed in for a hostile rd")
	}
	w := h.ask(SignInPath+"?rd="+url.QueryEscape("https://wiki.example.test/a"), "127.0.0.1", "", nil)
	if w.Code != 302 || w.Header().Get("Location") != "https://wiki.example.test/a" || !strings.Contains(w.Header().Get("Set-Cookie"), "Domain=example.test") {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}

func TestHostGroupsAreCheckedOnEveryRequest(t *testing.T) {
	g, _ := signin.NewGroups("app.example.test", []string{"S-1-5-21-1-2-3-1110"}, nil)
	h := newHarness(t, func(o *Options) { o.Hosts[0].Groups = g })
	w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", nil)
	if w.Code != 403 || w.Header().Get("Kerbgate-Reason") != "not_in_group" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Kerbgate-Reason"))
	}
	// The session was started all the same: other hosts need no new sign-in.
	if len(w.Result().Cookies()) != 1 {
		t.Fatalf("no session cookie")
	}
}

func TestSessionCacheKeepsSessionsForItsTTLOnly(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	h := newHarness(t, func(o *Options) { o.SessionCacheTTL = 2 * time.Second; o.Now = clock })
	w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", nil)
	c := w.Result().Cookies()[0]
	hdr := http.Header{"Cookie": {c.Name + "=" + c.Value}}
	h.ask(AuthPath, "10.0.0.1", "app.example.test", hdr) // cached
	h.store.SetDown(true)
	if w := h.ask(AuthPath, "10.0.0.1", "app.example.test", hdr); w.Code != 200 {
		t.Fatalf("cached session: %d", w.Code)
	}
	now = now.Add(3 * time.Second)
	if w := h.ask(AuthPath, "10.0.0.1", "app.example.test", hdr); w.Code != 503 {
		t.Fatalf("after the cache TTL the store is read: %d", w.Code)
	}
}

// A clock set back does not keep a cached session longer than the cache's TTL.
func TestSessionCacheDoesNotOutliveAClockSetBack(t *testing.T) {
	c := newSessionCache(time.Second)
	now := time.Unix(1_800_000_000, 0)
	c.put("sid", &session{}, now)
	if c.get("sid", now.Add(999*time.Millisecond)) == nil {
		t.Fatal("not kept for its TTL")
	}
	if c.get("sid", now.Add(-time.Minute)) != nil {
		t.Fatal("kept after the clock was set back a minute")
	}
}
