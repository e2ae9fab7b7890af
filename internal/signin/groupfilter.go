package signin

import "strings"

// GroupFilter selects which of a user's group names one output carries (an ID token,
// a forward-auth header), so that what is sent stays small enough for the proxies
// and cookies it passes through. dave of the test domain is in 130 groups.
//
// A name is kept when it is listed in Include or starts with one of Prefixes
// (case-insensitively, as AD compares names); with neither, every name is kept.
// When more than Max names remain, none is sent and overage is reported: the
// output signals the overage (as Entra ID does) rather than carry a partial list a
// reader would take for the whole one. Max 0 means no cap.
type GroupFilter struct {
	Include  []string
	Prefixes []string
	Max      int
}

// Apply returns the names of names that f keeps, in their order, or overage when
// there are more than f.Max of them.
func (f GroupFilter) Apply(names []string) (kept []string, overage bool) {
	for _, n := range names {
		if f.keeps(n) {
			kept = append(kept, n)
		}
	}
	if f.Max > 0 && len(kept) > f.Max {
		return nil, true
	}
	return kept, false
}

func (f GroupFilter) keeps(name string) bool {
	if len(f.Include) == 0 && len(f.Prefixes) == 0 {
		return true
	}
	for _, in := range f.Include {
		if strings.EqualFold(in, name) {
			return true
		}
	}
	lower := strings.ToLower(name)
	for _, p := range f.Prefixes {
		if strings.HasPrefix(lower, strings.ToLower(p)) {
			return true
		}
	}
	return false
}
