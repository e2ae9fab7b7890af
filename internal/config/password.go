package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PasswordSignIn is the optional password_signin section: the fallback sign-in for
// clients without a Kerberos ticket (a form in the 401 page, and Basic for programs
// where an app allows it), checked with a Kerberos AS exchange, with smart lockout
// (see docs/password-fallback.md).
type PasswordSignIn struct {
	// Enabled says whether the file has the section.
	Enabled bool
	// Principal and Keytab are kerbgate's own account and its keys: its TGT armours
	// the users' exchanges (FAST). proxy.delegation's by default.
	Principal, Keytab string
	// KDCs are host:port addresses; proxy.delegation.kdcs by default, else the
	// directory's host on port 88.
	KDCs []string
	// SPN is the service the users' tickets are asked for; kerberos.spns[0] by
	// default, and one of kerberos.spns.
	SPN string
	// FAST is "auto" (armour when the KDC offers it, the default) or "required".
	FAST string
	// Challenge is the listener's challenge rules.
	Challenge Challenge
	// NetBIOSDomain is the domain's NetBIOS name for DOMAIN\NAME; the realm's first
	// label by default.
	NetBIOSDomain string
	// UPNSuffixes are the UPN suffixes accepted besides the realm's DNS name.
	UPNSuffixes []string
	// PasswordChangeURL is linked from the form when a password expired.
	PasswordChangeURL string
	Lockout           PasswordLockout
	// RateBurst and RateRefill limit attempts per source address on each node.
	RateBurst  int
	RateRefill time.Duration
	// MaxConcurrent bounds the checks at the KDC at once; 0: the default.
	MaxConcurrent int
	// MinAnswerTime is the least time a failed check takes.
	MinAnswerTime time.Duration
}

// Challenge is a challenge section: the default and the rules before it.
type Challenge struct {
	// Set says whether the file gives one (else the built-in default rules apply).
	Set     bool
	Default string
	Rules   []ChallengeRule
}

// ChallengeRule is one rule: requests from one of Sources (any when empty) with a
// User-Agent matching one of UserAgents (any when empty) get Challenge.
type ChallengeRule struct {
	Sources    []netip.Prefix
	UserAgents []string
	Challenge  string
}

// PasswordLockout is password_signin.lockout.
type PasswordLockout struct {
	UnfamiliarThreshold, FamiliarThreshold int
	// DomainThreshold stands in for the domain's lockoutThreshold without a
	// directory (required then); -1 when absent.
	DomainThreshold int
	Window          time.Duration
	Backoff         time.Duration
	MaxBackoff      time.Duration
	SourceThreshold int
	FamiliarFor     time.Duration
}

var challenges = []string{"negotiate_form", "negotiate", "form"}

const challengeExpect = "negotiate_form (Negotiate, with the form in the 401 page), negotiate (Negotiate only) or form (the form only)"

