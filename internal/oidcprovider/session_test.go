package oidcprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

func TestACRIsTheFirstRequestedClassTheSignInSatisfies(t *testing.T) {
	const k, cb, pw = ACRKerberos, ACRKerberosChannelBound, ACRPassword
	unbound := &identity.Identity{AuthMethod: "kerberos"}
	bound := &identity.Identity{AuthMethod: "kerberos", ChannelBound: true}
	password := &identity.Identity{AuthMethod: "pwd"}
	for _, c := range []struct {
		requested []string
		id        *identity.Identity
		want      string
		fresh     bool // a session of such a sign-in is not reused
	}{
		{nil, unbound, k, false},
		{nil, bound, cb, false},
		{[]string{cb}, unbound, k, true},
		{[]string{cb}, bound, cb, false},
		{[]string{k, cb}, bound, k, false},
		{[]string{cb, k}, unbound, k, true},
		{[]string{"urn:example:mfa"}, unbound, k, false},
		{[]string{"urn:example:mfa", cb}, bound, cb, false},
		// A password sign-in never claims a Kerberos class, and a session of one
		// is not reused where a Kerberos class is asked for first.
		{nil, password, pw, false},
		{[]string{k}, password, pw, true},
		{[]string{cb, k}, password, pw, true},
		{[]string{pw}, password, pw, false},
		{[]string{pw, k}, password, pw, false},
		// Asked for the password class, a Kerberos sign-in says what it was.
		{[]string{pw}, unbound, k, false},
		{[]string{pw, k}, bound, k, false},
	} {
		if got := acrFor(c.requested, c.id); got != c.want {
			t.Errorf("acrFor(%v, %+v) = %s, want %s", c.requested, *c.id, got, c.want)
		}
		if got := acrWantsFreshSignIn(c.requested, c.id); got != c.fresh {
			t.Errorf("acrWantsFreshSignIn(%v, %+v) = %v, want %v", c.requested, *c.id, got, c.fresh)
		}
	}
	if got := amrFor(password); !slices.Equal(got, []string{"pwd"}) {
		t.Errorf("amr of a password sign-in %v", got)
	}
	if got := amrFor(bound); !slices.Equal(got, []string{"kerberos"}) {
		t.Errorf("amr of a Negotiate sign-in %v", got)
	}
}

// An access token's record names its client, refresh family and sign-in; records
// written before sign-ins had handles (or families) still read.
func TestAccessAppNamesClientFamilyAndSignIn(t *testing.T) {
	for app, want := range map[string]accessApp{
		accessApp{client: "rp", family: "F", handle: "H"}.String(): {client: "rp", family: "F", handle: "H"},
		accessApp{client: "rp", handle: "H"}.String():              {client: "rp", handle: "H"},
		"oidc-access:rp/F": {client: "rp", family: "F"},
		"oidc-access:rp":   {client: "rp"},
	} {
		if got, ok := parseAccessApp(app); !ok || got != want {
			t.Errorf("parseAccessApp(%q) = %+v %v, want %+v", app, got, ok, want)
		}
	}
	for _, app := range []string{"", "oidc-family:rp", "oidc-access:", "oidc-access:/F/H"} {
		if got, ok := parseAccessApp(app); ok {
			t.Errorf("parseAccessApp(%q) = %+v, want no access token", app, got)
		}
	}
}

// A code being made for a sign-in hours old (a reused OIDC browser session: its
// auth_time is the Negotiate's) is not swept away by a concurrent callback of the
// library (a sign-in recorded before an upgrade): what is pending is swept by how
// long it has been pending, not by its sign-in's age.
func TestPendingCodeOfAnOldSignInSurvivesACallback(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "s.db"), store.BoltOptions{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	p := &Provider{opts: Options{Store: st, Now: func() time.Time { return now }}}
	p.browser = signin.NewSessions(signin.Sessions{Store: st, Now: p.opts.Now})
	s := newStorage(p)
	sealed := func() string {
		b, _ := json.Marshal(Request{ClientID: "rp", Scopes: []string{"openid"}, Created: now})
		return p.browser.Keys.Seal(requestPurpose, base64.RawURLEncoding.EncodeToString(b))
	}
	alice := identity.Identity{Principal: "alice@EXAMPLE.TEST", SID: "S-1-5-21-1-2-3-1104"}

	held := &authRequest{Request: Request{ClientID: "rp"}, ID: "held", sealed: sealed(), identity: &alice,
		authTime: now.Add(-2 * time.Hour), handle: "H"}
	s.hold(held)
	rec, _ := json.Marshal(signedInRecord{Sealed: sealed(), Handle: "H2"})
	if err := st.PutToken(ctx, "legacy", store.Token{AppID: signedInKind, RedirectURI: string(rec), Identity: alice,
		IssuedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(signedInTTL)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthRequestByID(ctx, "legacy"); err != nil {
		t.Fatalf("the library's callback: %v", err)
	}
	if err := s.SaveAuthCode(ctx, "held", "code-of-held"); err != nil {
		t.Fatalf("the held sign-in's code after a concurrent callback: %v", err)
	}
	if err := s.SaveAuthCode(ctx, "legacy", "code-of-legacy"); err != nil {
		t.Fatalf("the callback's own code: %v", err)
	}
	tok, err := st.TakeToken(ctx, "code-of-held", codeKind, now)
	if err != nil || !tok.IssuedAt.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("code record: %v, issued %v: want the sign-in's time", err, tok.IssuedAt)
	}

	// An abandoned callback's entry still goes once it has been pending a while.
	s.mu.Lock()
	s.pending["abandoned"] = pendingRequest{a: held, since: now.Add(-signedInTTL)}
	s.mu.Unlock()
	if err := st.PutToken(ctx, "legacy2", store.Token{AppID: signedInKind, RedirectURI: string(rec), Identity: alice,
		IssuedAt: now, ExpiresAt: now.Add(signedInTTL)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthRequestByID(ctx, "legacy2"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, kept := s.pending["abandoned"]
	s.mu.Unlock()
	if kept {
		t.Error("an entry pending for signedInTTL was not swept")
	}
}
