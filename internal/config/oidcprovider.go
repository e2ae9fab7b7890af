package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/oidcauth"
	"github.com/kerbgate/kerbgate/internal/secret"
)

// OIDCProvider is the optional oidc_provider section: kerbgate as an OpenID Provider
// whose login step is the Windows sign-in (see docs/oidc-provider.md).
type OIDCProvider struct {
	// Enabled says whether the file has the section.
	Enabled bool
	// Issuer is the provider's URL; its path is where the endpoints live.
	Issuer string
	// SigningKeysFile is the farm's JWK set (kerbgate oidc-keygen), oldest first;
	// the last key signs, all are published.
	SigningKeysFile string
	// IDTokenTTL and AccessTokenTTL are the tokens' lifetimes (5m and 10m by default);
	// RefreshTokenTTL is a refresh token's (8h by default), for clients allowed
	// offline_access.
	IDTokenTTL, AccessTokenTTL, RefreshTokenTTL time.Duration
	// Clients are the registered relying parties.
	Clients []OIDCClient
}

// OIDCClient is one client of oidc_provider.clients.
type OIDCClient struct {
	ID string
	// SecretHash is the client secret's hash (kerbgate hash-secret); "" for a public
	// client, which must use PKCE (S256).
	SecretHash             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	AllowedGroups          []string
	// Scopes are the scopes the client may ask for; openid, profile and email when
	// absent. offline_access (refresh tokens) and groups (the groups and group_sids
	// claims) only when listed.
	Scopes []string
	// GroupNames is group_names: which group names the groups claim carries, and
	// how many at most in an ID token (more: overage, signalled).
	GroupNames GroupNames
	// RequireDirectory is as in sso apps: true by default with a directory section.
	RequireDirectory bool
}

const (
	defaultIDTokenTTL     = 5 * time.Minute
	defaultAccessTokenTTL = 10 * time.Minute
	defaultRefreshTTL     = 8 * time.Hour
)

var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true, "groups": true}

var oidcClientID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func decodeOIDCProvider(m *mapping, c *Config) {
	if m.broken || len(m.order) == 0 {
		return // absent, empty, or not a mapping (reported)
	}
	p := &c.OIDCProvider
	p.Enabled = true

	f := m.field("issuer", "the provider's https URL without a query or fragment, like https://sso.example.com/oidc")
	if f.required() {
		if s, ok := f.str(); ok {
			u, err := url.Parse(s)
			switch {
			case err != nil || !u.IsAbs() || u.Hostname() == "":
				f.invalid("%s is not an absolute URL", describe(f.val))
			case u.Scheme != "https" && u.Scheme != "http":
				f.invalid("%s has scheme %s", describe(f.val), u.Scheme)
			case u.Scheme == "http" && !oidcauth.PlainHTTPAllowed(u.Hostname()):
				f.errorf("%s uses http; use https (plain http is allowed only for localhost, loopback addresses and host names ending in .test)", describe(f.val))
			case u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") || u.User != nil:
				f.invalid("%s has a query, a fragment or user information", describe(f.val))
			case u.Path == "" || u.Path == "/" || strings.HasSuffix(u.Path, "/"):
				f.invalid("%s has no path, or ends in /; expected a path of its own like /oidc", describe(f.val))
			default:
				p.Issuer = s
			}
		}
	}

	f = m.field("signing_keys_file", "the path of the farm's signing keys, a JWK set made by kerbgate oidc-keygen")
	if f.required() {
		if s, ok := f.str(); ok {
			if s == "" {
				f.invalid("empty")
			} else {
				p.SigningKeysFile = s
			}
		}
	}

	p.IDTokenTTL = defaultIDTokenTTL
	f = m.field("id_token_ttl", "a duration from 1m to 1h, like 5m")
	if v, ok := f.durationIn(time.Minute, time.Hour); ok {
		p.IDTokenTTL = v
	}
	p.AccessTokenTTL = defaultAccessTokenTTL
	f = m.field("access_token_ttl", "a duration from 1m to 1h, like 10m")
	if v, ok := f.durationIn(time.Minute, time.Hour); ok {
		p.AccessTokenTTL = v
	}

	p.RefreshTokenTTL = defaultRefreshTTL
	f = m.field("refresh_token_ttl", "a duration from 1m to 720h (30 days), like 8h")
	if v, ok := f.durationIn(time.Minute, 30*24*time.Hour); ok {
		p.RefreshTokenTTL = v
	}

	const clientExpect = "a client: a mapping with at least id and redirect_uris"
	f = m.field("clients", "a list of clients, each "+strings.TrimPrefix(clientExpect, "a client: "))
	items, _ := f.list(clientExpect)
	seen := map[string]string{}
	for _, it := range items {
		cl := decodeOIDCClient(it.mapping(clientExpect))
		if cl.ID != "" {
			if first, dup := seen[cl.ID]; dup {
				it.d.errorAt(it.path+".id", posOf(it.at), "%q is the id of %s too; expected each client id once", cl.ID, first)
			} else {
				seen[cl.ID] = it.path
			}
		}
		p.Clients = append(p.Clients, cl)
	}
}

