package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kerbgate/kerbgate/internal/httppath"
	"github.com/kerbgate/kerbgate/internal/oidcauth"
)

// Proxy is the proxy section: internal web applications published through kerbgate,
// with pre-authentication and Kerberos constrained delegation to them.
type Proxy struct {
	// Delegation is kerbgate's own service identity towards the KDC (S4U2Self and
	// S4U2Proxy); set when any app has a kerberos section.
	Delegation Delegation
	// CookieName names the proxy's session cookie (one per published host);
	// "kerbgate_proxy" by default.
	CookieName string
	// SessionTTL is how long a proxy session lasts; 8h by default.
	SessionTTL time.Duration
	// Apps are the published applications, in the order given.
	Apps []ProxyApp
}

// Delegation is proxy.delegation.
type Delegation struct {
	// Keytab holds the service account's own keys (principal Principal, not only its
	// SPNs): kerbgate signs in to the KDC with it to get its TGT.
	Keytab string
	// Principal is the service account, like "svc-gw" (in kerberos.realm).
	Principal string
	// KDCs are host:port addresses of the realm's KDCs, tried in order.
	KDCs []string
	// TicketCacheSize bounds the delegated tickets kept (LRU); 10000 by default.
	TicketCacheSize int
}

// ProxyApp is one entry of proxy.apps.
type ProxyApp struct {
	ID string
	// Host is the external host name browsers use (the Host header, without port).
	Host string
	// PathPrefix is the path under Host this app serves; "/" by default. It is a
	// canonical path (no "//", dot segments or lower-case escapes) compared with the
	// request's canonical path exactly, case included (RFC 3986 paths are
	// case-sensitive, as Apache and nginx treat them); a request that would pick
	// another app if compared without case (IIS) is refused. See docs/proxy.md, Paths.
	PathPrefix string
	// Upstream is the internal application's base URL.
	Upstream *url.URL
	// UpstreamCAFile verifies an https upstream; the system roots when empty.
	UpstreamCAFile string
	// PreserveHost sends the external Host header upstream instead of the upstream's.
	PreserveHost bool
	// Timeout bounds the wait for the upstream's response headers; 60s by default.
	Timeout time.Duration
	// PreAuth is "iwa", "oidc" or "passthrough".
	PreAuth string
	// AllowedGroups limit who may use the app (SIDs or names); empty: anyone signed in.
	AllowedGroups []string
	// OIDC configures pre_auth oidc.
	OIDC *ProxyOIDC
	// Kerberos configures single sign-on to the upstream; nil sends no ticket.
	Kerberos *ProxyKerberos
	// Challenge replaces password_signin.challenge for this app; BasicAuth accepts
	// Basic credentials over TLS (pre_auth iwa, with a password_signin section).
	Challenge Challenge
	BasicAuth bool
	// IdentityHeaders are the identity headers (and assertion) the upstream gets:
	// Entra's header-based SSO, alone or beside kerberos. None by default; headers
	// of the default names are stripped from every request all the same.
	IdentityHeaders
}

// ProxyOIDC is proxy.apps[].oidc.
type ProxyOIDC struct {
	Issuer           string
	ClientID         string
	ClientSecretFile string
	ClientSecretEnv  string
	// UsernameClaim is the ID token claim holding the user's UPN; "upn" by default.
	UsernameClaim string
	Scopes        []string
}

// ProxyKerberos is proxy.apps[].kerberos.
type ProxyKerberos struct {
	// SPN is the upstream's service principal name, like "HTTP/app.example.test".
	SPN string
	// LoginIdentity is the name kerbgate asks the KDC for: upn, alternate_upn,
	// upn_user_part, alternate_upn_user_part or sam_account_name.
	LoginIdentity string
	// AlternateUPNAttribute is the directory attribute alternate_upn* read.
	AlternateUPNAttribute string
	// TokenFormat is "spnego" (the default) or "kerberos" (a raw GSS Kerberos token).
	TokenFormat string
	// Send is "always" (the default: the token goes with every request) or "on_401"
	// (only after the upstream answers 401 Negotiate).
	Send string
	// MaxReplayBody bounds the request body kept to replay after a 401; 1 MiB by
	// default. A larger body is sent with the token up front.
	MaxReplayBody int
	// MapForeignRealms are the realms (of kerberos.trusted_realms) whose users a
	// name-only login identity (sam_account_name, upn_user_part,
	// alternate_upn_user_part) may be used for: the name is then delegated in the
	// user's own realm. Empty by default: such users are refused with
	// login_identity_foreign_realm.
	MapForeignRealms []string
}

