package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/kerbgate/kerbgate/internal/secret"
)

// SSO is the sso section: kerbgate's own browser session and the applications that
// sign users in through it (the handoff, see docs/handoff.md).
type SSO struct {
	// CookieName names kerbgate's browser session cookie; "kerbgate_session" by default.
	CookieName string
	// BrowserSessionTTL is how long kerbgate's own browser session lasts; 8h by default.
	BrowserSessionTTL time.Duration
	// Apps are the registered applications, in the order given; none by default.
	Apps []App
}

// App is one application of sso.apps.
type App struct {
	// ID identifies the app in requests (app=ID) and is its client id.
	ID string
	// Name is a display name; may be empty.
	Name string
	// RedirectURIs are the URIs the browser may be sent back to, compared exactly.
	RedirectURIs []string
	// SecretHash is the client secret's argon2id or bcrypt hash (kerbgate hash-secret).
	SecretHash string
	// TokenTTL is how long a one-time ssoToken may be redeemed; 60s by default.
	TokenTTL time.Duration
	// SessionTTL is how long an app session lasts; 8h by default.
	SessionTTL time.Duration
	// AllowedGroups are the groups (SIDs like "S-1-5-21-…", or group names looked up in
	// the directory) whose members may sign in; empty means any signed-in user.
	AllowedGroups []string
	// RequireDirectory makes sign-in require the account to be found, and usable, in
	// the directory. True by default when the file has a directory section.
	RequireDirectory bool
	// Challenge replaces password_signin.challenge for this app; BasicAuth accepts
	// Basic credentials over TLS (both need a password_signin section).
	Challenge Challenge
	BasicAuth bool
}

const (
	defaultCookieName        = "kerbgate_session"
	defaultBrowserSessionTTL = 8 * time.Hour
	minSessionTTL            = time.Minute
	maxSessionTTL            = 30 * 24 * time.Hour
	defaultTokenTTL          = time.Minute
	minTokenTTL              = time.Second
	maxTokenTTL              = 10 * time.Minute
	defaultSessionTTL        = 8 * time.Hour
)

func decodeSSO(m *mapping, c *Config) {
	s := &c.SSO

	s.CookieName = defaultCookieName
	f := m.field("cookie_name", "a cookie name of letters, digits and !#$%&'*+-.^_`|~, like kerbgate_session")
	if v, ok := f.str(); ok {
		if i := strings.IndexFunc(v, func(r rune) bool { return !isTokenChar(r) }); v == "" {
			f.invalid("empty")
		} else if i >= 0 {
			f.invalid("%s contains %q", describe(f.val), v[i:i+1])
		} else {
			s.CookieName = v
		}
	}

	s.BrowserSessionTTL = defaultBrowserSessionTTL
	f = m.field("browser_session_ttl", "a duration from 1m to 720h (30 days), like 8h")
	if v, ok := f.durationIn(minSessionTTL, maxSessionTTL); ok {
		s.BrowserSessionTTL = v
	}

	const appExpect = "an application: a mapping with at least id, redirect_uris and secret_hash"
	f = m.field("apps", "a list of applications, each "+strings.TrimPrefix(appExpect, "an application: "))
	items, _ := f.list(appExpect)
	seen := map[string]string{} // id -> field path of its app
	for _, it := range items {
		// Every item has an App, valid or not, so that Apps[i] is sso.apps[i].
		app := decodeApp(it.mapping(appExpect))
		if app.ID != "" {
			if first, dup := seen[app.ID]; dup {
				it.d.errorAt(it.path+".id", posOf(it.at), "%q is the id of %s too; expected each app id once", app.ID, first)
			} else {
				seen[app.ID] = it.path
			}
		}
		s.Apps = append(s.Apps, app)
	}
}

// isTokenChar reports whether r may appear in an HTTP token (RFC 9110), such as a
// cookie name.
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r < 0x80 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

