package proxy

// Unit tests of the proxy's own logic (when the ticket is sent, body replay, login
// identities) with an in-memory delegator. The Kerberos path end to end, with the
// real KDC and Apache mod_auth_gssapi, is tested in internal/server.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
)

type recordingDelegator struct {
	mu    sync.Mutex
	calls []Principal
	err   error
}

func (d *recordingDelegator) Token(_ context.Context, user Principal, spn string, f s4u.Format) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, user)
	if d.err != nil {
		return nil, true, d.err
	}
	return []byte("token-for-" + user.Name + "-" + spn), true, nil
}

type fakeDirectory struct{ alt string }

func (f fakeDirectory) LookupIdentity(_ context.Context, id *identity.Identity) (*directory.User, error) {
	return &directory.User{DN: "CN=alice,CN=Users,DC=example,DC=test", SAMAccountName: "alice", UPN: id.UPN}, nil
}
func (f fakeDirectory) Attribute(_ context.Context, dn, attr string) (string, error) {
	return f.alt, nil
}
func (f fakeDirectory) GroupSID(_ context.Context, name string) (string, error) { return "", nil }

// authOnly answers 401 Negotiate unless the request carries a token, and echoes the
// token and body.
func authOnly(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+"|"+string(body))
		mu.Unlock()
		auth := r.Header.Get("Authorization")
		tok, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Negotiate "))
		switch {
		case auth == "":
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.WriteHeader(401)
		case strings.HasPrefix(string(tok), "token-for-nobody"):
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.WriteHeader(401)
		default:
			w.Header().Set("WWW-Authenticate", "Negotiate b2theQ==") // an AP-REP for kerbgate
			io.WriteString(w, "ok:"+string(body))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// newTestRoute builds a service with one app and an identity injected as if
// pre-authenticated, and returns a function that sends a request through it.
func newTestRoute(t *testing.T, upstream string, k *Kerberos, d Delegator, dir Directory) func(method, body string, id *identity.Identity) *httptest.ResponseRecorder {
	t.Helper()
	u, _ := url.Parse(upstream)
	reg := prometheus.NewRegistry()
	rep, _ := refusal.NewReporter(slog.New(slog.DiscardHandler), reg, true)
	opts := Options{
		Apps:  []App{{ID: "app", Host: "app.example.test", PathPrefix: "/", Upstream: u, Timeout: 5 * time.Second, PreAuth: signin.Passthrough{}, Kerberos: k}},
		Realm: "EXAMPLE.TEST", Delegator: d, Directory: dir, Store: signintest.NewSessions(), Reporter: rep,
		Log: slog.New(slog.DiscardHandler), Registerer: reg,
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rt := s.routes["app.example.test"][0]
	return func(method, body string, id *identity.Identity) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://app.example.test/x", strings.NewReader(body))
		r.Header.Set("Accept", "text/plain")
		w := httptest.NewRecorder()
		if id == nil {
			rt.forward(w, r, nil)
		} else {
			rt.authorized(w, r, id)
		}
		return w
	}
}

var alice = &identity.Identity{Principal: "alice@EXAMPLE.TEST", UPN: "alice@example.test", SAMAccountName: "alice", Realm: "EXAMPLE.TEST"}

func TestSendOn401ReplaysTheBody(t *testing.T) {
	up, seen := authOnly(t)
	d := &recordingDelegator{}
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginUPN, TokenFormat: s4u.SPNEGO, Send: SendOn401, MaxReplayBody: 1024}, d, nil)
	w := send("POST", "form=data", alice)
	if w.Code != 200 || w.Body.String() != "ok:form=data" {
		t.Fatalf("got %d %q", w.Code, w.Body.String())
	}
	if len(*seen) != 2 || (*seen)[0] != "|form=data" || !strings.HasPrefix((*seen)[1], "Negotiate ") || !strings.HasSuffix((*seen)[1], "|form=data") {
		t.Fatalf("upstream saw %q", *seen)
	}
	if w.Header().Get("WWW-Authenticate") != "" {
		t.Error("the upstream's AP-REP reached the browser")
	}
	if len(d.calls) != 1 || d.calls[0] != (Principal{Name: "alice@example.test", Enterprise: true}) {
		t.Fatalf("delegations %+v", d.calls)
	}
}