var loginIdentities = []string{"upn", "alternate_upn", "upn_user_part", "alternate_upn_user_part", "sam_account_name"}

func decodeProxy(m *mapping, c *Config) {
	p := &c.Proxy
	p.CookieName = "kerbgate_proxy"
	p.SessionTTL = defaultSessionTTL
	if m.broken || len(m.order) == 0 {
		return
	}
	f := m.field("cookie_name", "a cookie name of letters, digits and !#$%&'*+-.^_`|~")
	if v, ok := f.str(); ok {
		if v == "" || strings.IndexFunc(v, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			f.invalid("%s is not a cookie name", describe(f.val))
		} else {
			p.CookieName = v
		}
	}
	f = m.field("session_ttl", "a duration from 1m to 720h, like 8h")
	if v, ok := f.durationIn(minSessionTTL, maxSessionTTL); ok {
		p.SessionTTL = v
	}

	const appExpect = "a published application: a mapping with at least id, host, upstream and pre_auth"
	f = m.field("apps", "a list of published applications")
	items, _ := f.list(appExpect)
	seenID := map[string]string{}
	seenRoute := map[string]string{}
	seenFold := map[string][2]string{} // host + httppath.FoldKey(path_prefix) -> prefix, app
	needDelegation := false
	for _, it := range items {
		app := decodeProxyApp(it.mapping(appExpect), c.Kerberos.TrustedRealms)
		if app.ID != "" {
			if first, dup := seenID[app.ID]; dup {
				it.d.errorAt(it.path+".id", posOf(it.at), "%q is the id of %s too; expected each app id once", app.ID, first)
			}
			seenID[app.ID] = it.path
		}
		if app.Host != "" {
			route := strings.ToLower(app.Host) + app.PathPrefix
			first, dup := seenRoute[route]
			if dup {
				it.d.errorAt(it.path+".host", posOf(it.at), "host %s and path_prefix %s are the route of %s too; expected each route once", app.Host, app.PathPrefix, first)
			}
			seenRoute[route] = it.path
			// Prefixes are compared exactly; one that is another's to an upstream
			// ignoring case (IIS) would make every request to it ambiguous.
			fold := strings.ToLower(app.Host) + httppath.FoldKey(app.PathPrefix)
			if first, seen := seenFold[fold]; seen && !dup {
				it.d.errorAt(it.path+".path_prefix", posOf(it.at), "%s on host %s is %s of %s to an upstream that ignores case and trailing dots (IIS); expected path prefixes that differ otherwise",
					app.PathPrefix, strings.ToLower(app.Host), first[0], first[1])
			} else if !seen {
				seenFold[fold] = [2]string{app.PathPrefix, it.path}
			}
		}
		if app.Kerberos != nil {
			needDelegation = true
		}
		p.Apps = append(p.Apps, app)
	}

	dm := m.section("delegation")
	if !needDelegation && len(dm.order) == 0 {
		return
	}
	d := &p.Delegation
	d.TicketCacheSize = 10000
	kf := dm.field("keytab", "the service account's own keytab (its principal, e.g. svc-gw, not only its SPNs)")
	if kf.required() {
		if s, ok := kf.str(); ok {
			abs, shown := resolvedPath(kf, s)
			if checkReadable(kf, abs, shown, kf.expect) {
				d.Keytab = abs
			}
		}
	}
	pf := dm.field("principal", "the service account name, like svc-gw (in kerberos.realm)")
	if pf.required() {
		if s, ok := pf.str(); ok {
			if s == "" || strings.ContainsAny(s, "@/ ") {
				pf.invalid("%s is not an account name (no realm, no service/host)", describe(pf.val))
			} else {
				d.Principal = s
			}
		}
	}
	hf := dm.field("kdcs", "a list of KDC addresses host:port, like dc1.example.test:88")
	if hf.required() {
		addrs, hitems := hf.strings(hf.expect)
		for i, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				hitems[i].invalid("%s is not host:port", describe(hitems[i].val))
				continue
			}
			d.KDCs = append(d.KDCs, a)
		}
	}
	cf := dm.field("ticket_cache_size", "the number of delegated tickets kept, 100 to 10000000")
	if v, ok := cf.intIn(100, 10_000_000); ok {
		d.TicketCacheSize = v
	}
}

