package sso

// Unit tests of the handoff's own logic with fakes: a pre-authenticator that signs in
// a given identity, a fake directory, an in-memory store. The whole flow against the
// real domain (curl --negotiate, Chromium, examples/ssoapp, Redis farms) is tested in
// internal/server.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
)

type fakeDirectory struct {
	user  *directory.User
	err   error
	names map[string]string // group SID -> name
}

func (d fakeDirectory) Check(context.Context, *identity.Identity) (*directory.User, error) {
	return d.user, d.err
}

func (d fakeDirectory) GroupNames(_ context.Context, sids []string) ([]string, error) {
	out := make([]string, len(sids))
	for i, sid := range sids {
		out[i] = d.names[sid]
	}
	return out, nil
}

const appSecret = "demo-secret"

var secretHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(appSecret), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

var alice = identity.Identity{Principal: "alice@EXAMPLE.TEST", UPN: "alice@example.test", Realm: "EXAMPLE.TEST",
	SID: "S-1-5-21-1-2-3-1103", Groups: []string{"S-1-5-21-1-2-3-513"}, AuthMethod: "kerberos"}

type handoff struct {
	svc    *Service
	mux    *http.ServeMux
	signIn *signintest.SignIn
	store  *signintest.Store
	now    time.Time
}

// newHandoff builds the service with the apps given (demo by default), alice signing in.
func newHandoff(t *testing.T, dir Directory, apps ...App) *handoff {
	t.Helper()
	if len(apps) == 0 {
		apps = []App{{ID: "demo", RedirectURIs: []string{"https://app.example.test/cb"}, SecretHash: secretHash,
			TokenTTL: time.Minute, SessionTTL: time.Hour}}
	}
	h := &handoff{signIn: &signintest.SignIn{Identity: alice}, store: signintest.NewStore(), now: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	rep, err := refusal.NewReporter(slog.New(slog.DiscardHandler), reg, true)
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = New(Options{Apps: apps, SignIn: h.signIn, Directory: dir, Store: h.store, Reporter: rep,
		Log: slog.New(slog.DiscardHandler), Registerer: reg, Now: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	h.mux = http.NewServeMux()
	h.svc.Register(h.mux)
	return h
}

func (h *handoff) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.mux.ServeHTTP(w, r)
	return w
}

// login is GET /sso/login with the cookies of prev (if any).
func (h *handoff) login(query string, prev *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://sso.example.test/sso/login?"+query, nil)
	if prev != nil {
		for _, c := range prev.Result().Cookies() {
			r.AddCookie(c)
		}
	}
	return h.do(r)
}

func (h *handoff) redeem(id, secret, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "http://sso.example.test/sso/redeem", strings.NewReader(url.Values{"ssoToken": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(id, secret)
	return h.do(r)
}

func reasonOf(w *httptest.ResponseRecorder) string { return w.Header().Get(refusal.HeaderReason) }

// tokenOf returns the ssoToken of a login's redirect, failing the test without one.
func tokenOf(t *testing.T, w *httptest.ResponseRecorder) (string, *url.URL) {
	t.Helper()
	if w.Code != http.StatusFound {
		t.Fatalf("login: %d %s", w.Code, reasonOf(w))
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil || u.Query().Get("ssoToken") == "" {
		t.Fatalf("redirect %q has no ssoToken", w.Header().Get("Location"))
	}
	return u.Query().Get("ssoToken"), u
}

// The whole handoff: sign-in, redirect with a token and the state, one redemption for
// the identity and a session that the app reads and revokes.
func TestHandoffIssuesAndRedeemsOnce(t *testing.T) {
	h := newHandoff(t, nil)
	tok, u := tokenOf(t, h.login("app=demo&state=xyz", nil))
	if u.Host != "app.example.test" || u.Path != "/cb" || u.Query().Get("state") != "xyz" {
		t.Errorf("redirect %s", u)
	}
	w := h.redeem("demo", appSecret, tok)
	if w.Code != 200 {
		t.Fatalf("redeem: %d %s", w.Code, reasonOf(w))
	}
	var resp Response
	if err := json.NewDecoder(w.Body).Decode(&resp); err != nil || resp.Identity.Principal != alice.Principal || resp.App != "demo" {
		t.Fatalf("redeem answer %+v %v", resp, err)
	}
	if w := h.redeem("demo", appSecret, tok); w.Code == 200 || reasonOf(w) != string(reason.TokenInvalid) {
		t.Errorf("second redemption: %d %s", w.Code, reasonOf(w))
	}
	get := httptest.NewRequest("GET", "http://sso.example.test/sso/sessions/"+resp.Session.ID, nil)
	get.SetBasicAuth("demo", appSecret)
	if w := h.do(get); w.Code != 200 {
		t.Errorf("session lookup: %d %s", w.Code, reasonOf(w))
	}
	del := httptest.NewRequest("DELETE", "http://sso.example.test/sso/sessions/"+resp.Session.ID, nil)
	del.SetBasicAuth("demo", appSecret)
	if w := h.do(del); w.Code != 204 {
		t.Errorf("revoke: %d %s", w.Code, reasonOf(w))
	}
	if w := h.do(get); reasonOf(w) != string(reason.SessionNotFound) {
		t.Errorf("revoked session: %d %s", w.Code, reasonOf(w))
	}
}

// An unregistered redirect_uri or app is refused before any sign-in.
func TestLoginRefusesBeforeSignIn(t *testing.T) {
	h := newHandoff(t, nil)
	for q, want := range map[string]reason.Code{
		"app=nope": reason.UnknownApp,
		"app=demo&redirect_uri=https://evil.example/cb":        reason.RedirectNotRegistered,
		"app=demo&state=" + strings.Repeat("s", maxStateLen+1): reason.BadRequest,
	} {
		if w := h.login(q, nil); reasonOf(w) != string(want) {
			t.Errorf("%.40s: %d %s, want %s", q, w.Code, reasonOf(w), want)
		}
	}
	if h.signIn.Count() != 0 {
		t.Errorf("%d sign-ins for refused logins", h.signIn.Count())
	}
}

// kerbgate's own browser session spares a returning browser the sign-in; the group
// check still runs on every login.
func TestBrowserSessionSparesTheSignIn(t *testing.T) {
	h := newHandoff(t, nil)
	first := h.login("app=demo", nil)
	tokenOf(t, first)
	c := first.Result().Cookies()
	if len(c) != 1 || c[0].Path != "/sso/" || !c[0].HttpOnly {
		t.Fatalf("browser session cookie %v", first.Header()["Set-Cookie"])
	}
	second := h.login("app=demo", first)
	tokenOf(t, second)
	if h.signIn.Count() != 1 || len(second.Result().Cookies()) != 0 {
		t.Errorf("returning browser: %d sign-ins, cookies %v", h.signIn.Count(), second.Header()["Set-Cookie"])
	}
	// Signed out (same-origin POST): the next login signs in again.
	r := httptest.NewRequest("POST", "http://sso.example.test/sso/logout", nil)
	r.Header.Set("Origin", "http://sso.example.test")
	for _, c := range first.Result().Cookies() {
		r.AddCookie(c)
	}
	if w := h.do(r); w.Code != 200 {
		t.Fatalf("logout: %d %s", w.Code, reasonOf(w))
	}
	tokenOf(t, h.login("app=demo", first))
	if h.signIn.Count() != 2 {
		t.Errorf("after sign-out: %d sign-ins, want 2", h.signIn.Count())
	}
}

// The app's group policy: a group of the user, or the user's own SID, lets the user
// in; anything else is not_in_group, and no token is issued.
func TestLoginChecksTheAppsGroups(t *testing.T) {
	for _, c := range []struct {
		allowed string
		want    reason.Code
	}{
		{"S-1-5-21-1-2-3-513", ""},
		{"S-1-5-21-1-2-3-1103", ""},
		{"S-1-5-32-544", reason.NotInGroup},
	} {
		g, err := signin.NewGroups("demo", []string{c.allowed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := newHandoff(t, nil, App{ID: "demo", RedirectURIs: []string{"https://app.example.test/cb"}, SecretHash: secretHash,
			TokenTTL: time.Minute, SessionTTL: time.Hour, Groups: g})
		w := h.login("app=demo", nil)
		if got := reason.Code(reasonOf(w)); got != c.want {
			t.Errorf("%s: %d %q, want %q", c.allowed, w.Code, got, c.want)
		}
		if c.want != "" && h.store.Tokens() != 0 {
			t.Errorf("%s: a token was issued to a refused user", c.allowed)
		}
	}
}

// With require_directory, the directory's answer decides, and its groups replace the
// ticket's (the PAC is as old as the ticket).
func TestLoginConsultsTheDirectory(t *testing.T) {
	app := func(allowed ...string) App {
		g, _ := signin.NewGroups("demo", allowed, nil)
		return App{ID: "demo", RedirectURIs: []string{"https://app.example.test/cb"}, SecretHash: secretHash,
			TokenTTL: time.Minute, SessionTTL: time.Hour, Groups: g, RequireDirectory: true}
	}
	disabled := fakeDirectory{err: reason.New(reason.UserDisabled, "account disabled")}
	if w := newHandoff(t, disabled, app()).login("app=demo", nil); reasonOf(w) != string(reason.UserDisabled) {
		t.Errorf("disabled account: %d %s", w.Code, reasonOf(w))
	}
	staff := fakeDirectory{user: &directory.User{DisplayName: "Alice", Mail: "alice@example.test", Groups: []string{"S-1-5-21-1-2-3-1110", "S-1-1-0"}},
		names: map[string]string{"S-1-5-21-1-2-3-1110": "staff", "S-1-5-21-1-2-3-513": "Domain Users"}}
	h := newHandoff(t, staff, app("S-1-5-21-1-2-3-1110"))
	tok, _ := tokenOf(t, h.login("app=demo", nil))
	w := h.redeem("demo", appSecret, tok)
	var resp Response
	if err := json.NewDecoder(w.Body).Decode(&resp); err != nil || resp.Identity.DisplayName != "Alice" || resp.Identity.Mail != "alice@example.test" {
		t.Errorf("enriched identity: %+v %v", resp.Identity, err)
	}
	// The names are those of the directory's groups, not the ticket's.
	if !slices.Equal(resp.Identity.GroupNames, []string{"staff"}) || !slices.Equal(resp.Identity.Groups, []string{"S-1-5-21-1-2-3-1110", "S-1-1-0"}) {
		t.Errorf("redeemed groups %q, names %q", resp.Identity.Groups, resp.Identity.GroupNames)
	}
	if _, err := New(Options{Apps: []App{app()}, SignIn: &signintest.SignIn{}, Store: signintest.NewStore(), Reporter: &refusal.Reporter{},
		Log: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("an app requiring a directory was accepted without one")
	}
}

// Redemption needs the app's own secret, and the token of that app.
func TestRedeemChecksTheApp(t *testing.T) {
	other := App{ID: "other", RedirectURIs: []string{"https://other.example.test/cb"}, SecretHash: secretHash,
		TokenTTL: time.Minute, SessionTTL: time.Hour}
	demo := App{ID: "demo", RedirectURIs: []string{"https://app.example.test/cb"}, SecretHash: secretHash,
		TokenTTL: time.Minute, SessionTTL: time.Hour}
	h := newHandoff(t, nil, demo, other)
	tok, _ := tokenOf(t, h.login("app=demo", nil))
	if w := h.redeem("demo", "wrong", tok); w.Code != 401 {
		t.Errorf("wrong secret: %d %s", w.Code, reasonOf(w))
	}
	if w := h.redeem("other", appSecret, tok); reasonOf(w) != string(reason.TokenInvalid) {
		t.Errorf("another app's token: %d %s", w.Code, reasonOf(w))
	}
	// Still redeemable by its own app, until it expires.
	h.now = h.now.Add(2 * time.Minute)
	if w := h.redeem("demo", appSecret, tok); reasonOf(w) != string(reason.TokenInvalid) {
		t.Errorf("expired token: %d %s", w.Code, reasonOf(w))
	}
}

// A store that cannot answer is store_unavailable, never a fresh sign-in.
func TestStoreUnavailableIsNamed(t *testing.T) {
	h := newHandoff(t, nil)
	first := h.login("app=demo", nil)
	tokenOf(t, first)
	h.store.SetDown(true)
	if w := h.login("app=demo", first); reasonOf(w) != string(reason.StoreUnavailable) || h.signIn.Count() != 1 {
		t.Errorf("store down: %d %s, %d sign-ins", w.Code, reasonOf(w), h.signIn.Count())
	}
}