func decodePasswordSignIn(m *mapping, c *Config) {
	p := &c.PasswordSignIn
	if m.broken || len(m.order) == 0 {
		return
	}
	p.Enabled = true
	p.Lockout.DomainThreshold = -1
	f := m.field("principal", "kerbgate's own account, like svc-gw (in kerberos.realm); proxy.delegation.principal by default")
	if s, ok := f.str(); ok {
		if s == "" || strings.ContainsAny(s, "@/ ") {
			f.invalid("%s is not an account name (no realm, no service/host)", describe(f.val))
		} else {
			p.Principal = s
		}
	}
	f = m.field("keytab", "a keytab with the keys of password_signin.principal; proxy.delegation.keytab by default")
	if s, ok := f.str(); ok {
		abs, shown := resolvedPath(f, s)
		if checkReadable(f, abs, shown, f.expect) {
			p.Keytab = abs
		}
	}
	f = m.field("kdcs", "a list of KDC addresses host:port, like dc1.example.test:88")
	addrs, items := f.strings(f.expect)
	for i, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			items[i].invalid("%s is not host:port", describe(items[i].val))
			continue
		}
		p.KDCs = append(p.KDCs, a)
	}
	f = m.field("spn", `the service principal name users' tickets are asked for, one of kerberos.spns, like "HTTP/sso.example.test"`)
	if s, ok := f.str(); ok {
		p.SPN = s
	}
	p.FAST = "auto"
	f = m.field("fast", "auto (armour the exchange whenever the KDC offers FAST) or required")
	if s, ok := f.str(); ok {
		if s != "auto" && s != "required" {
			f.invalid("%s", describe(f.val))
		} else {
			p.FAST = s
		}
	}
	p.Challenge = decodeChallenge(m.field("challenge", "a mapping with default and rules"))
	f = m.field("netbios_domain", "the domain's NetBIOS name, like EXAMPLE")
	if s, ok := f.str(); ok {
		if s == "" || strings.ContainsAny(s, `\@/ .`) {
			f.invalid("%s is not a NetBIOS domain name", describe(f.val))
		} else {
			p.NetBIOSDomain = s
		}
	}
	f = m.field("upn_suffixes", "a list of UPN suffixes users sign in with besides the realm's DNS name, like example.com")
	suffixes, items := f.strings("a DNS name like example.com")
	for i, s := range suffixes {
		if s == "" || strings.ContainsAny(s, "@/\\ ") || strings.HasPrefix(s, ".") {
			items[i].invalid("%s is not a DNS name", describe(items[i].val))
			continue
		}
		p.UPNSuffixes = append(p.UPNSuffixes, strings.ToLower(s))
	}
	f = m.field("password_change_url", "the https URL of your organisation's password-change page")
	if s, ok := f.str(); ok {
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() || u.Hostname() == "" || (u.Scheme != "https" && !(u.Scheme == "http" && plainHTTPHost(u.Hostname()))) {
			f.invalid("%s is not an https URL", describe(f.val))
		} else {
			p.PasswordChangeURL = s
		}
	}
	decodePasswordLockout(m.section("lockout"), &p.Lockout)
	f = m.field("rate_burst", "the attempts one source address may make in a row on a node, 1 to 10000")
	if v, ok := f.intIn(1, 10000); ok {
		p.RateBurst = v
	}
	f = m.field("rate_refill", "how often a source earns one more attempt, a duration from 10ms to 1h, like 1s")
	if v, ok := f.durationIn(10*time.Millisecond, time.Hour); ok {
		p.RateRefill = v
	}
	f = m.field("max_concurrent", "the most password checks at the KDC at once, 1 to 10000")
	if v, ok := f.intIn(1, 10000); ok {
		p.MaxConcurrent = v
	}
	f = m.field("min_answer_time", "the least time a failed check takes, a duration from 0 to 5s, like 300ms")
	if v, ok := f.durationIn(0, 5*time.Second); ok {
		p.MinAnswerTime = v
	}
}

func decodePasswordLockout(m *mapping, l *PasswordLockout) {
	if m.broken {
		return
	}
	f := m.field("unfamiliar_threshold", "failures an account may have from unfamiliar sources, 1 to 1000 (absent: derived from the domain's lockoutThreshold)")
	if v, ok := f.intIn(1, 1000); ok {
		l.UnfamiliarThreshold = v
	}
	f = m.field("familiar_threshold", "failures an account may have from familiar sources, 1 to 1000 (absent: derived from the domain's lockoutThreshold)")
	if v, ok := f.intIn(1, 1000); ok {
		l.FamiliarThreshold = v
	}
	f = m.field("domain_threshold", "the domain's lockoutThreshold, 0 (none) to 1000: required without a directory section, which kerbgate reads it from")
	if v, ok := f.intIn(0, 1000); ok {
		l.DomainThreshold = v
	}
	f = m.field("window", "how long a failure counts, a duration from 1m to 24h (at least the domain's observation window)")
	if v, ok := f.durationIn(time.Minute, 24*time.Hour); ok {
		l.Window = v
	}
	f = m.field("backoff", "the wait after a first failure, a duration from 0 to 1m, like 1s")
	if v, ok := f.durationIn(0, time.Minute); ok {
		l.Backoff = v
	}
	f = m.field("max_backoff", "the longest back-off, a duration from 1s to 1h, like 1m")
	if v, ok := f.durationIn(time.Second, time.Hour); ok {
		l.MaxBackoff = v
	}
	f = m.field("source_threshold", "failures one source address may have for accounts it is not familiar to, 1 to 100000")
	if v, ok := f.intIn(1, 100000); ok {
		l.SourceThreshold = v
	}
	f = m.field("familiar_for", "how long a source stays familiar after a successful sign-in, a duration from 1h to 8760h, like 720h")
	if v, ok := f.durationIn(time.Hour, 365*24*time.Hour); ok {
		l.FamiliarFor = v
	}
}