func TestSendOn401LargeBodyGoesWithTheTicket(t *testing.T) {
	up, seen := authOnly(t)
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginUPN, Send: SendOn401, MaxReplayBody: 4}, &recordingDelegator{}, nil)
	if w := send("POST", "longer than four", alice); w.Code != 200 {
		t.Fatalf("got %d", w.Code)
	}
	if len(*seen) != 1 || !strings.HasPrefix((*seen)[0], "Negotiate ") {
		t.Fatalf("upstream saw %q", *seen)
	}
}

func TestSendAlways(t *testing.T) {
	up, seen := authOnly(t)
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginSAMAccountName, Send: SendAlways}, &recordingDelegator{}, nil)
	if w := send("GET", "", alice); w.Code != 200 {
		t.Fatalf("got %d", w.Code)
	}
	want := "Negotiate " + base64.StdEncoding.EncodeToString([]byte("token-for-alice-HTTP/app.example.test")) + "|"
	if len(*seen) != 1 || (*seen)[0] != want {
		t.Fatalf("upstream saw %q", *seen)
	}
}

func TestUpstreamRefusingTheTicketIsNamed(t *testing.T) {
	up, _ := authOnly(t)
	nobody := &identity.Identity{Principal: "nobody@EXAMPLE.TEST", UPN: "nobody", Realm: "EXAMPLE.TEST"}
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginUPN, Send: SendAlways}, &recordingDelegator{}, nil)
	w := send("GET", "", nobody)
	if w.Code != 502 || w.Header().Get(refusal.HeaderReason) != string(reason.UpstreamRefusedTicket) {
		t.Fatalf("got %d %q", w.Code, w.Header().Get(refusal.HeaderReason))
	}
}

func TestDelegationFailureIsThePage(t *testing.T) {
	up, seen := authOnly(t)
	d := &recordingDelegator{err: reason.New(reason.DirectoryUnavailable, "no directory")}
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginUPN, Send: SendAlways}, d, nil)
	w := send("GET", "", alice)
	if w.Header().Get(refusal.HeaderReason) != string(reason.DirectoryUnavailable) || len(*seen) != 0 {
		t.Fatalf("got %d %q; upstream saw %q", w.Code, w.Header().Get(refusal.HeaderReason), *seen)
	}
}

func TestLoginIdentities(t *testing.T) {
	up, _ := authOnly(t)
	for _, c := range []struct {
		identity LoginIdentity
		alt      string
		want     Principal
	}{
		{LoginUPN, "", Principal{Name: "alice@example.test", Enterprise: true}},
		{LoginUPNUserPart, "", Principal{Name: "alice"}},
		{LoginSAMAccountName, "", Principal{Name: "alice"}},
		{LoginAlternateUPN, "alice.smith@corp.example", Principal{Name: "alice.smith@corp.example", Enterprise: true}},
		{LoginAlternateUPNUserPart, "alice.smith@corp.example", Principal{Name: "alice.smith"}},
	} {
		d := &recordingDelegator{}
		send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: c.identity,
			AlternateUPNAttribute: "extensionAttribute1", Send: SendAlways}, d, fakeDirectory{alt: c.alt})
		if w := send("GET", "", alice); w.Code != 200 {
			t.Fatalf("%s: %d", c.identity, w.Code)
		}
		if len(d.calls) != 1 || d.calls[0] != c.want {
			t.Errorf("%s: delegated %+v, want %+v", c.identity, d.calls, c.want)
		}
	}
	// No alternate UPN on the account: named, and no KDC request.
	d := &recordingDelegator{}
	send := newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: LoginAlternateUPN,
		AlternateUPNAttribute: "extensionAttribute1", Send: SendAlways}, d, fakeDirectory{})
	if w := send("GET", "", alice); w.Header().Get(refusal.HeaderReason) != string(reason.LoginIdentityMissing) || len(d.calls) != 0 {
		t.Fatalf("missing alternate UPN: %d %q", w.Code, w.Header().Get(refusal.HeaderReason))
	}
}