var appID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func decodeApp(m *mapping) App {
	var app App
	if m.broken {
		return app
	}

	f := m.field("id", "an app id of 1 to 64 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, like demo")
	if f.required() {
		if s, ok := f.str(); ok {
			if !appID.MatchString(s) {
				f.invalid("%s is not an app id", describe(f.val))
			} else {
				app.ID = s
			}
		}
	}

	f = m.field("name", "a display name")
	if s, ok := f.str(); ok {
		if strings.ContainsFunc(s, unicode.IsControl) {
			f.invalid("%s contains control characters", describe(f.val))
		} else {
			app.Name = s
		}
	}

	f = m.field("redirect_uris", "a list of the URIs the browser is sent back to, like https://app.example.com/callback")
	if f.required() {
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
			app.RedirectURIs = append(app.RedirectURIs, u)
		}
	}

	f = m.field("secret_hash", "the client secret's hash as printed by kerbgate hash-secret ($argon2id$… or a bcrypt hash)")
	if f.required() {
		if s, ok := f.str(); ok {
			// The message leaves the value out: it is long, and a mistaken secret
			// pasted here should not end up in logs.
			if err := secret.Check(s); err != nil {
				f.errorf("not a valid secret hash (%v); expected %s", err, f.expect).Err = err
			} else {
				app.SecretHash = s
			}
		}
	}

	app.TokenTTL = defaultTokenTTL
	f = m.field("token_ttl", "a duration from 1s to 10m, like 60s")
	if v, ok := f.durationIn(minTokenTTL, maxTokenTTL); ok {
		app.TokenTTL = v
	}

	app.SessionTTL = defaultSessionTTL
	f = m.field("session_ttl", "a duration from 1m to 720h (30 days), like 8h")
	if v, ok := f.durationIn(minSessionTTL, maxSessionTTL); ok {
		app.SessionTTL = v
	}

	app.AllowedGroups = decodeGroups(m.field("allowed_groups", groupsExpect))

	// The default depends on the directory section: see finishSSO.
	f = m.field("require_directory", "true or false")
	if v, ok := f.bool(); ok {
		app.RequireDirectory = v
	}
	app.Challenge = decodeChallenge(m.field("challenge", "a mapping with default and rules, as password_signin.challenge"))
	f = m.field("basic_auth", "true or false")
	if v, ok := f.bool(); ok {
		app.BasicAuth = v
	}
	return app
}

// checkRedirectURI reports whether s is an acceptable redirect URI, reporting why not.
func checkRedirectURI(f *field, s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		why := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			why = ue.Err.Error()
		}
		f.invalid("%s is not a URL (%s)", describe(f.val), why)
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case !u.IsAbs():
		f.invalid("%s is not an absolute URL", describe(f.val))
	case scheme != "https" && scheme != "http":
		f.invalid("%s has scheme %s", describe(f.val), u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		f.invalid("%s has no host", describe(f.val))
	case u.User != nil:
		f.invalid("%s contains user information", describe(f.val))
	case u.Fragment != "" || strings.Contains(s, "#"):
		f.invalid("%s has a fragment", describe(f.val))
	case u.Port() != "" && !validPort(u.Port()):
		f.invalid("%s has port %q, out of the range 1 to 65535", describe(f.val), u.Port())
	case scheme == "http" && !plainHTTPHost(u.Hostname()):
		f.errorf("%s uses http; use https (plain http is allowed only for localhost, 127.0.0.1, ::1 and host names ending in .test)", describe(f.val))
	default:
		return true
	}
	return false
}

// plainHTTPHost reports whether redirect URIs may use http for host: local or test
// hosts only.
func plainHTTPHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasSuffix(host, ".test")
}

// looksLikeSID reports whether a group is meant as a SID rather than a name.
func looksLikeSID(g string) bool {
	return len(g) >= 4 && strings.EqualFold(g[:4], "S-1-")
}

// checkGroup reports whether g is a valid SID or group name, reporting why not.
func checkGroup(f *field, g string) bool {
	switch {
	case looksLikeSID(g):
		if why := checkSID(g); why != "" {
			f.invalid("%s is not a valid SID (%s)", describe(f.val), why)
			return false
		}
	case strings.TrimSpace(g) == "":
		f.invalid("empty group name")
		return false
	case strings.ContainsFunc(g, unicode.IsControl):
		f.invalid("%s contains control characters", describe(f.val))
		return false
	case strings.TrimSpace(g) != g:
		f.invalid("%s has leading or trailing spaces", describe(f.val))
		return false
	}
	return true
}