// decodeChallenge reads a challenge mapping (password_signin.challenge, or an app's).
func decodeChallenge(f *field) Challenge {
	var c Challenge
	if !f.set() {
		return c
	}
	if f.val.Kind != yaml.MappingNode {
		f.wrongType()
		return c
	}
	m := f.mapping(f.expect)
	c.Set, c.Default = true, "negotiate_form"
	df := m.field("default", challengeExpect)
	if s, ok := df.str(); ok {
		if !slices.Contains(challenges, s) {
			df.invalid("%s", describe(df.val))
		} else {
			c.Default = s
		}
	}
	rf := m.field("rules", "a list of rules, each a mapping with sources and/or user_agents, and challenge")
	items, _ := rf.list("a rule: a mapping with sources and/or user_agents, and challenge")
	for _, it := range items {
		rm := it.mapping(it.expect)
		var r ChallengeRule
		sf := rm.field("sources", `a list of CIDRs or addresses, like "10.0.0.0/8"`)
		srcs, sitems := sf.strings(`a CIDR like "10.0.0.0/8", or one address`)
		for i, s := range srcs {
			if p, ok := parseTrustedProxy(sitems[i], s); ok {
				r.Sources = append(r.Sources, p)
			}
		}
		uf := rm.field("user_agents", `a list of User-Agent patterns as AD FS's WIASupportedUserAgents writes them: text the header contains, like "Windows NT", or "=~" and a regular expression, like "=~Windows\s*NT.*Edge"`)
		uas, uitems := uf.strings("a User-Agent pattern")
		for i, s := range uas {
			if expr, ok := strings.CutPrefix(s, "=~"); ok {
				if len(expr) > 512 {
					uitems[i].invalid("a regular expression of %d characters, more than 512", len(expr))
					continue
				}
				if _, err := regexp.Compile(expr); err != nil {
					uitems[i].invalid("%s is not a regular expression (%v)", describe(uitems[i].val), err)
					continue
				}
			}
			r.UserAgents = append(r.UserAgents, s)
		}
		cf := rm.field("challenge", challengeExpect)
		if cf.required() {
			if s, ok := cf.str(); ok {
				if !slices.Contains(challenges, s) {
					cf.invalid("%s", describe(cf.val))
				} else {
					r.Challenge = s
				}
			}
		}
		c.Rules = append(c.Rules, r)
	}
	return c
}

// finishPasswordSignIn applies the defaults that come from other sections and
// checks the apps' password settings.
func finishPasswordSignIn(d *decoder, c *Config) {
	p := &c.PasswordSignIn
	for i, a := range c.SSO.Apps {
		if !p.Enabled && (a.Challenge.Set || a.BasicAuth) {
			d.errorAt(fmt.Sprintf("sso.apps[%d]", i), top, "sets challenge or basic_auth, but the file has no password_signin section; expected a password_signin section")
		}
	}
	for i, a := range c.Proxy.Apps {
		switch {
		case !p.Enabled && (a.Challenge.Set || a.BasicAuth):
			d.errorAt(fmt.Sprintf("proxy.apps[%d]", i), top, "sets challenge or basic_auth, but the file has no password_signin section; expected a password_signin section")
		case a.PreAuth != "iwa" && (a.Challenge.Set || a.BasicAuth):
			d.errorAt(fmt.Sprintf("proxy.apps[%d].pre_auth", i), top, "is %s, and challenge and basic_auth apply to pre_auth iwa only", a.PreAuth)
		}
	}
	if !p.Enabled {
		return
	}
	at := d.values["password_signin"]
	pos := top
	if at != nil {
		pos = posOf(at)
	}
	dl := c.Proxy.Delegation
	if p.Principal == "" {
		p.Principal = dl.Principal
	}
	if p.Keytab == "" {
		p.Keytab = dl.Keytab
	}
	if len(p.KDCs) == 0 {
		p.KDCs = dl.KDCs
	}
	if len(p.KDCs) == 0 && c.Directory.Enabled {
		if u, err := url.Parse(c.Directory.URL); err == nil && u.Hostname() != "" {
			p.KDCs = []string{net.JoinHostPort(u.Hostname(), "88")}
		}
	}
	if p.Principal == "" || p.Keytab == "" {
		d.errorf(pos, "password_signin", "has no principal and keytab, and there is no proxy.delegation to take them from; expected principal and keytab (kerbgate's own account, whose TGT armours the users' exchanges)")
	}
	if len(p.KDCs) == 0 && d.values["password_signin.kdcs"] == nil {
		d.errorf(pos, "password_signin.kdcs", "missing, and neither proxy.delegation.kdcs nor a directory section gives the KDCs; expected a list of host:port")
	}
	if p.SPN == "" && len(c.Kerberos.SPNs) > 0 {
		p.SPN = c.Kerberos.SPNs[0]
	}
	if p.SPN != "" && len(c.Kerberos.SPNs) > 0 && !slices.ContainsFunc(c.Kerberos.SPNs, func(s string) bool { return strings.EqualFold(s, p.SPN) }) {
		d.errorAt("password_signin.spn", pos, "%q is not one of kerberos.spns; expected an SPN kerbgate accepts (the users' tickets are verified like a browser's)", p.SPN)
	}
	if !c.Directory.Enabled && p.Lockout.DomainThreshold < 0 {
		d.errorf(pos, "password_signin.lockout.domain_threshold", "missing; without a directory section kerbgate cannot read the domain's lockoutThreshold, so give it (0 if the domain has none)")
	}
}
