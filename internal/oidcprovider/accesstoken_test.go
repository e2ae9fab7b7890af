package oidcprovider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signin/signintest"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store"
)

// A self-contained access token's claims read back exactly, and its id is what
// the library can seal with the subject (no ':').
func TestAccessClaimsReadBack(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	who := &identity.Identity{Principal: "alice@EXAMPLE.TEST", UPN: "alice@example.test", DisplayName: "Alice <Ä> \"Example\"",
		Mail: "alice@example.test", SID: "S-1-5-21-1-2-3-1104", Groups: []string{"S-1-5-21-1-2-3-513"}}
	for _, tc := range []struct {
		name                   string
		client, family, handle string
		scopes                 []string
		inStore                bool
	}{
		{"code grant", "rp", "", "H4ndle", []string{"openid", "profile", "email"}, false},
		{"openid alone", "rp", "", "H4ndle", []string{"openid"}, false},
		{"refresh family", "rp", "F4mily", "H4ndle", []string{"openid", "email", "offline_access"}, false},
		{"a sign-in recorded without a handle", "spa", "", "", []string{"openid", "profile"}, false},
		{"groups granted: the claims go to the store", "rp", "", "H", []string{"openid", "groups"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newAccessClaims(rand.Reader, tc.client, tc.family, tc.handle, now, now.Add(10*time.Minute), who, tc.scopes)
			if err != nil {
				t.Fatal(err)
			}
			if c.inStore != tc.inStore {
				t.Fatalf("inStore = %v, want %v", c.inStore, tc.inStore)
			}
			id := c.tokenID()
			if !isAccessClaims(id) || strings.Contains(id, ":") || strings.Contains(id, ".") {
				t.Fatalf("token id %q: want the mark and no ':' or '.'", id)
			}
			got, err := parseAccessClaims(id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) || !got.expires.Equal(now.Add(10*time.Minute)) || !reflect.DeepEqual(got.scopes, tc.scopes) {
				t.Fatalf("read back %+v, want %+v (scopes %v)", got, c, tc.scopes)
			}
			if tc.inStore && (got.upn != "" || got.mail != "" || got.principal != who.Principal) {
				t.Fatalf("a token whose claims are in the store carries %+v: want the principal only", got)
			}
			if want := (identity.Identity{Principal: who.Principal, UPN: who.UPN, DisplayName: who.DisplayName, Mail: who.Mail}); !tc.inStore && !reflect.DeepEqual(got.identity(), want) {
				t.Fatalf("claims %+v", got.identity())
			}
		})
	}
	long := *who
	long.DisplayName = strings.Repeat("x", maxClaimLen+1)
	if c, _ := newAccessClaims(rand.Reader, "rp", "", "H", now, now.Add(time.Minute), &long, []string{"openid"}); !c.inStore {
		t.Error("a claim over maxClaimLen was carried in the token")
	}
}

// Nothing but a well-formed claims encoding reads: every truncation, a trailing
// byte, an unknown version or flag, a missing client, or another encoding.
func TestAccessClaimsRefuseMalformed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c, _ := newAccessClaims(rand.Reader, "rp", "F", "H", now, now.Add(time.Minute), &identity.Identity{Principal: "alice@EXAMPLE.TEST"}, []string{"openid"})
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(c.tokenID(), accessTokenMark))
	enc := func(b []byte) string { return accessTokenMark + base64.RawURLEncoding.EncodeToString(b) }
	bad := []string{"", accessTokenMark, "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI", accessTokenMark + "!!", c.tokenID() + "=",
		enc(append(bytes.Clone(raw), 0)), enc(append([]byte{3}, raw[1:]...)), enc(append([]byte{0}, raw[1:]...))}
	for i := range raw {
		bad = append(bad, enc(raw[:i]))
	}
	at := 1 + binaryLen(raw[1:])
	flags := bytes.Clone(raw)
	flags[at] = 1 << (1 + len(grantScopes)) // an unknown flag
	bad = append(bad, enc(flags))
	v1 := bytes.Clone(raw)
	v1[0] = accessClaimsVersionV1 // version 1 had no scope bits
	bad = append(bad, enc(v1))
	noClient, _ := newAccessClaims(rand.Reader, "", "", "", now, now.Add(time.Minute), &identity.Identity{}, nil)
	bad = append(bad, noClient.tokenID())
	for _, b := range bad {
		if got, err := parseAccessClaims(b); err == nil {
			t.Errorf("parseAccessClaims(%q) = %+v, want an error", b, got)
		}
	}
}