func decodeProxyApp(m *mapping, trusted []string) ProxyApp {
	var a ProxyApp
	a.PathPrefix = "/"
	a.Timeout = 60 * time.Second
	if m.broken {
		return a
	}
	f := m.field("id", "lower-case letters, digits, '.', '_' and '-'")
	if f.required() {
		if s, ok := f.str(); ok {
			if appID.MatchString(s) {
				a.ID = s
			} else {
				f.invalid("%s is not an app id", describe(f.val))
			}
		}
	}
	f = m.field("host", "the external host name browsers use, like app.example.test")
	if f.required() {
		if s, ok := f.str(); ok {
			if s == "" || strings.ContainsAny(s, "/:@ ") {
				f.invalid("%s is not a host name (no scheme, port or path)", describe(f.val))
			} else {
				a.Host = strings.ToLower(s)
			}
		}
	}
	f = m.field("path_prefix", `a canonical path starting with "/", like /app/`)
	if s, ok := f.str(); ok {
		if !strings.HasPrefix(s, "/") {
			f.invalid("%s does not start with /", describe(f.val))
		} else if c, err := httppath.Canonical(s); err != nil {
			f.invalid("%s is not a canonical path (%s)", describe(f.val), err.(*httppath.Error).Why)
		} else if c != s {
			f.invalid("%s is not a canonical path (its canonical form is %s)", describe(f.val), c)
		} else {
			a.PathPrefix = s
		}
	}
	f = m.field("upstream", "the internal application's URL, like http://app.internal:8080")
	if f.required() {
		if s, ok := f.str(); ok {
			u, err := url.Parse(s)
			switch {
			case err != nil:
				f.invalid("%s is not a URL", describe(f.val))
			case u.Scheme != "http" && u.Scheme != "https":
				f.invalid("%s has scheme %q; expected http or https", describe(f.val), u.Scheme)
			case u.Host == "":
				f.invalid("%s has no host", describe(f.val))
			default:
				a.Upstream = u
			}
		}
	}
	f = m.field("upstream_ca_file", "a PEM file of CA certificates for an https upstream")
	if s, ok := f.str(); ok {
		abs, shown := resolvedPath(f, s)
		if checkReadable(f, abs, shown, f.expect) {
			if _, err := readCertificates(abs); err != nil {
				f.errorf("%s: %v; expected %s", shown, err, f.expect)
			} else {
				a.UpstreamCAFile = abs
			}
		}
	}
	f = m.field("preserve_host", "true or false")
	if v, ok := f.bool(); ok {
		a.PreserveHost = v
	}
	f = m.field("timeout", "a duration from 1s to 10m")
	if v, ok := f.durationIn(time.Second, 10*time.Minute); ok {
		a.Timeout = v
	}
	f = m.field("pre_auth", "iwa, oidc or passthrough")
	if f.required() {
		if s, ok := f.str(); ok {
			switch s {
			case "iwa", "oidc", "passthrough":
				a.PreAuth = s
			default:
				f.invalid("%s is not a pre-authentication method", describe(f.val))
			}
		}
	}
	a.Challenge = decodeChallenge(m.field("challenge", "a mapping with default and rules, as password_signin.challenge"))
	f = m.field("basic_auth", "true or false")
	if v, ok := f.bool(); ok {
		a.BasicAuth = v
	}
	f = m.field("allowed_groups", groupsExpect)
	a.AllowedGroups = decodeGroups(f)
	if len(a.AllowedGroups) > 0 && a.PreAuth == "passthrough" {
		f.errorf("set with pre_auth passthrough, which signs nobody in, so nobody could be let in; expected pre_auth iwa or oidc, or no allowed_groups")
	}

	a.IdentityHeaders = decodeIdentityHeaders(m, false)
	if (len(a.Headers) > 0 || a.Assertion != nil) && a.PreAuth == "passthrough" {
		m.d.errorAt(m.path+".headers", m.at, "identity headers with pre_auth passthrough would name nobody; expected pre_auth iwa or oidc")
	}

	om := m.section("oidc")
	if len(om.order) > 0 || a.PreAuth == "oidc" {
		a.OIDC = decodeProxyOIDC(om)
	}
	km := m.section("kerberos")
	if len(km.order) > 0 {
		a.Kerberos = decodeProxyKerberos(km, trusted)
		if a.PreAuth == "passthrough" {
			km.d.errorAt(km.path, km.at, "a kerberos section with pre_auth passthrough would sign anonymous users in to the upstream; expected pre_auth iwa or oidc")
		}
	}
	return a
}