func decodeOIDCClient(m *mapping) OIDCClient {
	var cl OIDCClient
	if m.broken {
		return cl
	}
	f := m.field("id", "a client id of 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or digit, like wiki")
	if f.required() {
		if s, ok := f.str(); ok {
			if !oidcClientID.MatchString(s) {
				f.invalid("%s is not a client id", describe(f.val))
			} else {
				cl.ID = s
			}
		}
	}
	f = m.field("secret_hash", "the client secret's hash as printed by kerbgate hash-secret (absent: a public client, which must use PKCE)")
	if s, ok := f.str(); ok {
		if err := secret.Check(s); err != nil {
			f.errorf("not a valid secret hash (%v); expected %s", err, f.expect).Err = err
		} else {
			cl.SecretHash = s
		}
	}
	f = m.field("redirect_uris", "a list of the URIs the browser is sent back to, like https://app.example.com/callback")
	if f.required() {
		cl.RedirectURIs = decodeURIs(f)
	}
	f = m.field("post_logout_redirect_uris", "a list of the URIs the browser may be sent to after signing out")
	if f.set() {
		cl.PostLogoutRedirectURIs = decodeURIs(f)
	}
	cl.AllowedGroups = decodeGroups(m.field("allowed_groups", groupsExpect))
	f = m.field("scopes", "a list of the scopes the client may ask for, of openid, profile, email, offline_access and groups")
	if f.set() {
		scopes, its := f.strings("openid, profile, email, offline_access or groups")
		for i, s := range scopes {
			if !oidcScopes[s] {
				its[i].invalid("%s is not a supported scope", describe(its[i].val))
				continue
			}
			cl.Scopes = append(cl.Scopes, s)
		}
	}
	cl.GroupNames = decodeGroupNames(m.section("group_names"))
	f = m.field("require_directory", "true or false")
	if v, ok := f.bool(); ok {
		cl.RequireDirectory = v
	}
	return cl
}

// decodeURIs reads a list of exactly compared redirect URIs, each once.
func decodeURIs(f *field) []string {
	var out []string
	uris, items := f.strings("an absolute https URL without a fragment, like https://app.example.com/callback")
	seen := map[string]string{}
	for i, u := range uris {
		it := items[i]
		if !checkRedirectURI(it, u) {
			continue
		}
		if first, dup := seen[u]; dup {
			it.errorf("%s is a duplicate of %s; expected each redirect URI once", describe(it.val), first)
			continue
		}
		seen[u] = it.path
		out = append(out, u)
	}
	return out
}

// finishOIDCProvider defaults require_directory from the directory section and
// checks that group names (allowed_groups, group_names) have one.
func finishOIDCProvider(d *decoder, c *Config) {
	for i := range c.OIDCProvider.Clients {
		cl := &c.OIDCProvider.Clients[i]
		path := fmt.Sprintf("oidc_provider.clients[%d]", i)
		rd := d.values[path+".require_directory"]
		if rd == nil || isNull(deref(rd)) {
			cl.RequireDirectory = c.Directory.Enabled
		}
		if c.Directory.Enabled {
			continue
		}
		if cl.RequireDirectory {
			d.errorf(posOf(rd), path, "needs directory: require_directory is true but the file has no directory section; expected a directory section, or require_directory: false")
		}
		if gn := d.values[path+".group_names"]; gn != nil && !isNull(deref(gn)) {
			d.errorf(posOf(gn), path+".group_names", "group names come from the directory, and the file has no directory section; expected a directory section, or no group_names (the groups scope then carries group_sids only)")
		}
		checkGroupNames(d, path, cl.AllowedGroups)
	}
}
