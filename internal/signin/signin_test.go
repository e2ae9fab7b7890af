package signin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
)

var alice = &identity.Identity{Principal: "alice@EXAMPLE.TEST", Realm: "EXAMPLE.TEST",
	SID: "S-1-5-21-1-2-3-1103", Groups: []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1110"}}

type resolver struct {
	mu    sync.Mutex
	calls int
	sids  map[string]string
	err   error
}

func (f *resolver) GroupSID(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return "", f.err
	}
	sid, ok := f.sids[name]
	if !ok {
		return "", errors.New("no such group")
	}
	return sid, nil
}

func code(err error) reason.Code {
	if err == nil {
		return ""
	}
	return reason.Of(err).Code
}

// One semantics for every face: an allowed SID lets a user in when it is one of the
// user's groups, or the user's own SID.
func TestGroupsAllowAGroupOrTheUsersOwnSID(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		name    string
		allowed []string
		want    reason.Code
	}{
		{"no groups: anyone signed in", nil, ""},
		{"a group of the user", []string{"S-1-5-21-1-2-3-1110"}, ""},
		{"the user's own SID", []string{"S-1-5-21-1-2-3-1103"}, ""},
		{"one of several", []string{"S-1-5-32-544", "S-1-5-21-1-2-3-513"}, ""},
		{"another group", []string{"S-1-5-32-544"}, reason.NotInGroup},
		{"another user", []string{"S-1-5-21-1-2-3-1104"}, reason.NotInGroup},
	} {
		g, err := signin.NewGroups("app", c.allowed, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := code(g.Check(ctx, alice)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	var none *signin.Groups
	if err := none.Check(ctx, alice); err != nil {
		t.Errorf("nil policy: %v", err)
	}
}

// An anonymous request (passthrough) goes on only where no groups are listed.
func TestGroupsRefuseAnonymousWhenGroupsAreListed(t *testing.T) {
	open, _ := signin.NewGroups("app", nil, nil)
	if err := open.Check(t.Context(), nil); err != nil {
		t.Errorf("no groups, anonymous: %v", err)
	}
	closed, _ := signin.NewGroups("app", []string{"S-1-5-32-544"}, nil)
	if got := code(closed.Check(t.Context(), nil)); got != reason.NotInGroup {
		t.Errorf("groups, anonymous: %q", got)
	}
}

// Names are resolved through the directory once, on first use; a failed lookup is a
// refusal that names the group, and is tried again on the next request.
func TestGroupNamesResolveOnceThroughTheDirectory(t *testing.T) {
	if _, err := signin.NewGroups("app", []string{"staff"}, nil); err == nil {
		t.Fatal("a group name without a resolver was accepted")
	}
	dir := &resolver{err: errors.New("ldap down")}
	g, err := signin.NewGroups("app", []string{"staff", "S-1-5-32-544"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Check(t.Context(), alice)
	if e := reason.Of(err); e.Code != reason.Internal || !strings.Contains(e.Error(), "group=staff") {
		t.Fatalf("lookup failure: %v", err)
	}
	dir.err = nil
	dir.sids = map[string]string{"staff": "S-1-5-21-1-2-3-1110"}
	for range 3 {
		if err := g.Check(t.Context(), alice); err != nil {
			t.Fatalf("member of staff: %v", err)
		}
	}
	if dir.calls != 2 {
		t.Errorf("%d lookups, want 2 (the failed one, then once)", dir.calls)
	}
	// A refusal from the directory (store_unavailable, directory_unavailable...) is
	// passed on as it is.
	dir2 := &resolver{err: reason.New(reason.DirectoryUnavailable, "down")}
	g2, _ := signin.NewGroups("app", []string{"staff"}, dir2)
	if got := code(g2.Check(t.Context(), alice)); got != reason.DirectoryUnavailable {
		t.Errorf("directory refusal: %q", got)
	}
}

func newSessions(now *time.Time) (*signin.Sessions, *signintest.Sessions) {
	st := signintest.NewSessions()
	return &signin.Sessions{Store: st, Keys: keyset.Random(), Purpose: "test-session", CookieName: "kg",
		TTL: time.Hour, Now: func() time.Time { return *now }}, st
}

// request is a browser's request, over https when secure, with the cookies of w.
func request(secure bool, path string, from *httptest.ResponseRecorder) *http.Request {
	r := httptest.NewRequest("GET", "http://app.example.test"+path, nil)
	if secure {
		r.TLS = &tls.ConnectionState{}
	}
	if from != nil {
		for _, c := range from.Result().Cookies() {
			r.AddCookie(c)
		}
	}
	return r
}

// The browser session: started, read back, bound to its scope, ended.
func TestSessionsRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, _ := newSessions(&now)
	sc := signin.Scope{Path: "/", AppID: "proxy:a"}
	w := httptest.NewRecorder()
	if err := s.Start(w, request(false, "/", nil), sc, alice); err != nil {
		t.Fatal(err)
	}
	id, err := s.Load(request(false, "/", w), sc)
	if err != nil || id == nil || id.Principal != alice.Principal {
		t.Fatalf("Load: %v %v", id, err)
	}
	// Another app's scope does not read it.
	if id, err := s.Load(request(false, "/", w), signin.Scope{Path: "/", AppID: "proxy:b"}); id != nil || err != nil {
		t.Errorf("another app read the session: %v %v", id, err)
	}
	// Nor another purpose's keys (one face's cookie is not another's).
	other := *s
	other.Purpose = "other"
	if id, _ := other.Load(request(false, "/", w), sc); id != nil {
		t.Error("a cookie sealed for one purpose opened for another")
	}
	// Expired.
	later := now.Add(2 * time.Hour)
	s2 := *s
	s2.Now = func() time.Time { return later }
	if id, err := s2.Load(request(false, "/", w), sc); id != nil || err != nil {
		t.Errorf("expired session read: %v %v", id, err)
	}
	// Ended: revoked in the store, cookie cleared.
	w2 := httptest.NewRecorder()
	if err := s.End(w2, request(false, "/", w), sc); err != nil {
		t.Fatal(err)
	}
	if c := w2.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Value != "" {
		t.Errorf("End cookie: %v", w2.Header()["Set-Cookie"])
	}
	if id, _ := s.Load(request(false, "/", w), sc); id != nil {
		t.Error("the session outlived End")
	}
}

// A forged, oversized or foreign cookie is no session (sign in again), not an error.
func TestSessionsIgnoreForgedCookies(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, _ := newSessions(&now)
	sc := signin.Scope{Path: "/"}
	for _, v := range []string{"x", keyset.Random().Seal("test-session", "id"), string(make([]byte, 200))} {
		r := request(false, "/", nil)
		r.AddCookie(&http.Cookie{Name: "kg", Value: v})
		if id, err := s.Load(r, sc); id != nil || err != nil {
			t.Errorf("%q: %v %v", v, id, err)
		}
	}
}

// The cookie is HttpOnly and SameSite=Lax always; over https it is Secure and named
// __Host- at "/" and __Secure- below it (the security issue's rules).
func TestSessionCookieFlagsAndPrefixes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, _ := newSessions(&now)
	for _, c := range []struct {
		secure bool
		path   string
		name   string
	}{
		{false, "/", "kg"}, {true, "/", "__Host-kg"}, {true, "/sso/", "__Secure-kg"}, {false, "/sso/", "kg"},
	} {
		sc := signin.Scope{Path: c.path}
		w := httptest.NewRecorder()
		if err := s.Start(w, request(c.secure, c.path, nil), sc, alice); err != nil {
			t.Fatal(err)
		}
		cs := w.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("cookies %v", cs)
		}
		k := cs[0]
		if k.Name != c.name || k.Path != c.path || k.Secure != c.secure || !k.HttpOnly || k.SameSite != http.SameSiteLaxMode || k.MaxAge != 3600 {
			t.Errorf("secure=%v path=%s: %+v", c.secure, c.path, k)
		}
		if id, err := s.Load(request(c.secure, c.path, w), sc); id == nil || err != nil {
			t.Errorf("secure=%v path=%s: not read back: %v", c.secure, c.path, err)
		}
	}
}

// A store that cannot answer is store_unavailable: the face refuses rather than sign
// the browser in again (or claim a sign-out).
func TestSessionsStoreUnavailable(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, st := newSessions(&now)
	sc := signin.Scope{Path: "/"}
	w := httptest.NewRecorder()
	if err := s.Start(w, request(false, "/", nil), sc, alice); err != nil {
		t.Fatal(err)
	}
	st.SetDown(true)
	if _, err := s.Load(request(false, "/", w), sc); code(err) != reason.StoreUnavailable {
		t.Errorf("Load: %v", err)
	}
	if err := s.Start(httptest.NewRecorder(), request(false, "/", nil), sc, alice); code(err) != reason.StoreUnavailable {
		t.Errorf("Start: %v", err)
	}
	w2 := httptest.NewRecorder()
	if err := s.End(w2, request(false, "/", w), sc); code(err) != reason.StoreUnavailable {
		t.Errorf("End: %v", err)
	}
	if len(w2.Result().Cookies()) != 1 {
		t.Error("End did not clear the cookie while the store was down")
	}
}

// signin.Passthrough calls next with nobody; signin.Negotiate passes the middleware's identity on,
// and a middleware that lets a request through without one is an internal error.
func TestPreAuthenticators(t *testing.T) {
	var got signin.Result
	var gotErr error
	next := func(_ http.ResponseWriter, _ *http.Request, res signin.Result, err error) { got, gotErr = res, err }

	signin.Passthrough{}.Authenticate(httptest.NewRecorder(), request(false, "/", nil), next)
	if got.Identity != nil || gotErr != nil || (signin.Passthrough{}).Method().String() != "passthrough" {
		t.Errorf("passthrough: %+v %v", got, gotErr)
	}

	letThrough := signin.Negotiate{Middleware: func(h http.Handler) http.Handler { return h }}
	letThrough.Authenticate(httptest.NewRecorder(), request(false, "/", nil), next)
	if code(gotErr) != reason.Internal || letThrough.Method().String() != "iwa" {
		t.Errorf("negotiate without an identity: %v", gotErr)
	}

	called := false
	challenge := signin.Negotiate{Middleware: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) })
	}}
	challenge.Authenticate(httptest.NewRecorder(), request(false, "/", nil), func(http.ResponseWriter, *http.Request, signin.Result, error) { called = true })
	if called {
		t.Error("next called after the middleware answered")
	}
}