func decodeProxyOIDC(m *mapping) *ProxyOIDC {
	o := &ProxyOIDC{UsernameClaim: "upn", Scopes: []string{"openid", "profile", "email"}}
	f := m.field("issuer", "the OpenID provider's issuer URL, https, like https://login.example.com")
	if f.required() {
		if s, ok := f.str(); ok {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				f.invalid("%s is not an http(s) URL", describe(f.val))
			} else if u.Scheme == "http" && !oidcauth.PlainHTTPAllowed(u.Hostname()) {
				// Discovery, the JWKS that verifies ID tokens and the code exchange all
				// come from the issuer: over plain http anyone on the path signs users in.
				f.errorf("%s is plain http; expected an https URL (http only for a provider on loopback or in a .test domain)", describe(f.val))
			} else {
				o.Issuer = s
			}
		}
	}
	f = m.field("client_id", "the client id registered at the provider")
	if f.required() {
		if s, ok := f.str(); ok && s != "" {
			o.ClientID = s
		}
	}
	sf := m.field("client_secret_file", "a file holding the client secret (or client_secret_env)")
	ef := m.field("client_secret_env", "the name of an environment variable holding the client secret")
	m.reject("client_secret", "secrets do not belong in the configuration file; expected client_secret_file or client_secret_env")
	if sf.set() && ef.set() {
		ef.errorf("set together with client_secret_file; expected at most one of client_secret_file or client_secret_env")
	}
	o.ClientSecretFile = secretFile(sf)
	o.ClientSecretEnv = secretEnv(ef)
	f = m.field("username_claim", "the ID token claim holding the user's UPN, like upn or preferred_username")
	if s, ok := f.str(); ok && s != "" {
		o.UsernameClaim = s
	}
	f = m.field("scopes", "a list of scopes, openid first")
	if s, _ := f.strings(f.expect); s != nil {
		o.Scopes = s
	}
	return o
}

// Secret returns the OIDC client secret from its file or environment variable (the
// file when both are set), or "" for a public client with neither.
func (o *ProxyOIDC) Secret() (string, error) {
	return readSecret("oidc client secret", o.ClientSecretFile, o.ClientSecretEnv)
}

