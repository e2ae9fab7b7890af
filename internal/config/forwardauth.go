package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ForwardAuth is the optional forward_auth section: kerbgate as the auth endpoint of
// a reverse proxy (nginx auth_request, Caddy forward_auth, Traefik forwardAuth), see
// docs/forward-auth.md.
type ForwardAuth struct {
	// Enabled says whether the file has the section.
	Enabled bool
	// CookieName is the session cookie's name; "kerbgate_auth" by default.
	CookieName string
	// CookieDomain is the cookie's Domain, like example.com: one sign-in for every
	// host under it. Empty: a cookie per host.
	CookieDomain string
	// SessionTTL is how long a forward-auth session lasts; 8h by default.
	SessionTTL time.Duration
	// SessionCacheTTL keeps opened sessions in each node's memory that long
	// (DefaultSessionCacheTTL by default); 0 reads the store on every request.
	SessionCacheTTL time.Duration
	// ReturnDomains are the hosts the sign-in page may send browsers back to
	// ("app.example.com", or ".example.com" for it and every host under it). By
	// default "."+CookieDomain, or the hosts' names without a cookie domain.
	ReturnDomains []string
	// SignInURL is kerbgate's sign-in page as browsers reach it; by default
	// listen.external_url + /forward-auth/sign-in. Needed by hosts with sign_in
	// redirect.
	SignInURL string
	// RequireDirectory confirms the account in the directory at sign-in (and reads
	// its group names); true by default with a directory section.
	RequireDirectory bool
	Hosts            []ForwardAuthHost
}

// ForwardAuthHost is one entry of forward_auth.hosts.
type ForwardAuthHost struct {
	// Host is the application's host name, or "*.example.com" for every host under
	// example.com without an entry of its own.
	Host          string
	AllowedGroups []string
	// SignIn is "negotiate" (the default: 401 Negotiate at the application's host)
	// or "redirect" (to kerbgate's sign-in page).
	SignIn string
	IdentityHeaders
}

// IdentityHeaders is what an application receives about the user (a forward_auth
// host, or a proxy app): the headers, the group names in them, and the signed
// assertion.
type IdentityHeaders struct {
	// Headers maps claims (user, upn, email, name, sid, groups, group_sids) to
	// header names; nil sends none.
	Headers []HeaderMapping
	// GroupNames selects the names in the groups header and the assertion.
	GroupNames GroupNames
	// Assertion is the signed JWT; nil sends none.
	Assertion *Assertion
}

// HeaderMapping sends one claim in one header.
type HeaderMapping struct {
	Claim, Header string
}

// Assertion is a signed identity assertion: a JWT signed with oidc_provider's keys.
type Assertion struct {
	// Header is its header's name; X-Auth-Request-Assertion by default.
	Header string
	// TTL is its lifetime, 5m at most (the default).
	TTL time.Duration
}

// The claims a header can carry, and their default headers (oauth2-proxy's names).
var (
	headerClaims   = []string{"user", "upn", "email", "name", "sid", "groups", "group_sids"}
	defaultHeaders = []HeaderMapping{
		{"user", "X-Auth-Request-User"}, {"email", "X-Auth-Request-Email"}, {"groups", "X-Auth-Request-Groups"},
		{"sid", "X-Auth-Request-Sid"}, {"upn", "X-Auth-Request-Preferred-Username"},
	}
)

// DefaultHeaders returns the headers sent when a forward_auth host names none.
func DefaultHeaders() []HeaderMapping { return append([]HeaderMapping(nil), defaultHeaders...) }

const maxAssertionTTL = 5 * time.Minute

var headerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// reservedHeaders may not carry identity: the proxy or HTTP itself owns them.
var reservedHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true, "host": true,
	"content-length": true, "content-type": true, "transfer-encoding": true, "connection": true, "upgrade": true,
	"te": true, "trailer": true, "keep-alive": true, "location": true, "www-authenticate": true,
}

// DefaultSessionCacheTTL is how long a node keeps an opened forward-auth session
// by default. A sign-out on the node ends the session there at once; other nodes of
// a farm may accept it for up to this long afterwards (docs/forward-auth.md).
const DefaultSessionCacheTTL = time.Second

