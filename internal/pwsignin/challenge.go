package pwsignin

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"

	"github.com/kerbgate/kerbgate/internal/frontend"
)

// Challenge is how a browser without a session is asked to sign in.
type Challenge int

const (
	// NegotiateForm answers 401 Negotiate with the sign-in form as the page: a
	// browser with a ticket answers the challenge and never shows the page; one
	// without shows the form, with no pop-up.
	NegotiateForm Challenge = iota
	// NegotiateOnly answers 401 Negotiate with the refusal page, as without the
	// password fallback.
	NegotiateOnly
	// FormOnly shows the form without a Negotiate challenge (a Negotiate token the
	// client sends anyway is still accepted).
	FormOnly
)

// String is the challenge as configuration spells it.
func (c Challenge) String() string {
	switch c {
	case NegotiateOnly:
		return "negotiate"
	case FormOnly:
		return "form"
	}
	return "negotiate_form"
}

// ParseChallenge reads a challenge's configuration name.
func ParseChallenge(s string) (Challenge, bool) {
	for _, c := range []Challenge{NegotiateForm, NegotiateOnly, FormOnly} {
		if c.String() == s {
			return c, true
		}
	}
	return 0, false
}

// UserAgent matches a User-Agent header as AD FS's WIASupportedUserAgents entries
// do: a string contained in it (compared without case), or, written "=~regexp", a
// regular expression (RE2) found in it.
type UserAgent struct {
	text string
	re   *regexp.Regexp
}

// ParseUserAgent reads one pattern.
func ParseUserAgent(s string) (UserAgent, error) {
	if expr, ok := strings.CutPrefix(s, "=~"); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return UserAgent{}, fmt.Errorf("%q is not a regular expression: %v", expr, err)
		}
		return UserAgent{text: s, re: re}, nil
	}
	if s == "" {
		return UserAgent{}, fmt.Errorf("empty User-Agent pattern")
	}
	return UserAgent{text: strings.ToLower(s)}, nil
}

// Match reports whether ua matches.
func (u UserAgent) Match(ua string) bool {
	if u.re != nil {
		return u.re.MatchString(ua)
	}
	return strings.Contains(strings.ToLower(ua), u.text)
}

func (u UserAgent) String() string { return u.text }

// Rule chooses a challenge for the requests it matches: from one of Sources (any
// when empty) and with a User-Agent matching one of UserAgents (any when empty).
type Rule struct {
	Sources    []netip.Prefix
	UserAgents []UserAgent
	Challenge  Challenge
}

func (r Rule) match(src netip.Addr, ua string) bool {
	if len(r.Sources) > 0 {
		in := false
		for _, p := range r.Sources {
			if src.IsValid() && p.Contains(src.Unmap()) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if len(r.UserAgents) == 0 {
		return true
	}
	for _, u := range r.UserAgents {
		if u.Match(ua) {
			return true
		}
	}
	return false
}

// Rules choose the challenge: the first rule that matches, else Default.
type Rules struct {
	Rules   []Rule
	Default Challenge
}

// For returns the challenge for r, judged on the client's address as the front end
// sees it (behind listen.trusted_proxies, the X-Forwarded-For client) and its
// User-Agent.
func (rs Rules) For(r *http.Request) Challenge {
	src := frontend.From(r).Client
	ua := r.UserAgent()
	for _, rule := range rs.Rules {
		if rule.match(src, ua) {
			return rule.Challenge
		}
	}
	return rs.Default
}

// DefaultRules are the rules when the configuration gives none: phones and tablets,
// which hold no Kerberos ticket, get the form at once; every other client gets
// Negotiate with the form in its 401 page. docs/password-fallback.md compares them
// with AD FS's WIASupportedUserAgents.
func DefaultRules() Rules {
	mobile := []UserAgent{}
	for _, s := range []string{"iPhone", "iPad", "Android", "Windows Phone"} {
		u, _ := ParseUserAgent(s)
		mobile = append(mobile, u)
	}
	return Rules{Rules: []Rule{{UserAgents: mobile, Challenge: FormOnly}}, Default: NegotiateForm}
}

// Browser reports whether a User-Agent is a browser's (they all start "Mozilla/"):
// a browser must never see a Basic challenge, which it shows as a pop-up.
func Browser(ua string) bool { return strings.HasPrefix(ua, "Mozilla/") }
