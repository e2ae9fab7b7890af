package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/testrealm"
)

// Group names for every face, against the real domain: /whoami and the handoff's
// redeemed identity carry the names of the user's groups beside their SIDs.

// whoamiJSON signs in at /whoami with the ticket in ccache and returns the identity
// and the raw JSON object.
func whoamiJSON(t *testing.T, g *gateway, ccache string) (identity.Identity, map[string]json.RawMessage) {
	t.Helper()
	resp := g.get("/whoami", negotiateHeader(t, ccache, testrealm.GatewaySPN, initiator.Options{}))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/whoami: %d %s", resp.StatusCode, body)
	}
	var id identity.Identity
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &id); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	return id, raw
}

// namesConfig is handoffConfig plus an app that does not require the directory.
func namesConfig(t *testing.T, r *testrealm.Realm) *config.Config {
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	dh, _ := secretHashes(t)
	cfg.SSO.Apps = append(cfg.SSO.Apps, config.App{ID: "no-dir", RedirectURIs: []string{"http://app.example.test:9/callback"},
		SecretHash: dh, TokenTTL: time.Minute, SessionTTL: time.Hour, RequireDirectory: false})
	return cfg
}

// handoffIdentity signs the owner of ccache in to app through the handoff and
// returns the identity the app's back end redeems.
func handoffIdentity(t *testing.T, g *gateway, r *testrealm.Realm, ccache, app string) identity.Identity {
	t.Helper()
	status, loc, why := g.login(r, ccache, "app="+app)
	if status != 302 || loc == nil {
		t.Fatalf("login at %s: %d %q", app, status, why)
	}
	secret := demoSecret
	if app == "staff-app" {
		secret = staffSecret
	}
	resp, body := g.redeem(app, secret, loc.Query().Get("ssoToken"))
	if resp.StatusCode != 200 {
		t.Fatalf("redeem at %s: %d %s", app, resp.StatusCode, body)
	}
	var got sso.Response
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got.Identity
}

// wantNames checks that names holds every one of want.
func wantNames(t *testing.T, names []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("group names %q lack %q", names, w)
		}
	}
}

// bob is in staff through sso-users: /whoami (the PAC's SIDs) and the handoff (the
// directory's tokenGroups with require_directory, the PAC's without) name staff;
// the SIDs stay in "groups" as they were.
func TestGroupNamesNameBobsNestedStaffOnEveryFace(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, namesConfig(t, r))
	bob := r.Kinit(t, "bob")
	staffSID := r.SID(t, "staff")

	id, raw := whoamiJSON(t, g, ticket(t, r, "bob"))
	var sids []string
	if err := json.Unmarshal(raw["groups"], &sids); err != nil || !slices.Contains(sids, staffSID) {
		t.Errorf("/whoami groups %s (%v) lack staff's SID %s", raw["groups"], err, staffSID)
	}
	for _, sid := range sids {
		if !strings.HasPrefix(sid, "S-1-") {
			t.Errorf("/whoami groups hold %q, not a SID", sid)
		}
	}
	wantNames(t, id.GroupNames, "staff", "sso-users", "Domain Users")
	t.Logf("bob's PAC: %d SIDs %q, named %q", len(id.Groups), id.Groups, id.GroupNames)

	for _, app := range []string{"staff-app", "no-dir"} {
		got := handoffIdentity(t, g, r, bob, app)
		if !slices.Contains(got.Groups, staffSID) {
			t.Errorf("%s: redeemed groups %q lack staff's SID", app, got.Groups)
		}
		wantNames(t, got.GroupNames, "staff", "sso-users", "Domain Users")
	}
}

// A domain-local group, and the global group nested in it, are named from the
// PAC's SIDs too.
func TestGroupNamesNameDomainLocalGroupsFromThePAC(t *testing.T) {
	r := testrealm.Require(t)
	user := r.TempUser(t, "gnpac")
	global := r.TempGroup(t, "gn-global", "Global", user)
	local := r.TempGroup(t, "gn-local", "Domain", global)
	g := startGateway(t, namesConfig(t, r))
	cc := r.KinitTempUser(t, user)
	r.Kvno(t, cc, testrealm.GatewaySPN)
	id, _ := whoamiJSON(t, g, cc)
	for _, grp := range []string{global, local} {
		if !slices.Contains(id.Groups, r.SID(t, grp)) {
			t.Errorf("the PAC's SIDs %q lack %s", id.Groups, grp)
		}
	}
	wantNames(t, id.GroupNames, global, local, "Domain Users")
	t.Logf("PAC of a member of a domain-local group: %q, named %q", id.Groups, id.GroupNames)
}

// dave's 130 groups are all named; alice is in Domain Users only.
func TestGroupNamesOfDaveAndAlice(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, namesConfig(t, r))
	dave, _ := whoamiJSON(t, g, ticket(t, r, "dave"))
	want := []string{"Domain Users"}
	for i := 1; i <= 130; i++ {
		want = append(want, fmt.Sprintf("dave-g%03d", i))
	}
	wantNames(t, dave.GroupNames, want...)
	t.Logf("dave's PAC: %d SIDs, %d named", len(dave.Groups), len(dave.GroupNames))
	alice, _ := whoamiJSON(t, g, ticket(t, r, "alice"))
	wantNames(t, alice.GroupNames, "Domain Users")
	if slices.Contains(alice.GroupNames, "staff") {
		t.Errorf("alice named in staff: %q", alice.GroupNames)
	}
	t.Logf("alice's PAC: %q, named %q", alice.Groups, alice.GroupNames)
}

// Without a directory section there are SIDs only: no "group_names" at all.
func TestGroupNamesWithoutADirectoryAreAbsent(t *testing.T) {
	r := testrealm.Require(t)
	g := startGateway(t, baseConfig(r))
	id, raw := whoamiJSON(t, g, ticket(t, r, "bob"))
	if _, ok := raw["group_names"]; ok || id.GroupNames != nil || !slices.Contains(id.Groups, r.SID(t, "staff")) {
		t.Errorf("without a directory: group_names %s, groups %q", raw["group_names"], id.Groups)
	}
}

// A directory that does not answer refuses only what requires it: an app without
// require_directory signs bob in with SIDs only, and the log says why.
func TestGroupNamesDirectoryDownGoesOnWithSIDs(t *testing.T) {
	r := testrealm.Require(t)
	cfg := namesConfig(t, r)
	cfg.Directory.URL = "ldaps://dc1.example.test:" + strconv.Itoa(freePort(t)) // nobody listens
	g := startGateway(t, cfg)
	got := handoffIdentity(t, g, r, r.Kinit(t, "bob"), "no-dir")
	if got.GroupNames != nil || !slices.Contains(got.Groups, r.SID(t, "staff")) {
		t.Errorf("directory down: names %q, groups %q; want SIDs only", got.GroupNames, got.Groups)
	}
	if l := g.logs.String(); !strings.Contains(l, "group names unavailable") || !strings.Contains(l, "directory_unavailable") {
		t.Errorf("no log line says the names are unavailable:\n%s", grepLines(l, "group names"))
	}
	if status, _, why := g.login(r, r.Kinit(t, "bob"), "app=demo"); status == http.StatusFound || why != "directory_unavailable" {
		t.Errorf("an app requiring the directory: %d %q, want directory_unavailable", status, why)
	}
}
