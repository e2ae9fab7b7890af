package oidcprovider

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/signin"
)

const testUserinfo = "https://sso.example.test/oidc/userinfo"

// claimsOf shapes the group claims of id and returns them as a relying party
// reads them (the JSON of the ID token's or userinfo's claims).
func claimsOf(t *testing.T, id *identity.Identity, f signin.GroupFilter, idToken bool) map[string]any {
	t.Helper()
	u := &oidc.UserInfo{Subject: "s"}
	setGroupClaims(u, id, f, idToken, testUserinfo)
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	delete(out, "sub")
	return out
}

func list(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

var bob = &identity.Identity{
	Groups:     []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-1111", "S-1-5-21-1-2-3-1110", "S-1-18-1"},
	GroupNames: []string{"Domain Users", "sso-users", "staff"},
}

func TestGroupClaimsCarryNamesAndSIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   *identity.Identity
		f    signin.GroupFilter
		want map[string]any
	}{
		{"every name, every SID", bob, signin.GroupFilter{Max: 150},
			map[string]any{"groups": list(bob.GroupNames...), "group_sids": list(bob.Groups...)}},
		{"a name filter keeps names, and no SID", bob, signin.GroupFilter{Include: []string{"STAFF"}, Max: 150},
			map[string]any{"groups": list("staff"), "group_sids": list()}},
		{"SIDs are kept by SID or SID prefix", bob, signin.GroupFilter{Include: []string{"staff", "S-1-18-1"}, Prefixes: []string{"S-1-5-21-1-2-3-11"}, Max: 150},
			map[string]any{"groups": list("staff"), "group_sids": list("S-1-5-21-1-2-3-1111", "S-1-5-21-1-2-3-1110", "S-1-18-1")}},
		{"a filter keeping nothing gives empty lists", bob, signin.GroupFilter{Prefixes: []string{"app-"}, Max: 150},
			map[string]any{"groups": list(), "group_sids": list()}},
		{"without names (no directory, or it did not answer): SIDs only", &identity.Identity{Groups: bob.Groups}, signin.GroupFilter{Max: 150},
			map[string]any{"group_sids": list(bob.Groups...)}},
	} {
		for _, idToken := range []bool{true, false} {
			if got := claimsOf(t, tc.id, tc.f, idToken); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s (ID token %v):\n got %v\nwant %v", tc.name, idToken, got, tc.want)
			}
		}
	}
}

// dave, in 130 groups: over a client's max, the ID token carries no groups claim
// and points at userinfo (as Entra ID signals overage); userinfo answers them all.
func TestGroupClaimsSignalOverageInTheIDToken(t *testing.T) {
	dave := &identity.Identity{}
	for i := 1; i <= 130; i++ {
		dave.Groups = append(dave.Groups, fmt.Sprintf("S-1-5-21-1-2-3-%d", 2000+i))
		dave.GroupNames = append(dave.GroupNames, fmt.Sprintf("dave-g%03d", i))
	}
	sources := map[string]any{"src1": map[string]any{"endpoint": testUserinfo}}

	// Names over the cap, SIDs too.
	got := claimsOf(t, dave, signin.GroupFilter{Max: 100}, true)
	want := map[string]any{
		"_claim_names":   map[string]any{"groups": "src1", "group_sids": "src1"},
		"_claim_sources": sources,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ID token over max:\n got %v\nwant %v", got, want)
	}
	// userinfo: the whole (filtered) lists, uncapped.
	got = claimsOf(t, dave, signin.GroupFilter{Max: 100}, false)
	if len(got["groups"].([]any)) != 130 || len(got["group_sids"].([]any)) != 130 || got["_claim_names"] != nil {
		t.Errorf("userinfo: %d names, %d SIDs, _claim_names %v", len(got["groups"].([]any)), len(got["group_sids"].([]any)), got["_claim_names"])
	}
	// The filter first: what it keeps may fit.
	got = claimsOf(t, dave, signin.GroupFilter{Prefixes: []string{"dave-g00"}, Max: 100}, true)
	if len(got["groups"].([]any)) != 9 || len(got["group_sids"].([]any)) != 0 || got["_claim_names"] != nil {
		t.Errorf("filtered under max: %v", got)
	}
	// The kept names fit, the kept SIDs do not: only they are signalled.
	got = claimsOf(t, dave, signin.GroupFilter{Prefixes: []string{"dave-g00", "S-1-5-21-1-2-3-"}, Max: 100}, true)
	if len(got["groups"].([]any)) != 9 || got["group_sids"] != nil ||
		!reflect.DeepEqual(got["_claim_names"], map[string]any{"group_sids": "src1"}) || !reflect.DeepEqual(got["_claim_sources"], sources) {
		t.Errorf("SIDs over max: %v", got)
	}
}
