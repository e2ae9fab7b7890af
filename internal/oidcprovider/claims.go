package oidcprovider

import (
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/signin"
)

// ScopeGroups is the scope of the group claims: groups (the names of the user's
// groups that the client's GroupNames filter keeps) and group_sids (their SIDs the
// filter keeps). A client gets it only when it is among its Scopes.
const ScopeGroups = "groups"

// The group claims, and the source an overage points to.
const (
	claimGroups    = "groups"
	claimGroupSIDs = "group_sids"
	overageSource  = "src1"
)

// setGroupClaims puts the group claims of id on u.
//
// group_sids is id.Groups as f keeps them: the PAC's SIDs, or the directory's
// (tokenGroups) when the client requires the directory. f's include and prefixes
// apply to SIDs as they do to names, so that a client that keeps a few names does
// not carry every SID (dave's 132 SIDs are 6 KB): a SID is kept when listed (or
// matched by a prefix such as the domain's "S-1-5-21-…-"), every SID without a
// filter. groups is id.GroupNames as f keeps them, only when the groups were named
// (a directory section that answered): without names the claim is absent rather
// than empty, so that a relying party does not take "no names known" for "in no
// group".
//
// In an ID token (idToken), a list longer than f.Max is left out and signalled the
// way Entra ID signals group overage, as a distributed claim (OIDC Core §5.6.2):
// _claim_names maps the claim to a source whose endpoint is the provider's userinfo
// endpoint, where the relying party reads the whole list with its access token.
// userinfo (idToken false) answers the whole lists: filtered, not capped.
func setGroupClaims(u *oidc.UserInfo, id *identity.Identity, f signin.GroupFilter, idToken bool, userinfoURL string) {
	if !idToken {
		f.Max = 0
	}
	var overage []string
	if sids, over := f.Apply(id.Groups); over {
		overage = append(overage, claimGroupSIDs)
	} else {
		u.AppendClaims(claimGroupSIDs, nonNil(sids))
	}
	if id.GroupNames != nil {
		if names, over := f.Apply(id.GroupNames); over {
			overage = append(overage, claimGroups)
		} else {
			u.AppendClaims(claimGroups, nonNil(names))
		}
	}
	if len(overage) == 0 {
		return
	}
	names := make(map[string]string, len(overage))
	for _, c := range overage {
		names[c] = overageSource
	}
	u.AppendClaims("_claim_names", names)
	u.AppendClaims("_claim_sources", map[string]any{overageSource: map[string]string{"endpoint": userinfoURL}})
}

// nonNil makes an empty list a JSON [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