func decodeForwardAuth(m *mapping, c *Config) {
	if m.broken || len(m.order) == 0 {
		return
	}
	fa := &c.ForwardAuth
	fa.Enabled = true
	fa.CookieName = "kerbgate_auth"
	fa.SessionTTL = defaultSessionTTL
	fa.SessionCacheTTL = DefaultSessionCacheTTL

	f := m.field("cookie_name", "a cookie name of letters, digits and !#$%&'*+-.^_`|~")
	if v, ok := f.str(); ok {
		if v == "" || strings.IndexFunc(v, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			f.invalid("%s is not a cookie name", describe(f.val))
		} else {
			fa.CookieName = v
		}
	}
	f = m.field("cookie_domain", "a parent domain of the applications' hosts, like example.com")
	if v, ok := f.str(); ok {
		d := strings.ToLower(strings.TrimPrefix(v, "."))
		if !validDomain(d) || !strings.Contains(d, ".") {
			f.invalid("%s is not a domain with at least two labels", describe(f.val))
		} else {
			fa.CookieDomain = d
		}
	}
	f = m.field("session_ttl", "a duration from 1m to 720h, like 8h")
	if v, ok := f.durationIn(minSessionTTL, maxSessionTTL); ok {
		fa.SessionTTL = v
	}
	f = m.field("session_cache_ttl", "a duration from 0s to 10s (1s by default; 0s: read the store on every request)")
	if v, ok := f.durationIn(0, 10*time.Second); ok {
		fa.SessionCacheTTL = v
	}
	f = m.field("return_domains", "a list of hosts the sign-in may return to: app.example.com, or .example.com for it and every host under it")
	if f.set() {
		ds, its := f.strings("a host name, or a domain with a leading dot")
		for i, d := range ds {
			if !validDomain(strings.ToLower(strings.TrimPrefix(d, "."))) {
				its[i].invalid("%s is not a host name or .domain", describe(its[i].val))
				continue
			}
			fa.ReturnDomains = append(fa.ReturnDomains, strings.ToLower(d))
		}
	}
	f = m.field("sign_in_url", "kerbgate's sign-in page as browsers reach it, like https://sso.example.com/forward-auth/sign-in")
	if s, ok := f.str(); ok {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			f.invalid("%s is not an http(s) URL without a query or fragment", describe(f.val))
		} else if u.Scheme == "http" && !plainHTTPHost(u.Hostname()) {
			f.errorf("%s uses http; use https (plain http is allowed only for localhost, 127.0.0.1, ::1 and host names ending in .test)", describe(f.val))
		} else {
			fa.SignInURL = s
		}
	}
	f = m.field("require_directory", "true or false")
	if v, ok := f.bool(); ok {
		fa.RequireDirectory = v
	}

	const hostExpect = "a host: a mapping with at least host"
	f = m.field("hosts", "a list of hosts, each "+strings.TrimPrefix(hostExpect, "a host: "))
	if f.required() {
		items, _ := f.list(hostExpect)
		seen := map[string]string{}
		for _, it := range items {
			h := decodeForwardAuthHost(it.mapping(hostExpect))
			if h.Host != "" {
				if first, dup := seen[h.Host]; dup {
					it.d.errorAt(it.path+".host", posOf(it.at), "%q is the host of %s too; expected each host once", h.Host, first)
				}
				seen[h.Host] = it.path
			}
			fa.Hosts = append(fa.Hosts, h)
		}
	}
}

func decodeForwardAuthHost(m *mapping) ForwardAuthHost {
	var h ForwardAuthHost
	h.SignIn = "negotiate"
	if m.broken {
		return h
	}
	f := m.field("host", "the application's host name, like app.example.com, or *.example.com")
	if f.required() {
		if s, ok := f.str(); ok {
			s = strings.ToLower(s)
			if !validDomain(strings.TrimPrefix(s, "*.")) {
				f.invalid("%s is not a host name (no scheme, port or path) or *.domain", describe(f.val))
			} else {
				h.Host = s
			}
		}
	}
	h.AllowedGroups = decodeGroups(m.field("allowed_groups", groupsExpect))
	f = m.field("sign_in", "negotiate or redirect")
	if s, ok := f.str(); ok {
		if s != "negotiate" && s != "redirect" {
			f.invalid("%s is not a sign-in method", describe(f.val))
		} else {
			h.SignIn = s
		}
	}
	h.IdentityHeaders = decodeIdentityHeaders(m, true)
	return h
}

