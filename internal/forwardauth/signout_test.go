package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
)

// signOut sends a browser's sign-out to kerbgate at sso.example.test over https
// (through the trusted proxy 10.0.0.1), with the given headers and form.
func (h *harness) signOut(method, query string, hdr http.Header, form url.Values) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, SignOutPath+query, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Set("X-Forwarded-Host", "sso.example.test")
	r.Header.Set("X-Forwarded-Proto", "https")
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

// signedIn signs in at app.example.test and returns the cookie as a header.
func (h *harness) signedIn(t *testing.T) http.Header {
	t.Helper()
	w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", nil)
	c := w.Result().Cookies()
	if w.Code != 200 || len(c) != 1 {
		t.Fatalf("sign-in: %d %v", w.Code, w.Header())
	}
	return http.Header{"Cookie": {c[0].Name + "=" + c[0].Value}}
}

func TestSignOutEndsTheSessionForEveryHost(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SessionCacheTTL = time.Minute })
	cookie := h.signedIn(t)
	if w := h.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", cookie); w.Code != 200 || h.svc.cache.len() != 1 {
		t.Fatalf("before: %d, cached %d", w.Code, h.svc.cache.len())
	}
	hdr := cookie.Clone()
	hdr.Set("Origin", "https://app.example.test")
	w := h.signOut("POST", "", hdr, url.Values{"rd": {"https://app.example.test/bye"}})
	if w.Code != 303 || w.Header().Get("Location") != "https://app.example.test/bye" {
		t.Fatalf("sign-out: %d %v", w.Code, w.Header())
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Secure-kerbgate_auth" || c[0].Domain != "example.test" || c[0].MaxAge >= 0 || c[0].Value != "" || !c[0].Secure {
		t.Fatalf("the parent-domain cookie is not cleared: %+v", c)
	}
	if h.store.Len() != 0 || h.svc.cache.len() != 0 {
		t.Fatalf("store %d, cache %d", h.store.Len(), h.svc.cache.len())
	}
	// The old cookie, still sent by a client that kept it, opens nothing on any
	// host, although the cache's minute has not passed: wiki sends the browser to
	// sign in, app signs it in anew (the fake pre-authenticator signs anyone in).
	if w := h.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", cookie); w.Code != 401 || w.Header().Get("Location") == "" {
		t.Fatalf("wiki after sign-out: %d %v", w.Code, w.Header())
	}
	if w := h.ask(AuthRequestPath, "10.0.0.1", "app.example.test", cookie); h.signIn.Count() != 2 || len(w.Result().Cookies()) != 1 {
		t.Fatalf("app after sign-out: %d %v, %d sign-ins", w.Code, w.Header(), h.signIn.Count())
	}
}

// Another node of a farm keeps the session in its cache until its entry is
// session_cache_ttl old: the documented cross-node window.
func TestSignOutOnOneNodeReachesAnotherWithinTheCacheTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	shared, keys := signintest.NewSessions(), keyset.Random()
	node := func() *harness {
		return newHarness(t, func(o *Options) {
			o.Store, o.CookieKeys, o.SessionCacheTTL, o.Now = shared, keys, time.Second, func() time.Time { return now }
		})
	}
	a, b := node(), node()
	cookie := a.signedIn(t)
	if w := b.ask(AuthRequestPath, "10.0.0.1", "app.example.test", cookie); w.Code != 200 {
		t.Fatalf("node b: %d", w.Code)
	}
	if w := a.signOut("POST", "", cookie, nil); w.Code != 200 || !strings.Contains(w.Body.String(), "signed out") {
		t.Fatalf("sign-out: %d %q", w.Code, w.Body.String())
	}
	// wiki.example.test signs in by redirect: 200 is the session, 401 none.
	if w := a.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", cookie); w.Code != 401 {
		t.Fatalf("node a after its sign-out: %d", w.Code)
	}
	now = now.Add(999 * time.Millisecond)
	if w := b.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", cookie); w.Code != 200 {
		t.Fatalf("node b within the window: %d", w.Code)
	}
	now = now.Add(time.Millisecond)
	if w := b.ask(AuthRequestPath, "10.0.0.1", "wiki.example.test", cookie); w.Code != 401 {
		t.Fatalf("node b after session_cache_ttl: %d", w.Code)
	}
}

// Another site cannot sign a browser out, and a hostile rd is refused before the
// session is touched.
func TestSignOutRefusesOtherSitesAndHostileReturnURLs(t *testing.T) {
	h := newHarness(t, nil)
	cookie := h.signedIn(t)
	with := func(kv ...string) http.Header {
		hdr := cookie.Clone()
		for i := 0; i < len(kv); i += 2 {
			hdr.Set(kv[i], kv[i+1])
		}
		return hdr
	}
	for _, tc := range []struct {
		name, method, query string
		hdr                 http.Header
		reason              string
	}{
		{"cross-site POST", "POST", "", with("Origin", "https://evil.example"), "cross_site_request"},
		{"opaque origin", "POST", "", with("Origin", "null"), "cross_site_request"},
		{"cross-site link", "GET", "", with("Sec-Fetch-Site", "cross-site"), "cross_site_request"},
		{"same-site link from a sibling outside the domains", "GET", "", with("Sec-Fetch-Site", "same-site", "Referer", "https://evil.test/"), "cross_site_request"},
		{"link from another site, old browser", "GET", "", with("Referer", "https://evil.example/page"), "cross_site_request"},
		{"link without any site header", "GET", "", with(), "cross_site_request"},
		{"hostile rd", "GET", "?rd=" + url.QueryEscape("https://app.example.test@evil.example/"), with("Sec-Fetch-Site", "same-origin"), "return_url_not_allowed"},
		{"rd off the list", "POST", "?rd=" + url.QueryEscape("https://evil.example/"), with("Origin", "https://app.example.test"), "return_url_not_allowed"},
	} {
		w := h.signOut(tc.method, tc.query, tc.hdr, nil)
		if w.Code == 200 || w.Code == 303 || w.Header().Get("Kerbgate-Reason") != tc.reason || w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %q %v", tc.name, w.Code, w.Header().Get("Kerbgate-Reason"), w.Header())
		}
	}
	if h.store.Len() != 1 {
		t.Fatal("a refused sign-out ended the session")
	}
	// What a page under the domain sends: a link (same-site, from the app), a
	// form (its Origin), a typed address; and a program's POST.
	for _, hdr := range []http.Header{
		with("Sec-Fetch-Site", "same-site", "Referer", "https://wiki.example.test/"),
		with("Origin", "https://wiki.example.test"),
		with("Origin", "https://sso.example.test"),
		with("Sec-Fetch-Site", "none"),
		with("Referer", "https://app.example.test/x"),
	} {
		if w := h.signOut("GET", "?rd="+url.QueryEscape("https://app.example.test/"), hdr, nil); w.Code != 303 {
			t.Errorf("%v: %d %q", hdr, w.Code, w.Header().Get("Kerbgate-Reason"))
		}
	}
	if w := h.signOut("POST", "", with(), nil); w.Code != 200 || h.store.Len() != 0 {
		t.Errorf("a program's POST: %d, %d sessions", w.Code, h.store.Len())
	}
}

// The store cannot revoke the session: the cookie goes, and the answer says the
// sign-out did not happen.
func TestSignOutWithTheStoreDownSaysSo(t *testing.T) {
	h := newHarness(t, nil)
	cookie := h.signedIn(t)
	h.store.SetDown(true)
	w := h.signOut("POST", "", cookie, nil)
	if w.Code != 503 || w.Header().Get("Kerbgate-Reason") != "store_unavailable" || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}
