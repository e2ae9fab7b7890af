package config

// GroupNames is a group_names setting (of an OIDC client, a forward-auth host, a
// proxy app's headers): which of a user's group names an output carries. The face
// turns it into a signin.GroupFilter.
//
//	group_names:
//	  include: [staff, wiki-admins]   # exact names (case-insensitive)
//	  prefixes: [app-wiki-]           # or names starting so
//	  max: 100                        # more than this: overage, no list
type GroupNames struct {
	Include  []string
	Prefixes []string
	// Max caps the list; more names than this are signalled as overage. 0: no cap.
	Max int
}

// DefaultGroupNamesMax is the cap when group_names sets none: 150 names of about 20
// bytes fit in 4 KiB, a header line most proxies accept with default buffers.
const DefaultGroupNamesMax = 150

// decodeGroupNames reads a group_names mapping; absent means every name, capped at
// DefaultGroupNamesMax.
func decodeGroupNames(m *mapping) GroupNames {
	g := GroupNames{Max: DefaultGroupNamesMax}
	if m.broken {
		return g
	}
	f := m.field("include", "a list of group names to keep, like staff")
	if f.set() {
		g.Include, _ = f.strings("a group name, like staff")
	}
	f = m.field("prefixes", "a list of group name prefixes to keep, like app-wiki-")
	if f.set() {
		g.Prefixes, _ = f.strings("a group name prefix, like app-wiki-")
	}
	f = m.field("max", "the most group names to send, from 1 to 1000 (more: overage is signalled instead)")
	if v, ok := f.intIn(1, 1000); ok {
		g.Max = v
	}
	return g
}
