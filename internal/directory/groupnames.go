package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Naming groups: a user's group SIDs (the PAC's, or tokenGroups) become the
// sAMAccountNames of the group objects whose objectSid they are.
//
// One search names up to sidsPerSearch SIDs with an OR filter of their binary
// objectSid values, so dave's 130 groups cost three searches on one pooled
// connection, not 130. Every answer is cached per SID for CacheTTL, a SID that
// names no group of this directory included ("" cached), so that the SIDs every
// token carries and no group object has — S-1-1-0 Everyone, S-1-5-11 Authenticated
// Users, S-1-18-1 "authentication authority asserted identity", the groups of
// another domain — are asked once per TTL, not at every sign-in. The names have a
// cache of their own beside the users' (at most MaxCacheEntries SIDs, so that naming
// never evicts confirmed users), kept per process: a farm node names groups without
// any shared state, and a renamed group shows its new name on every node within
// CacheTTL.

const (
	// sidsPerSearch bounds one search's filter (about 100 bytes per SID).
	sidsPerSearch = 64
	// MaxGroupSIDs bounds what GroupNames names in one call: a Windows token holds
	// at most 1,015 groups, so more SIDs than this are no user's.
	MaxGroupSIDs = 1024
)

// GroupNames returns the name (sAMAccountName) of the group object whose objectSid
// is each of sids, in their order: names[i] names sids[i], "" when no group of
// the directory under BaseDN has that SID (a well-known SID such as S-1-1-0, a
// group of another domain, a malformed SID). Built-in groups (S-1-5-32-544
// Administrators, …) and domain-local groups are group objects of the directory and
// are named. SIDs not in the cache are looked up in batches (sidsPerSearch per
// search, one pooled connection); answers, unknown SIDs included, are cached for
// CacheTTL. More than MaxGroupSIDs SIDs is an error; a directory failure a
// *reason.Error DirectoryUnavailable.
func (d *Directory) GroupNames(ctx context.Context, sids []string) ([]string, error) {
	if len(sids) > MaxGroupSIDs {
		return nil, fmt.Errorf("directory: %d group SIDs to name, more than the %d a Windows token can hold", len(sids), MaxGroupSIDs)
	}
	names := make([]string, len(sids))
	hit := d.cachedGroupNames(sids, names)
	var missing []string       // valid SIDs to ask for, each once
	asked := map[string]bool{} // SID -> asked
	for i, sid := range sids {
		if hit[i] {
			continue
		}
		if _, ok := sidBytes(sid); !ok || asked[sid] {
			continue
		}
		asked[sid] = true
		missing = append(missing, sid)
	}
	if len(missing) == 0 {
		return names, nil
	}
	found := make(map[string]string, len(missing))
	err := d.do(ctx, func(l *ldap.Conn) error {
		for start := 0; start < len(missing); start += sidsPerSearch {
			if err := d.searchGroupNames(l, missing[start:min(start+sidsPerSearch, len(missing))], found); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, d.unavailable(err)
	}
	d.cacheGroupNames(missing, found)
	for i, sid := range sids {
		if names[i] == "" {
			names[i] = found[sid]
		}
	}
	return names, nil
}

// searchGroupNames asks for the group objects of sids in one search and records
// their names in found by SID.
func (d *Directory) searchGroupNames(l *ldap.Conn, sids []string, found map[string]string) error {
	var f strings.Builder
	f.WriteString("(&(objectClass=group)(|")
	for _, sid := range sids {
		b, _ := sidBytes(sid) // checked by the caller
		f.WriteString("(objectSid=")
		f.WriteString(escapeBytes(b))
		f.WriteString(")")
	}
	f.WriteString("))")
	d.groupNameSearches.Add(1)
	res, err := l.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		len(sids), 0, false, f.String(), []string{"objectSid", "sAMAccountName"}, nil))
	if err != nil {
		return err
	}
	for _, e := range res.Entries {
		if sid := sidString(e.GetRawAttributeValue("objectSid")); sid != "" {
			found[sid] = e.GetAttributeValue("sAMAccountName")
		}
	}
	return nil
}

// cachedGroupNames fills names[i] for each of sids the cache holds, under one lock,
// and reports which it held.
func (d *Directory) cachedGroupNames(sids, names []string) []bool {
	hit := make([]bool, len(sids))
	if d.cfg.CacheTTL <= 0 {
		return hit
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, sid := range sids {
		if e, ok := d.names[sid]; ok && now.Before(e.expires) {
			names[i], hit[i] = e.group, true
		}
	}
	return hit
}

// cacheGroupNames caches the answer for each of sids: its name in found, or "".
func (d *Directory) cacheGroupNames(sids []string, found map[string]string) {
	if d.cfg.CacheTTL <= 0 {
		return
	}
	now := d.cfg.Now()
	expires := now.Add(d.cfg.CacheTTL)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sid := range sids {
		makeRoom(d.names, d.cfg.MaxCacheEntries, now)
		d.names[sid] = cached{group: found[sid], expires: expires}
	}
}