// decodeIdentityHeaders reads headers, group_names and assertion of m. Without
// headers, a forward_auth host gets the defaults (byDefault) and a proxy app none.
func decodeIdentityHeaders(m *mapping, byDefault bool) IdentityHeaders {
	var ih IdentityHeaders
	const expect = "default, none, or a mapping of claims (user, upn, email, name, sid, groups, group_sids) to header names, like user: X-Remote-User"
	f := m.field("headers", expect)
	switch {
	case !f.set():
		if byDefault {
			ih.Headers = DefaultHeaders()
		}
	case f.val.Kind == yaml.ScalarNode:
		switch f.val.Value {
		case "default":
			ih.Headers = DefaultHeaders()
		case "none":
		default:
			f.invalid("%s is neither default nor none", describe(f.val))
		}
	default:
		hm := f.mapping(expect)
		seen := map[string]string{}
		for _, claim := range headerClaims {
			cf := hm.field(claim, "a header name of letters, digits and '-', like X-Auth-Request-User")
			s, ok := cf.str()
			if !ok {
				continue
			}
			switch {
			case !headerName.MatchString(s):
				cf.invalid("%s is not a header name", describe(cf.val))
			case reservedHeaders[strings.ToLower(s)]:
				cf.invalid("%s is a header HTTP or the proxy owns; expected a header of its own, like X-Auth-Request-User", describe(cf.val))
			case seen[strings.ToLower(s)] != "":
				cf.invalid("%s is the header of %s too; expected each header once", describe(cf.val), seen[strings.ToLower(s)])
			default:
				seen[strings.ToLower(s)] = claim
				ih.Headers = append(ih.Headers, HeaderMapping{claim, s})
			}
		}
	}
	ih.GroupNames = decodeGroupNames(m.section("group_names"))
	am := m.section("assertion")
	if _, present := m.keys["assertion"]; present && !am.broken {
		a := &Assertion{Header: "X-Auth-Request-Assertion", TTL: maxAssertionTTL}
		hf := am.field("header", "a header name of letters, digits and '-', like X-Auth-Request-Assertion")
		if s, ok := hf.str(); ok {
			if !headerName.MatchString(s) || reservedHeaders[strings.ToLower(s)] {
				hf.invalid("%s is not a header name of its own", describe(hf.val))
			} else {
				a.Header = s
			}
		}
		tf := am.field("ttl", "a duration from 10s to 5m")
		if v, ok := tf.durationIn(10*time.Second, maxAssertionTTL); ok {
			a.TTL = v
		}
		ih.Assertion = a
	}
	return ih
}

// validDomain reports whether d is a host name: dot-separated labels of letters,
// digits and '-'.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasSuffix(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// finishForwardAuth applies the defaults that depend on other sections and checks
// what forward-auth needs from them.
func finishForwardAuth(d *decoder, c *Config) {
	fa := &c.ForwardAuth
	if !fa.Enabled {
		checkAssertions(d, c)
		return
	}
	rd := d.values["forward_auth.require_directory"]
	if rd == nil || isNull(deref(rd)) {
		fa.RequireDirectory = c.Directory.Enabled
	} else if fa.RequireDirectory && !c.Directory.Enabled {
		d.errorf(posOf(rd), "forward_auth.require_directory", "true but the file has no directory section; expected a directory section, or require_directory: false")
	}
	if len(c.Listen.TrustedProxies) == 0 {
		d.errorf(pos{1, 1}, "forward_auth", "needs listen.trusted_proxies: forward-auth believes X-Forwarded-Host only from the proxies listed there; expected the reverse proxies' addresses in listen.trusted_proxies")
	}
	if fa.SignInURL == "" && c.Listen.ExternalURL != nil {
		fa.SignInURL = strings.TrimSuffix(c.Listen.ExternalURL.String(), "/") + "/forward-auth/sign-in"
	}
	if len(fa.ReturnDomains) == 0 {
		if fa.CookieDomain != "" {
			fa.ReturnDomains = []string{"." + fa.CookieDomain}
		} else {
			for _, h := range fa.Hosts {
				if h.Host != "" && !strings.HasPrefix(h.Host, "*.") {
					fa.ReturnDomains = append(fa.ReturnDomains, h.Host)
				}
			}
		}
	}
	for i, h := range fa.Hosts {
		path := fmt.Sprintf("forward_auth.hosts[%d]", i)
		if h.SignIn == "redirect" && fa.SignInURL == "" {
			d.errorAt(path+".sign_in", pos{1, 1}, "redirect needs kerbgate's sign-in page: expected forward_auth.sign_in_url or listen.external_url")
		}
		if h.SignIn == "redirect" && fa.CookieDomain == "" {
			d.errorAt(path+".sign_in", pos{1, 1}, "redirect needs forward_auth.cookie_domain: the cookie kerbgate's sign-in page sets must reach the application's host")
		}
		if !c.Directory.Enabled {
			checkGroupNames(d, path, h.AllowedGroups)
		}
	}
	checkAssertions(d, c)
}

// checkAssertions reports assertions without an oidc_provider, whose keys sign them.
func checkAssertions(d *decoder, c *Config) {
	if c.OIDCProvider.Enabled {
		return
	}
	check := func(path string, a *Assertion) {
		if a != nil {
			d.errorAt(path+".assertion", pos{1, 1}, "needs the oidc_provider section: the assertion is signed with its signing_keys_file and names its issuer; expected an oidc_provider section (clients may be empty)")
		}
	}
	for i, h := range c.ForwardAuth.Hosts {
		check(fmt.Sprintf("forward_auth.hosts[%d]", i), h.Assertion)
	}
	for i, a := range c.Proxy.Apps {
		check(fmt.Sprintf("proxy.apps[%d]", i), a.Assertion)
	}
}
