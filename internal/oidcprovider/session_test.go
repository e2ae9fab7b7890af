package oidcprovider

import "testing"

func TestACRIsTheFirstRequestedClassTheSignInSatisfies(t *testing.T) {
	const k, cb = ACRKerberos, ACRKerberosChannelBound
	for _, c := range []struct {
		requested []string
		bound     bool
		want      string
		fresh     bool // a session of such a sign-in is not reused
	}{
		{nil, false, k, false},
		{nil, true, cb, false},
		{[]string{cb}, false, k, true},
		{[]string{cb}, true, cb, false},
		{[]string{k, cb}, true, k, false},
		{[]string{cb, k}, false, k, true},
		{[]string{"urn:example:mfa"}, false, k, false},
		{[]string{"urn:example:mfa", cb}, true, cb, false},
	} {
		if got := acrFor(c.requested, c.bound); got != c.want {
			t.Errorf("acrFor(%v, bound %v) = %s, want %s", c.requested, c.bound, got, c.want)
		}
		if got := acrWantsFreshSignIn(c.requested, c.bound); got != c.fresh {
			t.Errorf("acrWantsFreshSignIn(%v, bound %v) = %v, want %v", c.requested, c.bound, got, c.fresh)
		}
	}
}

// An access token's record names its client, refresh family and sign-in; records
// written before sign-ins had handles (or families) still read.
func TestAccessAppNamesClientFamilyAndSignIn(t *testing.T) {
	for app, want := range map[string]accessApp{
		accessApp{client: "rp", family: "F", handle: "H"}.String(): {client: "rp", family: "F", handle: "H"},
		accessApp{client: "rp", handle: "H"}.String():              {client: "rp", handle: "H"},
		"oidc-access:rp/F": {client: "rp", family: "F"},
		"oidc-access:rp":   {client: "rp"},
	} {
		if got, ok := parseAccessApp(app); !ok || got != want {
			t.Errorf("parseAccessApp(%q) = %+v %v, want %+v", app, got, ok, want)
		}
	}
	for _, app := range []string{"", "oidc-family:rp", "oidc-access:", "oidc-access:/F/H"} {
		if got, ok := parseAccessApp(app); ok {
			t.Errorf("parseAccessApp(%q) = %+v, want no access token", app, got)
		}
	}
}