func decodeProxyKerberos(m *mapping, trusted []string) *ProxyKerberos {
	k := &ProxyKerberos{LoginIdentity: "upn", TokenFormat: "spnego", Send: "always", MaxReplayBody: 1 << 20}
	f := m.field("spn", "the upstream's service principal name, like HTTP/app.example.test")
	if f.required() {
		if s, ok := f.str(); ok {
			if svc, host, ok := strings.Cut(s, "/"); !ok || svc == "" || host == "" || strings.Contains(s, "@") {
				f.invalid("%s is not service/host", describe(f.val))
			} else {
				k.SPN = s
			}
		}
	}
	f = m.field("login_identity", strings.Join(loginIdentities, ", "))
	if s, ok := f.str(); ok {
		found := false
		for _, l := range loginIdentities {
			found = found || l == s
		}
		if !found {
			f.invalid("%s is not a login identity", describe(f.val))
		} else {
			k.LoginIdentity = s
		}
	}
	af := m.field("alternate_upn_attribute", "the directory attribute holding the alternate UPN, like extensionAttribute1")
	if s, ok := af.str(); ok && s != "" {
		k.AlternateUPNAttribute = s
	}
	if strings.HasPrefix(k.LoginIdentity, "alternate_upn") && k.AlternateUPNAttribute == "" {
		af.errorf("missing; expected %s (login_identity %s reads it)", af.expect, k.LoginIdentity)
	}
	f = m.field("token_format", "spnego or kerberos")
	if s, ok := f.str(); ok {
		if s != "spnego" && s != "kerberos" {
			f.invalid("%s is not a token format", describe(f.val))
		} else {
			k.TokenFormat = s
		}
	}
	f = m.field("send", "always or on_401")
	if s, ok := f.str(); ok {
		if s != "always" && s != "on_401" {
			f.invalid("%s is not a send mode", describe(f.val))
		} else {
			k.Send = s
		}
	}
	f = m.field("max_replay_body", "a number of bytes from 0 to 67108864")
	if v, ok := f.intIn(0, 64<<20); ok {
		k.MaxReplayBody = v
	}
	f = m.field("map_foreign_realms", "a list of realms of kerberos.trusted_realms whose users the login identity's bare name may be delegated for, in their own realm")
	if f.set() && !(f.val.Kind == yaml.SequenceNode && len(f.val.Content) == 0) {
		realms, items := f.strings("a realm of kerberos.trusted_realms")
		seen := map[string]string{}
		for i, s := range realms {
			it := items[i]
			switch {
			case !checkRealm(it, s):
			case !slices.Contains(trusted, s):
				it.errorf("%s is not in kerberos.trusted_realms; expected a trusted realm (users of other realms never sign in)", describe(it.val))
			case seen[s] != "":
				it.errorf("%s is a duplicate of %s; expected each realm once", describe(it.val), seen[s])
			default:
				seen[s] = it.path
				k.MapForeignRealms = append(k.MapForeignRealms, s)
			}
		}
	}
	return k
}

// finishProxy checks what the proxy needs from other sections.
func finishProxy(d *decoder, c *Config) {
	for i, a := range c.Proxy.Apps {
		if !c.Directory.Enabled {
			checkGroupNames(d, fmt.Sprintf("proxy.apps[%d]", i), a.AllowedGroups)
		}
		if a.Kerberos == nil {
			continue
		}
		// The PAC of an IWA sign-in carries the UPN and sAMAccountName; an OIDC
		// sign-in gives only the UPN claim, and alternate UPNs are directory attributes.
		alt := strings.HasPrefix(a.Kerberos.LoginIdentity, "alternate_upn")
		needsDir := alt || (a.PreAuth == "oidc" && a.Kerberos.LoginIdentity == "sam_account_name")
		if needsDir && !c.Directory.Enabled {
			d.errorAt(fmt.Sprintf("proxy.apps[%d].kerberos.login_identity", i), top,
				"login identity %s with pre_auth %s needs the directory section (the name is looked up in AD)", a.Kerberos.LoginIdentity, a.PreAuth)
		}
	}
	if len(c.Proxy.Apps) > 0 && c.Proxy.Delegation.Principal != "" && c.Kerberos.Realm == "" {
		d.errorAt("kerberos.realm", top, "missing; the delegation principal is in kerberos.realm")
	}
}
