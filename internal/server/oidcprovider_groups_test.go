package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The groups scope at kerbgate's OpenID Provider, read by real relying parties:
// bob's groups claim names staff (his group through sso-users); dave's 130 groups
// are more than a small client's max, so his ID token signals the overage and
// userinfo answers the names.

// opGroupsConfig is opConfig with the groups scope for rp (every name, at most the
// default max) and two more clients with it: few (at most 5 names in an ID token)
// and wiki (only staff, dave-g001 and names starting dave-g12).
func opGroupsConfig(t *testing.T, r *testrealm.Realm) (*config.Config, string) {
	cfg, issuer := opConfig(t, r)
	rp := &cfg.OIDCProvider.Clients[0]
	rp.Scopes = append(rp.Scopes, "groups")
	rp.GroupNames = config.GroupNames{Max: config.DefaultGroupNamesMax}
	few, wiki := *rp, *rp
	few.ID, few.GroupNames = "few", config.GroupNames{Max: 5}
	wiki.ID, wiki.GroupNames = "wiki", config.GroupNames{Include: []string{"STAFF", "dave-g001"}, Prefixes: []string{"dave-g12"}, Max: 20}
	cfg.OIDCProvider.Clients = append(cfg.OIDCProvider.Clients, few, wiki)
	return cfg, issuer
}

// groupClaims are the group claims as a relying party reads them.
type groupClaims struct {
	Groups     []string                     `json:"groups"`
	GroupSIDs  []string                     `json:"group_sids"`
	ClaimNames map[string]string            `json:"_claim_names"`
	Sources    map[string]map[string]string `json:"_claim_sources"`
}