// A fresh sign-in in a browser whose session is the same account's renews that
// session in place (same handle, a new start, a full TTL); another account's session
// is revoked and a new one started.
func TestSessionsBeginRenewsTheSameAccountsSession(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, st := newSessions(&now)
	sc := signin.Scope{Path: "/oidc/"}
	w := httptest.NewRecorder()
	first, err := s.Begin(w, request(false, "/oidc/", nil), sc, alice)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.Current(request(false, "/oidc/", w), sc)
	if err != nil || cur == nil || !cur.Since.Equal(now) || cur.Handle != first.Handle || len(cur.Handle) != 43 {
		t.Fatalf("Current %+v %v, Begin %+v", cur, err, first)
	}
	now = now.Add(50 * time.Minute)
	w2 := httptest.NewRecorder()
	again, err := s.Begin(w2, request(false, "/oidc/", w), sc, alice)
	if err != nil || again.Handle != first.Handle || !again.Since.Equal(now) || st.Len() != 1 {
		t.Fatalf("renewal %+v %v (sessions %d), want handle %s since %v", again, err, st.Len(), first.Handle, now)
	}
	now = now.Add(50 * time.Minute) // past the first start's TTL, within the renewal's
	if cur, _ := s.Current(request(false, "/oidc/", w2), sc); cur == nil || !cur.Since.Equal(again.Since) {
		t.Fatalf("the renewed session: %+v", cur)
	}
	bob := &identity.Identity{Principal: "bob@EXAMPLE.TEST", SID: "S-1-5-21-1-2-3-1105"}
	w3 := httptest.NewRecorder()
	other, err := s.Begin(w3, request(false, "/oidc/", w2), sc, bob)
	if err != nil || other.Handle == first.Handle || st.Len() != 1 {
		t.Fatalf("another account: %+v %v (sessions %d)", other, err, st.Len())
	}
	if id, _ := s.Load(request(false, "/oidc/", w2), sc); id != nil {
		t.Error("alice's session outlived bob's sign-in in the same browser")
	}
	if id, _ := s.Load(request(false, "/oidc/", w3), sc); id == nil || id.Principal != bob.Principal {
		t.Errorf("bob's session: %v", id)
	}
	// Handles differ by purpose: one face's handle never names another's session.
	o := *s
	o.Purpose = "other"
	if cur, _ := o.Current(request(false, "/oidc/", w3), sc); cur != nil {
		t.Error("another purpose read the session")
	}
}