// Issue 13, item 2: a user of a trusted realm is delegated by UPN in their own realm;
// a name-only login identity is refused, with no KDC request, unless the app maps
// their realm explicitly.
func TestLoginIdentitiesOfForeignRealmUsers(t *testing.T) {
	up, _ := authOnly(t)
	partner := &identity.Identity{Principal: "administrator@PARTNER.TEST", UPN: "administrator@partner.test",
		SAMAccountName: "administrator", Realm: "PARTNER.TEST", SID: "S-1-5-21-1-2-3-500"}
	route := func(identity LoginIdentity, mapped ...string) (func(string, string, *identity.Identity) *httptest.ResponseRecorder, *recordingDelegator) {
		d := &recordingDelegator{}
		return newTestRoute(t, up.URL, &Kerberos{SPN: "HTTP/app.example.test", LoginIdentity: identity,
			AlternateUPNAttribute: "extensionAttribute1", Send: SendAlways, MapForeignRealms: mapped}, d, fakeDirectory{alt: "admin@partner.example"}), d
	}
	for _, li := range []LoginIdentity{LoginSAMAccountName, LoginUPNUserPart, LoginAlternateUPNUserPart} {
		send, d := route(li)
		w := send("GET", "", partner)
		if w.Code != 403 || w.Header().Get(refusal.HeaderReason) != string(reason.LoginIdentityForeignRealm) || len(d.calls) != 0 {
			t.Errorf("%s: got %d %q, delegations %+v", li, w.Code, w.Header().Get(refusal.HeaderReason), d.calls)
		}
		send, d = route(li, "PARTNER.TEST")
		if w := send("GET", "", partner); w.Code != 200 || len(d.calls) != 1 || d.calls[0].Realm != "PARTNER.TEST" || d.calls[0].Enterprise {
			t.Errorf("%s mapped: got %d, delegations %+v", li, w.Code, d.calls)
		}
	}
	for li, want := range map[LoginIdentity]Principal{
		LoginUPN:          {Name: "administrator@partner.test", Enterprise: true, Realm: "PARTNER.TEST"},
		LoginAlternateUPN: {Name: "admin@partner.example", Enterprise: true, Realm: "PARTNER.TEST"},
	} {
		send, d := route(li)
		if w := send("GET", "", partner); w.Code != 200 || len(d.calls) != 1 || d.calls[0] != want {
			t.Errorf("%s: got %d, delegations %+v, want %+v", li, w.Code, d.calls, want)
		}
	}
	// The own realm's users are unaffected, and carry no realm.
	send, d := route(LoginSAMAccountName)
	if w := send("GET", "", alice); w.Code != 200 || len(d.calls) != 1 || d.calls[0] != (Principal{Name: "alice"}) {
		t.Errorf("alice: got %d, delegations %+v", w.Code, d.calls)
	}
}

// pathService publishes apps (iwa ones with a sign-in that always challenges) in
// front of one upstream at its root, which answers the request target it received
// (the path under the app's prefix).
func pathService(t *testing.T, apps ...App) (*Service, error) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream:"+r.RequestURI)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	for i := range apps {
		apps[i].Upstream, apps[i].Timeout = u, 5*time.Second
	}
	reg := prometheus.NewRegistry()
	rep, _ := refusal.NewReporter(slog.New(slog.DiscardHandler), reg, true)
	return New(Options{Apps: apps, Store: signintest.NewSessions(), Reporter: rep,
		Log: slog.New(slog.DiscardHandler), Registerer: reg})
}

// challengeIWA is IWA whose sign-in always challenges.
var challengeIWA = signin.Negotiate{Middleware: func(http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", "Negotiate")
		w.WriteHeader(401)
	})
}}