// signInGo runs the code flow for user at client with go-oidc and x/oauth2 and
// returns the ID token's and userinfo's group claims.
func signInGo(t *testing.T, r *testrealm.Realm, issuer, client, user string, scopes ...string) (idToken, userinfo groupClaims) {
	t.Helper()
	ctx := context.Background()
	secret := demoSecret
	if client == "staff-rp" {
		secret = staffSecret
	}
	rp := newOPRP(t, ctx, issuer, client, secret)
	rp.oauth.Scopes = scopes
	v := oauth2.GenerateVerifier()
	q := authorize(t, opBrowser(t, ticket(t, r, user)), rp.oauth.AuthCodeURL("s", oidc.Nonce("n"), oauth2.S256ChallengeOption(v)))
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("%s at %s: %v (callback %v)", user, client, err, q)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := idt.Claims(&idToken); err != nil {
		t.Fatal(err)
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Claims(&userinfo); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s at %s, scopes %q: ID token %d bytes", user, client, scopes, len(raw))
	if idToken.ClaimNames != nil && len(raw) > 2<<10 {
		t.Errorf("%s's ID token at %s signals overage yet is %d bytes", user, client, len(raw))
	}
	return idToken, userinfo
}

func TestOIDCProviderGroupsClaimGoRelyingParty(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opGroupsConfig(t, r)
	startGateway(t, cfg)
	ctx := context.Background()
	var meta struct {
		Scopes   []string `json:"scopes_supported"`
		Userinfo string   `json:"userinfo_endpoint"`
	}
	if err := newOPRP(t, ctx, issuer, "rp", demoSecret).provider.Claims(&meta); err != nil || !slices.Contains(meta.Scopes, "groups") {
		t.Fatalf("discovery scopes %q (%v) lack groups", meta.Scopes, err)
	}

	// bob: staff by name (nested), its SID among group_sids, in the ID token and at
	// userinfo alike.
	idt, ui := signInGo(t, r, issuer, "rp", "bob", oidc.ScopeOpenID, "profile", "groups")
	for what, c := range map[string]groupClaims{"ID token": idt, "userinfo": ui} {
		if !slices.Contains(c.Groups, "staff") || !slices.Contains(c.Groups, "sso-users") || !slices.Contains(c.GroupSIDs, r.SID(t, "staff")) || c.ClaimNames != nil {
			t.Errorf("bob's %s: %+v; want staff and sso-users by name, staff's SID", what, c)
		}
	}

	// dave at few (max 5): no groups in the ID token, the overage pointing at
	// userinfo, which answers all 130 names and every SID.
	idt, ui = signInGo(t, r, issuer, "few", "dave", oidc.ScopeOpenID, "groups")
	if idt.Groups != nil || idt.GroupSIDs != nil || idt.ClaimNames["groups"] != "src1" || idt.ClaimNames["group_sids"] != "src1" ||
		idt.Sources["src1"]["endpoint"] != meta.Userinfo {
		t.Errorf("dave's ID token at few: %+v; want the overage signalled at %s", idt, meta.Userinfo)
	}
	for i := 1; i <= 130; i++ {
		if g := fmt.Sprintf("dave-g%03d", i); !slices.Contains(ui.Groups, g) {
			t.Errorf("dave's userinfo lacks %s (%d names)", g, len(ui.Groups))
			break
		}
	}
	if len(ui.GroupSIDs) < 131 || ui.ClaimNames != nil {
		t.Errorf("dave's userinfo: %d SIDs, _claim_names %v", len(ui.GroupSIDs), ui.ClaimNames)
	}

	// dave at rp (the default max, 150): all of them in the ID token.
	idt, _ = signInGo(t, r, issuer, "rp", "dave", oidc.ScopeOpenID, "groups")
	if len(idt.Groups) < 130 || idt.ClaimNames != nil {
		t.Errorf("dave's ID token at rp: %d names, _claim_names %v", len(idt.Groups), idt.ClaimNames)
	}

	// dave at wiki: only the names its filter keeps (and no SID), a small token.
	idt, _ = signInGo(t, r, issuer, "wiki", "dave", oidc.ScopeOpenID, "groups")
	want := []string{"dave-g001", "dave-g120", "dave-g121", "dave-g122", "dave-g123", "dave-g124", "dave-g125", "dave-g126", "dave-g127", "dave-g128", "dave-g129"}
	if slices.Sort(idt.Groups); !slices.Equal(idt.Groups, want) || len(idt.GroupSIDs) != 0 || idt.ClaimNames != nil {
		t.Errorf("dave's ID token at wiki: %+v; want the names %q", idt, want)
	}

	// Without the scope: no group claims, in the ID token or at userinfo.
	idt, ui = signInGo(t, r, issuer, "rp", "bob", oidc.ScopeOpenID, "profile")
	if idt.Groups != nil || idt.GroupSIDs != nil || ui.Groups != nil || ui.GroupSIDs != nil {
		t.Errorf("bob without the groups scope: ID token %+v, userinfo %+v", idt, ui)
	}
	// A client not given the scope does not get it by asking.
	idt, ui = signInGo(t, r, issuer, "staff-rp", "bob", oidc.ScopeOpenID, "groups")
	if idt.Groups != nil || idt.GroupSIDs != nil || ui.Groups != nil {
		t.Errorf("staff-rp (no groups scope) asking for groups: ID token %+v, userinfo %+v", idt, ui)
	}
}

// Apache httpd with mod_auth_openidc asks for the groups scope; headless Chromium
// holding bob's ticket lands on its page with staff among his groups; dave at a
// client with max 5 gets the overage in his ID token, and mod_auth_openidc, which
// reads userinfo too, hands the page all his names.
func TestOIDCProviderGroupsClaimApacheModAuthOpenIDC(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opGroupsConfig(t, r)
	rpPort, fewPort := freePort(t), freePort(t)
	for i, c := range cfg.OIDCProvider.Clients {
		switch c.ID {
		case "rp":
			cfg.OIDCProvider.Clients[i].RedirectURIs = []string{testrealm.OIDCRPRedirectURI(rpPort)}
		case "few":
			cfg.OIDCProvider.Clients[i].RedirectURIs = []string{testrealm.OIDCRPRedirectURI(fewPort)}
		}
	}
	startGateway(t, cfg)
	rp := r.StartOIDCRP(t, testrealm.OIDCRPOptions{Issuer: issuer, ClientID: "rp", ClientSecret: demoSecret, Port: rpPort, Scope: "openid profile groups"})
	few := r.StartOIDCRP(t, testrealm.OIDCRPOptions{Issuer: issuer, ClientID: "few", ClientSecret: demoSecret, Port: fewPort, Scope: "openid profile groups"})

	page := pageClaims(chromium(t, r, r.Kinit(t, "bob"), rp.Whoami))
	if g := strings.Split(page["groups"], ","); !slices.Contains(g, "staff") || !slices.Contains(g, "sso-users") ||
		!strings.Contains(page["group_sids"], r.SID(t, "staff")) || page["_claim_names"] != "" {
		t.Errorf("bob's page at rp: %q\nerror.log:\n%s", page, rp.ErrorLog())
	}
	page = pageClaims(chromium(t, r, r.Kinit(t, "dave"), few.Whoami))
	var names map[string]string
	if err := json.Unmarshal([]byte(page["_claim_names"]), &names); err != nil || names["groups"] != "src1" {
		t.Errorf("dave's ID token at few signals no overage: _claim_names=%q (%v)\nerror.log:\n%s", page["_claim_names"], err, few.ErrorLog())
	}
	if g := strings.Split(page["groups"], ","); len(g) < 130 || !slices.Contains(g, "dave-g130") {
		t.Errorf("dave's page at few has %d names (from userinfo), want his 130: %.200q", len(g), page["groups"])
	}
}

// pageClaims reads the claim=value lines of an OIDCRP's whoami page.
func pageClaims(page string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(html.UnescapeString(page), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, "<> ") {
			out[k] = v
		}
	}
	return out
}

