package directory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/testrealm"
)

// Well-known SIDs every token carries and no group object of the domain has.
var wellKnown = []string{"S-1-1-0", "S-1-5-11", "S-1-18-1"}

func groupsOf(t testing.TB, d *Directory, user string) []string {
	t.Helper()
	u, err := d.LookupName(context.Background(), "", user)
	if err != nil {
		t.Fatal(err)
	}
	return u.Groups
}

// bob's groups (tokenGroups) name his nested group: bob -> sso-users -> staff.
func TestGroupNamesNameNestedGroups(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Minute })
	sids := append(groupsOf(t, d, "bob"), wellKnown...)
	names, err := d.GroupNames(context.Background(), sids)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(sids) {
		t.Fatalf("%d names for %d SIDs", len(names), len(sids))
	}
	byName := map[string]string{}
	for i, n := range names {
		byName[n] = sids[i]
	}
	for _, g := range []string{"staff", "sso-users", "Domain Users"} {
		if sid := r.SID(t, g); byName[g] != sid {
			t.Errorf("bob's groups: %q is named for %q, want it for %s (names %q)", g, byName[g], sid, names)
		}
	}
	for i, sid := range sids {
		if slices.Contains(wellKnown, sid) && names[i] != "" {
			t.Errorf("well-known %s named %q; no group object of the domain has it", sid, names[i])
		}
	}
	// Built-in groups are group objects of the directory (CN=Builtin) and are named.
	if n, err := d.GroupNames(context.Background(), []string{"S-1-5-32-544"}); err != nil || n[0] != "Administrators" {
		t.Errorf("S-1-5-32-544 = %q, %v; want Administrators", n, err)
	}
}

// A domain-local group (and a group nested in it) is named like any other: the
// names come from the SIDs the user has, whatever the group's scope.
func TestGroupNamesNameDomainLocalGroups(t *testing.T) {
	r := testrealm.Require(t)
	user := r.TempUser(t, "gn")
	global := r.TempGroup(t, "gn-global", "Global", user)
	local := r.TempGroup(t, "gn-local", "Domain", global)
	d := newDir(t, r, nil)
	sids := groupsOf(t, d, user)
	names, err := d.GroupNames(context.Background(), sids)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{global, local} {
		i := slices.Index(sids, r.SID(t, g))
		if i < 0 {
			t.Fatalf("%s's groups %v lack %s", user, sids, g)
		}
		if names[i] != g {
			t.Errorf("%s's %s is named %q, want %q", user, sids[i], names[i], g)
		}
	}
}

// dave's 130 groups are named in 3 searches (64 SIDs each), not 130; a second call
// asks nothing, unknown SIDs included, until CacheTTL has passed.
func TestGroupNamesBatchedAndCached(t *testing.T) {
	r := testrealm.Require(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Minute; c.Now = clock })
	sids := append(groupsOf(t, d, "dave"), wellKnown...)
	sids = append(sids, "S-1-5-21-1-2-3-4", "not a SID", sids[0]) // another domain's group, garbage, a repeat
	names, err := d.GroupNames(context.Background(), sids)
	if err != nil {
		t.Fatal(err)
	}
	want := (len(sids) - 2 + sidsPerSearch - 1) / sidsPerSearch // valid, distinct SIDs
	if got := d.groupNameSearches.Load(); got != int64(want) {
		t.Errorf("%d searches for %d SIDs, want %d", got, len(sids), want)
	}
	for i := 1; i <= 130; i++ {
		if g := fmt.Sprintf("dave-g%03d", i); !slices.Contains(names, g) {
			t.Errorf("dave's names lack %s", g)
		}
	}
	for i, sid := range sids {
		if wantEmpty := slices.Contains(wellKnown, sid) || sid == "not a SID" || sid == "S-1-5-21-1-2-3-4"; wantEmpty != (names[i] == "") {
			t.Errorf("%s named %q", sid, names[i])
		}
	}
	if names[len(names)-1] != names[0] {
		t.Errorf("a repeated SID is named %q, first %q", names[len(names)-1], names[0])
	}

	again, err := d.GroupNames(context.Background(), sids)
	if err != nil || !slices.Equal(again, names) || d.groupNameSearches.Load() != int64(want) {
		t.Errorf("cached call: %v, %d searches in all (want %d), names equal %v", err, d.groupNameSearches.Load(), want, slices.Equal(again, names))
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := d.GroupNames(context.Background(), wellKnown); err != nil || d.groupNameSearches.Load() != int64(want)+1 {
		t.Errorf("after CacheTTL: %v, %d searches, want %d", err, d.groupNameSearches.Load(), want+1)
	}
}

