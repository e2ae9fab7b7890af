package signin

import (
	"fmt"
	"reflect"
	"testing"
)

func TestGroupFilterApply(t *testing.T) {
	names := []string{"Domain Users", "staff", "app-wiki-admins", "App-Wiki-Readers", "engineering"}
	many := make([]string, 130)
	for i := range many {
		many[i] = fmt.Sprintf("bulk-%03d", i)
	}
	for _, tc := range []struct {
		name    string
		f       GroupFilter
		in      []string
		want    []string
		overage bool
	}{
		{"no filter keeps all", GroupFilter{}, names, names, false},
		{"include is case-insensitive", GroupFilter{Include: []string{"STAFF"}}, names, []string{"staff"}, false},
		{"prefix is case-insensitive", GroupFilter{Prefixes: []string{"app-wiki-"}}, names, []string{"app-wiki-admins", "App-Wiki-Readers"}, false},
		{"include and prefix add up", GroupFilter{Include: []string{"staff"}, Prefixes: []string{"app-"}}, names, []string{"staff", "app-wiki-admins", "App-Wiki-Readers"}, false},
		{"under the cap", GroupFilter{Max: 5}, names, names, false},
		{"over the cap is overage, not a partial list", GroupFilter{Max: 100}, many, nil, true},
		{"the cap counts what the filter keeps", GroupFilter{Prefixes: []string{"bulk-00"}, Max: 10}, many, many[:10], false},
		{"no names", GroupFilter{Max: 1}, nil, nil, false},
	} {
		got, overage := tc.f.Apply(tc.in)
		if !reflect.DeepEqual(got, tc.want) || overage != tc.overage {
			t.Errorf("%s: Apply = %q, overage %v; want %q, %v", tc.name, got, overage, tc.want, tc.overage)
		}
	}
}