// binaryLen is the length of the two uvarints (issued, lifetime) at the start of b.
func binaryLen(b []byte) int {
	n := 0
	for k := 0; k < 2; k++ {
		for b[n]&0x80 != 0 {
			n++
		}
		n++
	}
	return n
}

// userinfo's JSON is encoding/json's for every string, markup and invalid UTF-8
// included.
func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "alice", `"\<>&`, "\x00\x01\b\f\n\r\t\x1f\x7f", "Ä€𝄞", "\u2028\u2029", "a\xffb\xc3", "\xed\xa0\x80", "\uFFFD"} {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"alice", "<script>", "\u2028", "\xff\xfe", "Ä"} {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

func checkJSONString(t *testing.T, s string) {
	want, _ := json.Marshal(s)
	if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
		t.Errorf("appendJSONString(%q) = %s, encoding/json: %s", s, got, want)
	}
}

// testProvider is a provider over a store, with a clock tests move, the clients rp
// (openid profile email offline_access) and grp (with the group claims, keeping
// the names starting "sso").
type testProvider struct {
	*Provider
	now   time.Time
	mu    sync.Mutex
	store store.Store
	logs  *bytes.Buffer
}

func newTestProvider(t testing.TB, st store.Store) *testProvider {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testProvider{now: time.Now().Truncate(time.Second), store: st, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewJSONHandler(tp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := refusal.NewReporter(log, prometheus.NewRegistry(), false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{
		Issuer:      "http://sso.example.test/oidc",
		SigningKeys: []jose.JSONWebKey{{Key: ec, KeyID: "k1", Algorithm: string(jose.ES256)}},
		Clients: []Client{
			{ID: "rp", SecretHash: "x", RedirectURIs: []string{"https://rp.example.test/cb"},
				Scopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}},
			{ID: "grp", SecretHash: "x", RedirectURIs: []string{"https://grp.example.test/cb"},
				Scopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, ScopeGroups}, GroupNames: signin.GroupFilter{Prefixes: []string{"sso"}}},
		},
		SignIn: &signintest.SignIn{}, Store: st, Reporter: rep, Log: log,
		Now: func() time.Time { tp.mu.Lock(); defer tp.mu.Unlock(); return tp.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.Provider = p
	return tp
}

func (tp *testProvider) advance(d time.Duration) {
	tp.mu.Lock()
	tp.now = tp.now.Add(d)
	tp.mu.Unlock()
}

var testAlice = identity.Identity{Principal: "alice@EXAMPLE.TEST", UPN: "alice@example.test", DisplayName: "Alice Example",
	Mail: "alice@example.test", SID: "S-1-5-21-1-2-3-1104", Realm: "EXAMPLE.TEST",
	Groups: []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1111"}, GroupNames: []string{"Domain Users", "sso-users"}}

// issue issues an access token to client for alice, as the token endpoint does, and
// returns it sealed as the client holds it.
func (tp *testProvider) issue(t testing.TB, client, family, handle string, scopes ...string) string {
	t.Helper()
	who := testAlice
	a := &authRequest{Request: Request{ClientID: client, Scopes: scopes}, identity: &who,
		subject: signingkeys.Subject(tp.opts.Issuer, who.SID), handle: handle}
	id, _, err := tp.st.accessToken(context.Background(), a, family)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := tp.crypto.Encrypt(id + ":" + a.subject)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// get asks userinfo with the access token in the Authorization header.
func (tp *testProvider) get(t *testing.T, token string) (int, http.Header, map[string]any) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://sso.example.test/oidc/userinfo", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return tp.ask(t, r)
}

func (tp *testProvider) ask(t *testing.T, r *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	tp.handler.ServeHTTP(w, r)
	var claims map[string]any
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &claims); err != nil {
			t.Fatalf("userinfo answered %q: %v", w.Body, err)
		}
	}
	return w.Code, w.Header(), claims
}

// refusedWith checks that userinfo refused with RFC 6750's invalid_token challenge
// and logged the cause (or, for a store that cannot answer, the operation).
func (tp *testProvider) refusedWith(t *testing.T, token, cause string) {
	t.Helper()
	tp.logs.Reset()
	code, h, _ := tp.get(t, token)
	if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="kerbgate", error="invalid_token"` {
		t.Fatalf("userinfo: %d %q, want 401 with the invalid_token challenge", code, h.Get("WWW-Authenticate"))
	}
	if !strings.Contains(tp.logs.String(), `"cause":"`+cause+`"`) && !strings.Contains(tp.logs.String(), `"op":"`+cause+`"`) {
		t.Fatalf("log %s: want cause %s", tp.logs, cause)
	}
}

// A self-contained access token is answered at userinfo from its own claims, and
// refused as soon as it is revoked, its sign-in ended, its refresh family revoked
// or it expires — each read from the store at each use — and while the store
// cannot answer (fail closed).
func TestSelfContainedAccessTokenLivesOnlyWhileTheStoreSaysSo(t *testing.T) {
	st := signintest.NewStore()
	tp := newTestProvider(t, st)
	ctx := context.Background()
	wantAlice := map[string]any{"sub": signingkeys.Subject(tp.opts.Issuer, testAlice.SID), "name": "Alice Example",
		"preferred_username": "alice@example.test", "upn": "alice@example.test", "email": "alice@example.test", "email_verified": true}

	tok := tp.issue(t, "rp", "", "H1", "openid", "profile", "email")
	if code, _, claims := tp.get(t, tok); code != 200 || !reflect.DeepEqual(claims, wantAlice) {
		t.Fatalf("userinfo: %d %v, want %v", code, claims, wantAlice)
	}
	if st.Len() != 0 {
		t.Fatalf("issuing the token wrote %d store records, want none", st.Len())
	}

	// Revoked at /revoke (the library hands the opened id with its subject).
	id, sub := opened(t, tp, tok)
	if e := tp.st.RevokeToken(ctx, id, "", "rp"); e != nil || st.Len() != 0 {
		t.Fatalf("a revocation of a string the client sent (no subject) wrote a record: %v", e)
	}
	if e := tp.st.RevokeToken(ctx, id, sub, "grp"); e != nil || st.Len() != 0 {
		t.Fatalf("another client's revocation wrote a record: %v", e)
	}
	if code, _, _ := tp.get(t, tok); code != 200 {
		t.Fatal("a refused revocation ended the token")
	}
	if e := tp.st.RevokeToken(ctx, id, sub, "rp"); e != nil {
		t.Fatal(e)
	}
	tp.refusedWith(t, tok, "revoked")
	if code, _, _ := tp.get(t, tp.issue(t, "rp", "", "H1", "openid")); code != 200 {
		t.Fatal("revoking one token ended another of the same sign-in")
	}

	// Its sign-in ended by end_session.
	tok = tp.issue(t, "rp", "", "H2", "openid")
	if err := tp.st.end(ctx, "H2"); err != nil {
		t.Fatal(err)
	}
	tp.refusedWith(t, tok, "signed_out")

	// Its refresh family revoked.
	if err := st.PutSession(ctx, "FAM", store.Session{AppID: familyAppPrefix + "rp", CreatedAt: tp.now, ExpiresAt: tp.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tok = tp.issue(t, "rp", "FAM", "H3", "openid", "offline_access")
	if code, _, _ := tp.get(t, tok); code != 200 {
		t.Fatalf("userinfo with a live family: %d", code)
	}
	if err := st.DeleteSession(ctx, "FAM"); err != nil {
		t.Fatal(err)
	}
	tp.refusedWith(t, tok, "family_revoked")

	// The store down: refused, the cause logged as the store's.
	tok = tp.issue(t, "rp", "", "H4", "openid")
	st.SetDown(true)
	tp.refusedWith(t, tok, "get_sessions")
	st.SetDown(false)
	if code, _, _ := tp.get(t, tok); code != 200 {
		t.Fatal("the token did not work once the store answered again")
	}

	// Expired.
	tp.advance(10*time.Minute + time.Second)
	tp.refusedWith(t, tok, "expired")

	// Missing, and not kerbgate's.
	if code, h, _ := tp.get(t, ""); code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="kerbgate"` {
		t.Fatalf("no token: %d %q", code, h.Get("WWW-Authenticate"))
	}
	tp.refusedWith(t, "not-a-token", "malformed")
	forged, _ := tp.crypto.Encrypt("~AQID:sub") // sealed by the key, not a token's claims
	tp.refusedWith(t, forged, "malformed")
}

// opened is the id and subject the library finds when it opens the token's seal.
func opened(t *testing.T, tp *testProvider, token string) (string, string) {
	t.Helper()
	s, err := tp.crypto.Decrypt(token)
	if err != nil {
		t.Fatal(err)
	}
	id, sub, _ := strings.Cut(s, ":")
	return id, sub
}

// Group claims do not fit a token: they are kept in the token's own store record,
// read with its liveness, and answered as the client's filter keeps them.
func TestAccessTokenWithGroupClaimsReadsThemFromTheStore(t *testing.T) {
	st := signintest.NewStore()
	tp := newTestProvider(t, st)
	tok := tp.issue(t, "grp", "", "H", "openid", "profile", ScopeGroups)
	if st.Len() != 1 {
		t.Fatalf("%d store records, want the token's claims record", st.Len())
	}
	code, _, claims := tp.get(t, tok)
	want := map[string]any{"sub": signingkeys.Subject(tp.opts.Issuer, testAlice.SID), "name": "Alice Example",
		"preferred_username": "alice@example.test", "upn": "alice@example.test",
		"groups": []any{"sso-users"}, "group_sids": []any{}}
	if code != 200 || !reflect.DeepEqual(claims, want) {
		t.Fatalf("userinfo: %d %v, want %v", code, claims, want)
	}
	// Granted without the scope: no group claim, and nothing stored.
	tok = tp.issue(t, "grp", "", "H", "openid", "profile")
	if code, _, claims := tp.get(t, tok); code != 200 || claims["groups"] != nil || claims["group_sids"] != nil || st.Len() != 1 {
		t.Fatalf("userinfo without the groups scope: %d %v (%d records)", code, claims, st.Len())
	}
	// Revoked: refused although its claims record lives on.
	tok = tp.issue(t, "grp", "", "H", "openid", "profile", ScopeGroups)
	id, sub := opened(t, tp, tok)
	if e := tp.st.RevokeToken(context.Background(), id, sub, "grp"); e != nil {
		t.Fatal(e)
	}
	tp.refusedWith(t, tok, "revoked")
}

// An access token issued before tokens were self-contained (its id keys a record
// holding the identity) is answered until it expires, and refused once its record
// is gone (revoked) or its sign-in ended.
func TestAccessTokenOfBeforeIsStillAnswered(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "s.db"), store.BoltOptions{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tp := newTestProvider(t, st)
	ctx := context.Background()
	sub := signingkeys.Subject(tp.opts.Issuer, testAlice.SID)
	legacy := func(id, handle string) string {
		err := st.PutSession(ctx, id, store.Session{AppID: accessApp{client: "rp", handle: handle}.String(), Identity: testAlice,
			CreatedAt: tp.now, ExpiresAt: tp.now.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := tp.crypto.Encrypt(id + ":" + sub)
		return tok
	}
	tok := legacy("MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI", "H")
	if code, _, claims := tp.get(t, tok); code != 200 || claims["sub"] != sub || claims["email"] != "alice@example.test" {
		t.Fatalf("userinfo: %d %v", code, claims)
	}
	if e := tp.st.RevokeToken(ctx, "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI", sub, "rp"); e != nil {
		t.Fatal(e)
	}
	tp.refusedWith(t, tok, "unknown_or_revoked")
	tok = legacy("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZn", "H2")
	if err := tp.st.end(ctx, "H2"); err != nil {
		t.Fatal(err)
	}
	tp.refusedWith(t, tok, "signed_out")
}

// userinfo takes the token as RFC 6750 allows (the header's scheme in any case, a
// form body, the query), answers the library's CORS headers, and the claims as
// fill (what ID tokens use) has them.
func TestUserinfoRequestsAndAnswers(t *testing.T) {
	st := signintest.NewStore()
	tp := newTestProvider(t, st)
	tok := tp.issue(t, "rp", "", "H", "openid", "profile")
	for _, r := range []*http.Request{
		func() *http.Request {
			r := httptest.NewRequest("GET", "http://sso.example.test/oidc/userinfo", nil)
			r.Header.Set("Authorization", "bEaReR "+tok)
			return r
		}(),
		func() *http.Request {
			r := httptest.NewRequest("POST", "http://sso.example.test/oidc/userinfo", strings.NewReader(url.Values{"access_token": {tok}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(),
		httptest.NewRequest("GET", "http://sso.example.test/oidc/userinfo?access_token="+url.QueryEscape(tok), nil),
	} {
		r.Header.Set("Origin", "https://spa.example.test")
		code, h, claims := tp.ask(t, r)
		if code != 200 || claims["preferred_username"] != "alice@example.test" || h.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s: %d %v %v", r.Method, r.URL, code, h, claims)
		}
		if h.Get("Access-Control-Allow-Origin") != "https://spa.example.test" || h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("CORS headers %v", h)
		}
	}
	// A header of another scheme presents no bearer token: refused with the
	// invalid_token challenge (the client tried to authenticate).
	r := httptest.NewRequest("GET", "http://sso.example.test/oidc/userinfo", nil)
	r.Header.Set("Authorization", "Basic cnA6eA==")
	if code, h, _ := tp.ask(t, r); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("Basic credentials: %d %v", code, h)
	}
	// A CORS preflight is the library's CORS answer.
	r = httptest.NewRequest("OPTIONS", "http://sso.example.test/oidc/userinfo", nil)
	r.Header.Set("Origin", "https://spa.example.test")
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("Access-Control-Request-Headers", "authorization")
	w := httptest.NewRecorder()
	tp.handler.ServeHTTP(w, r)
	if w.Code/100 != 2 || w.Header().Get("Access-Control-Allow-Origin") != "https://spa.example.test" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}

	// Every combination of claims and scopes is written as fill and the library's
	// encoder write it.
	ids := []identity.Identity{testAlice, {Principal: "bob@EXAMPLE.TEST", SID: "S-1"},
		{Principal: "x@EXAMPLE.TEST", DisplayName: `<script>"&'`, Mail: "\u2028@x", Groups: []string{"S-1"}},
		{Principal: "dave@EXAMPLE.TEST", UPN: "dave@example.test", Groups: []string{"S-1-5-21-1-2-3-513", "S-2"}, GroupNames: []string{"sso-a", "b"}}}
	for _, id := range ids {
		for _, c := range []*client{nil, tp.clients["rp"], tp.clients["grp"]} {
			for _, scopes := range [][]string{{"openid"}, defaultScopes, {"openid", "profile", ScopeGroups}, {"openid", "email", ScopeGroups}} {
				var u oidc.UserInfo
				tp.st.fill(&u, "SUB", &id, scopes, c, false)
				lib, _ := json.Marshal(&u)
				var want, got map[string]any
				_ = json.Unmarshal(lib, &want)
				ours := tp.appendUserinfo(nil, "SUB", &id, scopes, c)
				if err := json.Unmarshal(ours, &got); err != nil || !reflect.DeepEqual(got, want) || !bytes.HasSuffix(ours, []byte("}\n")) {
					t.Errorf("%+v %v: kerbgate wrote %s, the library %s", id, scopes, ours, lib)
				}
			}
		}
	}
}

func BenchmarkUserinfo(b *testing.B) {
	st := signintest.NewStore()
	tp := newTestProvider(b, st)
	tok := tp.issue(b, "rp", "", "H", "openid")
	r := httptest.NewRequest("GET", "http://sso.example.test/oidc/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		tp.handler.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	}
}

// A code names its sign-in inside its seal, so that the token endpoint reads the
// sign-in's ended-record with the take, in one store operation: a code whose
// sign-in was ended between its issue and its redemption is refused (spent), the
// others redeem; a code sealing no handle (the library's callback, a node before)
// is checked by its record's handle as before.
func TestCodeOfAnEndedSignInIsRefused(t *testing.T) {
	st := signintest.NewStore()
	tp := newTestProvider(t, st)
	ctx := context.Background()
	code := func(id, handle string) string {
		t.Helper()
		who := testAlice
		req := Request{ClientID: "rp", Scopes: []string{"openid"}, Created: tp.now}
		b, _ := json.Marshal(req)
		a := &authRequest{Request: req, ID: id, sealed: tp.browser.Keys.Seal(requestPurpose, base64.RawURLEncoding.EncodeToString(b)),
			identity: &who, handle: handle}
		tp.st.hold(a)
		sealed, err := tp.crypto.Encrypt(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.st.SaveAuthCode(ctx, a.ID, sealed); err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	redeem := func(c string) (*requestInfo, error) {
		ri := &requestInfo{}
		_, err := tp.st.AuthRequestByCode(context.WithValue(ctx, requestKey{}, ri), c)
		return ri, err
	}
	live := code(codeID("k1", "H1"), "H1")
	ended := code(codeID("k2", "H2"), "H2")
	legacy := code("k3", "H2") // sealed without its handle
	if got := tp.st.codeHandle(ended); got != "H2" {
		t.Fatalf("codeHandle = %q, want H2", got)
	}
	if err := tp.st.end(ctx, "H2"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{ended, legacy} {
		ri, err := redeem(c)
		if err == nil || ri.refusal == nil || !strings.Contains(fmt.Sprint(ri.refusal.Facts), "signed_out") {
			t.Errorf("a code of an ended sign-in: %v, refusal %+v", err, ri.refusal)
		}
		if _, err := redeem(c); err == nil {
			t.Error("the refused code redeemed afterwards")
		}
	}
	if _, err := redeem(live); err != nil {
		t.Fatalf("a code of a live sign-in: %v", err)
	}
	c := code(codeID("k4", "H1"), "H1")
	st.SetDown(true)
	defer st.SetDown(false)
	if _, err := redeem(c); err == nil {
		t.Error("a code redeemed while the store was down")
	}
}

// Userinfo and introspection answer the claims of the scopes the access token
// was granted (OIDC Core §5.3, §5.4), not of every scope its client may ask for:
// rp may ask for profile and email, and a grant of openid alone gets sub alone.
// Introspection names the granted scopes (RFC 7662 §2.2).
func TestUserinfoAnswersTheGrantedScopes(t *testing.T) {
	st := signintest.NewStore()
	tp := newTestProvider(t, st)
	sub := signingkeys.Subject(tp.opts.Issuer, testAlice.SID)
	profile := map[string]any{"name": "Alice Example", "preferred_username": "alice@example.test", "upn": "alice@example.test"}
	email := map[string]any{"email": "alice@example.test", "email_verified": true}
	with := func(parts ...map[string]any) map[string]any {
		m := map[string]any{"sub": sub}
		for _, p := range parts {
			for k, v := range p {
				m[k] = v
			}
		}
		return m
	}
	for _, tc := range []struct {
		scopes []string
		want   map[string]any
	}{
		{[]string{"openid"}, with()},
		{[]string{"openid", "email"}, with(email)},
		{[]string{"openid", "profile"}, with(profile)},
		{[]string{"openid", "profile", "email", "offline_access"}, with(profile, email)},
	} {
		tok := tp.issue(t, "rp", "", "H", tc.scopes...)
		if code, _, claims := tp.get(t, tok); code != 200 || !reflect.DeepEqual(claims, tc.want) {
			t.Errorf("granted %v: userinfo %d %v, want %v", tc.scopes, code, claims, tc.want)
		}
		// The library's path (SetUserinfoFromToken) answers the same.
		id, tsub := opened(t, tp, tok)
		var u oidc.UserInfo
		if err := tp.st.SetUserinfoFromToken(context.Background(), &u, id, tsub, ""); err != nil {
			t.Fatal(err)
		}
		var lib map[string]any
		b, _ := json.Marshal(&u)
		_ = json.Unmarshal(b, &lib)
		if !reflect.DeepEqual(lib, tc.want) {
			t.Errorf("granted %v: SetUserinfoFromToken %v, want %v", tc.scopes, lib, tc.want)
		}
		var resp oidc.IntrospectionResponse
		if err := tp.st.SetIntrospectionFromToken(context.Background(), &resp, id, tsub, "rp"); err != nil {
			t.Fatal(err)
		}
		if got := []string(resp.Scope); !reflect.DeepEqual(got, tc.scopes) {
			t.Errorf("granted %v: introspection's scope %v", tc.scopes, got)
		}
		if _, ok := tc.want["email"]; (resp.Email != "") != ok {
			t.Errorf("granted %v: introspection's email %q", tc.scopes, resp.Email)
		}
		if _, ok := tc.want["name"]; (resp.Name != "") != ok || (resp.Username != "") != ok {
			t.Errorf("granted %v: introspection's name %q, username %q", tc.scopes, resp.Name, resp.Username)
		}
	}

	// A token of version 1 (kerbgate before this change) does not say what was
	// granted: it is answered with the client's configured scopes, as then, and
	// introspection names no scope.
	tok := tp.issue(t, "rp", "", "H", "openid")
	id, tsub := opened(t, tp, tok)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(id, accessTokenMark))
	raw[0] = accessClaimsVersionV1
	raw[1+binaryLen(raw[1:])] &= 1 // no scope bits
	old, err := tp.crypto.Encrypt(accessTokenMark + base64.RawURLEncoding.EncodeToString(raw) + ":" + tsub)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, claims := tp.get(t, old); code != 200 || !reflect.DeepEqual(claims, with(profile, email)) {
		t.Errorf("a token of version 1: userinfo %d %v, want the client's scopes' claims", code, claims)
	}
	oldID, _ := opened(t, tp, old)
	var resp oidc.IntrospectionResponse
	if err := tp.st.SetIntrospectionFromToken(context.Background(), &resp, oldID, tsub, "rp"); err != nil || resp.Scope != nil || resp.Email == "" {
		t.Errorf("a token of version 1: introspection %v scope %v email %q", err, resp.Scope, resp.Email)
	}
}
