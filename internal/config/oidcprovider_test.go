package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// validOP is valid plus an oidc_provider with a confidential and a public client.
const validOP = valid + `oidc_provider:
  issuer: https://sso.example.com/oidc
  signing_keys_file: /etc/kerbgate/oidc-keys.json
  clients:
    - id: wiki
      secret_hash: ` + testBcrypt + `
      redirect_uris: [https://wiki.example.com/cb]
      allowed_groups: [S-1-5-21-1-2-3-1110]
    - id: spa
      redirect_uris: [http://localhost:8080/cb]
      scopes: [openid, profile]
`

func TestOIDCProviderParsesWithDefaults(t *testing.T) {
	c, err, _, _ := parse(t, validOP)
	if err != nil {
		t.Fatal(err)
	}
	want := OIDCProvider{
		Enabled: true, Issuer: "https://sso.example.com/oidc", SigningKeysFile: "/etc/kerbgate/oidc-keys.json",
		IDTokenTTL: 5 * time.Minute, AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: 8 * time.Hour,
		Clients: []OIDCClient{
			{ID: "wiki", SecretHash: testBcrypt, RedirectURIs: []string{"https://wiki.example.com/cb"}, AllowedGroups: []string{"S-1-5-21-1-2-3-1110"},
				GroupNames: GroupNames{Max: DefaultGroupNamesMax}},
			{ID: "spa", RedirectURIs: []string{"http://localhost:8080/cb"}, Scopes: []string{"openid", "profile"},
				GroupNames: GroupNames{Max: DefaultGroupNamesMax}},
		},
	}
	if !reflect.DeepEqual(c.OIDCProvider, want) {
		t.Errorf("got  %+v\nwant %+v", c.OIDCProvider, want)
	}
	c, err, _, _ = parse(t, valid)
	if err != nil || c.OIDCProvider.Enabled {
		t.Errorf("without the section: %v %+v", err, c.OIDCProvider)
	}
}

// The groups scope, and group_names with a directory section.
func TestOIDCProviderGroupNames(t *testing.T) {
	src := strings.Replace(validOP, "[openid, profile]", "[openid, groups]\n      group_names:\n        include: [staff, Wiki-Admins]\n        prefixes: [app-wiki-]\n        max: 40", 1)
	src = strings.Replace(src, valid, validDir, 1)
	c, err, _, _ := parse(t, src)
	if err != nil {
		t.Fatal(err)
	}
	spa := c.OIDCProvider.Clients[1]
	want := GroupNames{Include: []string{"staff", "Wiki-Admins"}, Prefixes: []string{"app-wiki-"}, Max: 40}
	if !reflect.DeepEqual(spa.GroupNames, want) || !reflect.DeepEqual(spa.Scopes, []string{"openid", "groups"}) {
		t.Errorf("spa: scopes %q, group_names %+v; want %+v", spa.Scopes, spa.GroupNames, want)
	}
	if wiki := c.OIDCProvider.Clients[0]; !reflect.DeepEqual(wiki.GroupNames, GroupNames{Max: DefaultGroupNamesMax}) {
		t.Errorf("wiki without group_names: %+v", wiki.GroupNames)
	}
}

func TestOIDCProviderInvalid(t *testing.T) {
	for _, tc := range []invalidCase{
		{
			name: "plain http issuer",
			src:  strings.Replace(validOP, "https://sso.example.com/oidc", "http://sso.example.com/oidc", 1),
			want: []string{`6:11: oidc_provider.issuer: "http://sso.example.com/oidc" uses http; use https (plain http is allowed only for localhost, loopback addresses and host names ending in .test)`},
		},
		{
			name: "issuer without a path",
			src:  strings.Replace(validOP, "https://sso.example.com/oidc", "https://sso.example.com", 1),
			want: []string{`6:11: oidc_provider.issuer: "https://sso.example.com" has no path, or ends in /; expected a path of its own like /oidc`},
		},
		{
			name: "missing issuer and keys",
			src:  valid + "oidc_provider:\n  clients: []\n",
			want: []string{
				`5:1: oidc_provider.issuer: missing; expected the provider's https URL`,
				`5:1: oidc_provider.signing_keys_file: missing; expected the path of the farm's signing keys`,
			},
		},
		{
			name: "unsupported scope",
			src:  strings.Replace(validOP, "[openid, profile]", "[openid, offline]", 1),
			want: []string{`15:24: oidc_provider.clients[1].scopes[1]: "offline" is not a supported scope; expected openid, profile, email, offline_access or groups`},
		},
		{
			name: "group_names without a directory",
			src:  strings.Replace(validOP, "[openid, profile]", "[openid, groups]\n      group_names: {include: [staff]}", 1),
			want: []string{`16:20: oidc_provider.clients[1].group_names: group names come from the directory, and the file has no directory section; expected a directory section, or no group_names (the groups scope then carries group_sids only)`},
		},
		{
			name: "group_names max too small and prefixes not a list",
			src: strings.Replace(strings.Replace(validOP, "[openid, profile]", "[openid, groups]\n      group_names: {max: 0, prefixes: app-}", 1),
				valid, validDir, 1),
			want: []string{
				`24:26: oidc_provider.clients[1].group_names.max: 0 is too small; expected the most group names to send, from 1 to 1000 (more: overage is signalled instead)`,
				`24:39: oidc_provider.clients[1].group_names.prefixes: got "app-"; expected a list of group name prefixes to keep, like app-wiki-`,
			},
		},
		{
			name: "duplicate client id",
			src:  strings.Replace(validOP, "id: spa", "id: wiki", 1),
			want: []string{`13:11: oidc_provider.clients[1].id: "wiki" is the id of oidc_provider.clients[0] too; expected each client id once`},
		},
		{
			name: "plain http redirect URI",
			src:  strings.Replace(validOP, "https://wiki.example.com/cb", "http://wiki.example.com/cb", 1),
			want: []string{`11:23: oidc_provider.clients[0].redirect_uris[0]: "http://wiki.example.com/cb" uses http; use https`},
		},
		{
			name: "group name without a directory",
			src:  strings.Replace(validOP, "[S-1-5-21-1-2-3-1110]", "[staff]", 1),
			want: []string{`12:24: oidc_provider.clients[0].allowed_groups[0]: "staff" is a group name, and oidc_provider.clients[0] needs directory to look it up`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
}