// npm openid-client asks for the groups scope: bob's ID token and userinfo name
// staff; dave's ID token at few signals the overage at userinfo, which answers his
// names.
func TestOIDCProviderGroupsClaimNodeOpenIDClient(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opGroupsConfig(t, r)
	startGateway(t, cfg)
	type claims struct {
		Groups     []string          `json:"groups"`
		GroupSIDs  []string          `json:"group_sids"`
		ClaimNames map[string]string `json:"_claim_names"`
		Sources    map[string]struct {
			Endpoint string `json:"endpoint"`
		} `json:"_claim_sources"`
	}
	signIn := func(client, user string) (idToken, userinfo claims) {
		t.Helper()
		rp := map[string]any{"issuer": issuer, "clientId": client, "clientSecret": demoSecret, "redirectUri": opRPCallback,
			"scope": "openid profile groups offline_access"}
		var start struct{ URL, Verifier, State, Nonce string }
		testrealm.OpenIDClient(t, "start", rp, &start)
		q := authorize(t, opBrowser(t, ticket(t, r, user)), start.URL)
		rp["callback"] = opRPCallback + "?" + q.Encode()
		rp["verifier"], rp["state"], rp["nonce"], rp["postLogout"] = start.Verifier, start.State, start.Nonce, opRPLoggedOut
		var got struct{ Claims, Userinfo claims }
		testrealm.OpenIDClient(t, "finish", rp, &got)
		return got.Claims, got.Userinfo
	}

	idt, ui := signIn("rp", "bob")
	for what, c := range map[string]claims{"ID token": idt, "userinfo": ui} {
		if !slices.Contains(c.Groups, "staff") || !slices.Contains(c.GroupSIDs, r.SID(t, "staff")) || c.ClaimNames != nil {
			t.Errorf("bob's %s at rp: %+v", what, c)
		}
	}
	idt, ui = signIn("few", "dave")
	if idt.Groups != nil || idt.ClaimNames["groups"] != "src1" || idt.Sources["src1"].Endpoint != issuer+"/userinfo" {
		t.Errorf("dave's ID token at few: %+v; want the overage signalled", idt)
	}
	if len(ui.Groups) < 130 || !slices.Contains(ui.Groups, "dave-g130") {
		t.Errorf("dave's userinfo at few: %d names", len(ui.Groups))
	}
}
