package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/testrealm"
)

// TestOIDCProviderNodeOpenIDClient: npm openid-client (6.x, testrealm/oidcclient)
// drives the code flow with PKCE against kerbgate. The script builds the
// authorization URL; this test opens it as a browser holding alice's real ticket
// and hands the callback URL back; the script redeems the code, then calls
// userinfo, refreshes, introspects (client_secret_basic and client_secret_post),
// revokes (client_secret_post) and builds the end_session URL, which this browser
// opens; a refresh token of a second sign-in in the same browser then fails.
func TestOIDCProviderNodeOpenIDClient(t *testing.T) {
	r := testrealm.Require(t)
	cfg, issuer := opConfig(t, r)
	startGateway(t, cfg)
	rp := map[string]any{"issuer": issuer, "clientId": "rp", "clientSecret": demoSecret, "redirectUri": opRPCallback}

	var start struct{ URL, Verifier, State, Nonce string }
	testrealm.OpenIDClient(t, "start", rp, &start)
	au, err := url.Parse(start.URL)
	if err != nil || !strings.HasPrefix(start.URL, issuer+"/authorize?") || au.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization URL %q", start.URL)
	}
	b := opBrowser(t, ticket(t, r, "alice"))
	q := authorize(t, b, start.URL)
	if q.Get("code") == "" || q.Get("state") != start.State {
		t.Fatalf("callback %v", q)
	}
	rp["callback"] = opRPCallback + "?" + q.Encode()
	rp["verifier"], rp["state"], rp["nonce"], rp["postLogout"] = start.Verifier, start.State, start.Nonce, opRPLoggedOut

	var got struct {
		Claims struct {
			Sub, Nonce, Iss   string
			PreferredUsername string   `json:"preferred_username"`
			AMR               []string `json:"amr"`
		}
		Userinfo struct {
			Sub               string
			PreferredUsername string `json:"preferred_username"`
		}
		Rotated       bool
		RefreshedSub  string
		Introspection struct {
			Active   bool
			Sub      string
			ClientID string `json:"client_id"`
		}
		IntrospectionPost struct {
			Active   bool
			ClientID string `json:"client_id"`
		}
		RefreshAfterRevocation       string
		IntrospectionAfterRevocation struct{ Active bool }
		EndSession                   string
	}
	testrealm.OpenIDClient(t, "finish", rp, &got)

	sub := signingkeys.Subject(issuer, r.SID(t, "alice"))
	if c := got.Claims; c.Sub != sub || c.Iss != issuer || c.Nonce != start.Nonce || len(c.AMR) != 1 || c.AMR[0] != "kerberos" ||
		!strings.EqualFold(c.PreferredUsername, "alice@example.test") {
		t.Errorf("ID token claims %+v, want sub %s", c, sub)
	}
	if got.Userinfo.Sub != sub || !strings.EqualFold(got.Userinfo.PreferredUsername, "alice@example.test") {
		t.Errorf("userinfo %+v", got.Userinfo)
	}
	if !got.Rotated || got.RefreshedSub != "" && got.RefreshedSub != sub {
		t.Errorf("refresh: rotated %v, refreshed ID token sub %q", got.Rotated, got.RefreshedSub)
	}
	if i := got.Introspection; !i.Active || i.Sub != sub || i.ClientID != "rp" {
		t.Errorf("introspection of the refreshed access token: %+v", i)
	}
	if i := got.IntrospectionPost; !i.Active || i.ClientID != "rp" {
		t.Errorf("introspection with client_secret_post: %+v", i)
	}
	if got.RefreshAfterRevocation != "invalid_grant" {
		t.Errorf("refresh after revocation: %q, want invalid_grant", got.RefreshAfterRevocation)
	}
	if got.IntrospectionAfterRevocation.Active {
		t.Error("the revoked family's access token is still active")
	}

	// A second sign-in in the same browser (it rides the OIDC browser session): its
	// refresh token works until the sign-out below.
	var second struct{ URL, Verifier, State, Nonce string }
	testrealm.OpenIDClient(t, "start", rp, &second)
	q = authorize(t, b, second.URL)
	rp2 := map[string]any{"issuer": issuer, "clientId": "rp", "clientSecret": demoSecret, "redirectUri": opRPCallback,
		"callback": opRPCallback + "?" + q.Encode(), "verifier": second.Verifier, "state": second.State, "nonce": second.Nonce}
	var spare struct{ RefreshToken string }
	testrealm.OpenIDClient(t, "redeem", rp2, &spare)
	if spare.RefreshToken == "" {
		t.Fatal("the second sign-in got no refresh token")
	}

	// The end_session URL openid-client built: the browser is signed out of kerbgate
	// and sent to the registered post_logout_redirect_uri with the state.
	es, err := url.Parse(got.EndSession)
	if err != nil || !strings.HasPrefix(got.EndSession, issuer+"/end_session?") || es.Query().Get("id_token_hint") == "" {
		t.Fatalf("end_session URL %q", got.EndSession)
	}
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(got.EndSession)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(l, opRPLoggedOut) || !strings.Contains(l, "state=bye") {
		t.Fatalf("end_session: %d %q", resp.StatusCode, l)
	}
	// The sign-out ended the sign-in's tokens: the second sign-in's refresh token too.
	var after struct{ Result string }
	testrealm.OpenIDClient(t, "refresh", map[string]any{"issuer": issuer, "clientId": "rp", "clientSecret": demoSecret,
		"refreshToken": spare.RefreshToken}, &after)
	if after.Result != "invalid_grant" {
		t.Errorf("refresh after end_session: %q, want invalid_grant", after.Result)
	}
}