func TestMatchRoutesOnTheCanonicalPath(t *testing.T) {
	s, err := pathService(t,
		App{ID: "open", Host: "app.example.test", PathPrefix: "/app/", PreAuth: signin.Passthrough{}},
		App{ID: "admin", Host: "app.example.test", PathPrefix: "/app/admin/", PreAuth: challengeIWA},
		App{ID: "exact", Host: "app.example.test", PathPrefix: "/x", PreAuth: signin.Passthrough{}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"/app/page?q=%2e%2e":       "200 upstream:/page?q=%2e%2e",
		"/app//page":               "200 upstream:/page",
		"/app/a/../b/./c/":         "200 upstream:/b/c/",
		"/app/%7e%61":              "200 upstream:/~a",
		"/app/caf%c3%a9":           "200 upstream:/caf%C3%A9",
		"/app//admin/secret":       "401 ",
		"/app/x/%2E%2E/admin/":     "401 ",
		"/app/admin":               "401 ",
		"/app/Admin/secret":        "400 path_not_canonical",
		"/app/admin./secret":       "400 path_not_canonical",
		"/app/admin::$DATA/secret": "400 path_not_canonical",
		"/app/admin%2Fsecret":      "400 path_not_canonical",
		"/app/..;/app/admin/":      "400 path_not_canonical",
		"/x":                       "200 upstream:/",
		"/x/y":                     "200 upstream:/y",
		"/xy":                      "404 ", // not under /x: kerbgate's own endpoints
		"/app/../elsewhere":        "404 ",
	} {
		r := httptest.NewRequest("GET", "http://app.example.test"+target, nil)
		w := httptest.NewRecorder()
		h := s.Match(r)
		if h == nil {
			h = http.NotFoundHandler()
		}
		h.ServeHTTP(w, r)
		got := fmt.Sprintf("%d %s", w.Code, w.Header().Get(refusal.HeaderReason))
		if w.Code == 200 {
			got = fmt.Sprintf("%d %s", w.Code, w.Body.String())
		}
		if got != want {
			t.Errorf("GET %s: %q, want %q", target, got, want)
		}
	}
	// Other hosts are not the proxy's: their paths are not looked at.
	if s.Match(httptest.NewRequest("GET", "http://other.example.test/a%2Fb", nil)) != nil {
		t.Error("a host with no app matched")
	}
}

func TestPathPrefixesMustBeCanonicalAndDistinctWithoutCase(t *testing.T) {
	for _, c := range []struct {
		prefixes []string
		err      string
	}{
		{[]string{"/app//"}, `path_prefix "/app//" is not a canonical path`},
		{[]string{"/app/./x/"}, "not a canonical path"},
		{[]string{"/app/%2e/"}, "not a canonical path"},
		{[]string{"/a%2fb/"}, "not a canonical path"},
		{[]string{"/app/", "/App/"}, "differ only in case"},
		{[]string{"/app/", "/app./"}, "differ only in case"},
		{[]string{"/app/", "/APP/x/"}, ""},
	} {
		var apps []App
		for i, p := range c.prefixes {
			apps = append(apps, App{ID: fmt.Sprint("a", i), Host: "app.example.test", PathPrefix: p, PreAuth: signin.Passthrough{}})
		}
		_, err := pathService(t, apps...)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: %v, want %q", c.prefixes, err, c.err)
		}
	}
}

// Behind a TLS-terminating balancer listed in trusted_proxies, the upstream hears
// what the browser used (https, its host, its address), as kerbgate's own cookies
// do; from an untrusted peer, the forwarded headers it sent are not passed on.
func TestUpstreamHearsTheClientsSchemeAndAddress(t *testing.T) {
	heard := map[string]string{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-For", "X-Forwarded-Host"} {
			heard[h] = r.Header.Get(h)
		}
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	reg := prometheus.NewRegistry()
	rep, _ := refusal.NewReporter(slog.New(slog.DiscardHandler), reg, true)
	s, err := New(Options{Apps: []App{{ID: "open", Host: "app.example.test", PathPrefix: "/", PreAuth: signin.Passthrough{},
		Upstream: u, Timeout: 5 * time.Second}}, Store: signintest.NewSessions(), Reporter: rep,
		Log: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	fe := frontend.New(nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	send := func(peer string) {
		r := httptest.NewRequest("GET", "http://app.example.test/page", nil)
		r.RemoteAddr = peer + ":4242"
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		r.Header.Set("X-Forwarded-Host", "app.example.test")
		fe.Middleware(s.Wrap(http.NotFoundHandler())).ServeHTTP(httptest.NewRecorder(), r)
	}
	send("192.0.2.10") // the balancer
	if heard["X-Forwarded-Proto"] != "https" || heard["X-Forwarded-For"] != "203.0.113.9" || heard["X-Forwarded-Host"] != "app.example.test" {
		t.Errorf("behind a trusted balancer the upstream heard %v", heard)
	}
	send("198.51.100.7") // anyone else
	if heard["X-Forwarded-Proto"] != "http" || heard["X-Forwarded-For"] != "198.51.100.7" {
		t.Errorf("from an untrusted peer the upstream heard %v", heard)
	}
}