// With the cache disabled (CacheTTL 0) every call asks; with it, a closed directory
// still names what it has cached and refuses only what it must ask.
func TestGroupNamesCacheAndFailures(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Hour })
	sids := append(groupsOf(t, d, "bob"), wellKnown...)
	names, err := d.GroupNames(context.Background(), sids)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if again, err := d.GroupNames(context.Background(), sids); err != nil || !slices.Equal(again, names) {
		t.Errorf("cached names after Close: %q, %v; want %q", again, err, names)
	}
	_, err = d.GroupNames(context.Background(), []string{r.SID(t, "dave-g001")})
	wantCode(t, err, reason.DirectoryUnavailable)

	off := newDir(t, r, nil)
	for i := 0; i < 2; i++ {
		if _, err := off.GroupNames(context.Background(), wellKnown); err != nil {
			t.Fatal(err)
		}
	}
	if got := off.groupNameSearches.Load(); got != 2 {
		t.Errorf("CacheTTL 0: %d searches for 2 calls, want 2", got)
	}

	if _, err := off.GroupNames(context.Background(), make([]string, MaxGroupSIDs+1)); err == nil ||
		!strings.Contains(err.Error(), "more than") {
		t.Errorf("%d SIDs: %v, want an error", MaxGroupSIDs+1, err)
	}
}

// The cache stays within MaxCacheEntries however many groups are named.
func TestGroupNamesCacheIsBounded(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Hour; c.MaxCacheEntries = 20 })
	sids := groupsOf(t, d, "dave")
	names, err := d.GroupNames(context.Background(), sids)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	n := len(d.names)
	d.mu.Unlock()
	if n > 20 {
		t.Errorf("%d cached group names, MaxCacheEntries 20", n)
	}
	if again, err := d.GroupNames(context.Background(), sids); err != nil || !slices.Equal(again, names) {
		t.Errorf("names after eviction differ: %v", err)
	}
}

// Concurrent sign-ins name groups at once, with a small cache evicting under them.
func TestGroupNamesConcurrent(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Hour; c.MaxCacheEntries = 50 })
	sets := [][]string{groupsOf(t, d, "dave"), groupsOf(t, d, "bob"), wellKnown}
	want := make([][]string, len(sets))
	for i, s := range sets {
		var err error
		if want[i], err = newDir(t, r, nil).GroupNames(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*6)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 6; j++ {
				k := (g + j) % len(sets)
				got, err := d.GroupNames(context.Background(), sets[k])
				if err == nil && !slices.Equal(got, want[k]) {
					err = fmt.Errorf("set %d named %q, want %q", k, got, want[k])
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkGroupNames names dave's groups (132 SIDs: his 130 groups, Domain Users
// and BUILTIN\Users) on a pooled connection to the real DC: batched and uncached
// (three searches), one SID per search (what an unbatched lookup costs), cold (a new
// Directory: dial, TLS, bind, then the three searches), and cached.
//
//	go test -run '^$' -bench GroupNames ./internal/directory
func BenchmarkGroupNames(b *testing.B) {
	r := testrealm.Require(b)
	ctx := context.Background()
	sids := groupsOf(b, newDir(b, r, nil), "dave")
	b.Run(fmt.Sprintf("batched-uncached-%dsids", len(sids)), func(b *testing.B) {
		d := newDir(b, r, nil) // CacheTTL 0: every call asks the DC
		if err := d.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := d.GroupNames(ctx, sids); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(d.groupNameSearches.Load())/float64(b.N), "searches/op")
	})
	b.Run(fmt.Sprintf("one-sid-per-search-%dsids", len(sids)), func(b *testing.B) {
		d := newDir(b, r, nil)
		if err := d.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j := range sids {
				if _, err := d.GroupNames(ctx, sids[j:j+1]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(d.groupNameSearches.Load())/float64(b.N), "searches/op")
	})
	b.Run(fmt.Sprintf("cold-new-connection-%dsids", len(sids)), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := newDir(b, r, nil)
			if _, err := d.GroupNames(ctx, sids); err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	})
	b.Run(fmt.Sprintf("cached-%dsids", len(sids)), func(b *testing.B) {
		d := newDir(b, r, func(c *Config) { c.CacheTTL = time.Hour })
		if _, err := d.GroupNames(ctx, sids); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := d.GroupNames(ctx, sids); err != nil {
				b.Fatal(err)
			}
		}
	})
}