// checkSID returns why s is not a SID in its string form S-1-AUTHORITY-SUB…, or "".
func checkSID(s string) string {
	if s[0] != 'S' {
		return fmt.Sprintf("it starts with a lower-case s: %q", "S"+s[1:])
	}
	parts := strings.Split(s, "-")[2:] // after "S", "1"
	if len(parts) < 2 {
		return "it has no sub-authority"
	}
	if len(parts)-1 > 15 {
		return fmt.Sprintf("it has %d sub-authorities, more than 15", len(parts)-1)
	}
	auth := parts[0]
	var err error
	if strings.HasPrefix(auth, "0x") || strings.HasPrefix(auth, "0X") {
		_, err = strconv.ParseUint(auth[2:], 16, 48)
	} else {
		_, err = strconv.ParseUint(auth, 10, 48)
	}
	if err != nil || auth == "" || strings.HasPrefix(auth, "+") {
		return fmt.Sprintf("identifier authority %q is not a number below 2^48", auth)
	}
	for _, sub := range parts[1:] {
		if _, err := strconv.ParseUint(sub, 10, 32); err != nil || sub == "" || strings.HasPrefix(sub, "+") {
			return fmt.Sprintf("sub-authority %q is not a number from 0 to 4294967295", sub)
		}
	}
	return ""
}

// finishSSO applies RequireDirectory's default, which depends on the directory
// section, and checks that apps needing a directory have one.
func finishSSO(d *decoder, c *Config) {
	for i := range c.SSO.Apps {
		app := &c.SSO.Apps[i]
		path := fmt.Sprintf("sso.apps[%d]", i)
		rd := d.values[path+".require_directory"]
		if rd == nil || isNull(deref(rd)) {
			app.RequireDirectory = c.Directory.Enabled
		}
		if c.Directory.Enabled {
			continue
		}
		if app.RequireDirectory {
			d.errorf(posOf(rd), path, "needs directory: require_directory is true but the file has no directory section; expected a directory section, or require_directory: false")
		}
		checkGroupNames(d, path, app.AllowedGroups)
	}
}

// groupsExpect is what an allowed_groups field holds, in sso and proxy apps alike.
const groupsExpect = "a list of groups, each a SID like S-1-5-21-…-1110 or a group name (empty or absent: any signed-in user)"

// decodeGroups reads an app's allowed_groups: SIDs or group names, each once
// (compared without case).
func decodeGroups(f *field) []string {
	var groups []string
	items, _ := f.list("a SID like S-1-5-21-…-1110, or a group name")
	seen := map[string]string{} // lower-case group -> field path of its item
	for _, it := range items {
		if !it.set() {
			it.errorf("empty item; expected %s", it.expect)
			continue
		}
		g, ok := it.str()
		if !ok || !checkGroup(it, g) {
			continue
		}
		key := strings.ToLower(g)
		if first, dup := seen[key]; dup {
			it.errorf("%s is a duplicate of %s (groups compare case-insensitively); expected each group once", describe(it.val), first)
			continue
		}
		seen[key] = it.path
		groups = append(groups, g)
	}
	return groups
}

// checkGroupNames reports each group name of the app at path, when the file has no
// directory section to look names up in (SIDs come with the sign-in).
func checkGroupNames(d *decoder, path string, groups []string) {
	for j := 0; ; j++ {
		gp := fmt.Sprintf("%s.allowed_groups[%d]", path, j)
		n := d.values[gp]
		if n == nil {
			break
		}
		g := deref(n)
		if g.Kind == yaml.ScalarNode && !looksLikeSID(g.Value) && slices.Contains(groups, g.Value) {
			d.errorf(posOf(n), gp, "%s is a group name, and %s needs directory to look it up: the file has no directory section; expected a directory section, or the group's SID like S-1-5-21-…-1110", describe(g), path)
		}
	}
}
