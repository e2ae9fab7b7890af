// Package idheaders turns a signed-in identity into the request headers an
// application behind a reverse proxy reads (header-based SSO): the user, e-mail,
// group names and SID in headers named like oauth2-proxy's (X-Auth-Request-User,
// -Email, -Groups, -Sid), or a per-app mapping of claims to header names, and a
// signed identity assertion (a JWT) that the application verifies against the
// OpenID Provider's JWKS instead of trusting the network.
//
// It owns the claim names, the default header names, the form of each value, the
// stripping of client-sent headers of the same names and the assertion's claims. The
// forward-auth face and the application proxy both use it, so one mapping means the
// same everywhere. It must not read configuration, decide who may go on, or know
// which proxy carries the headers.
package idheaders

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

// Claim is an attribute of the identity a header can carry.
type Claim int

const (
	// User is the account name (sAMAccountName; else the principal's name).
	User Claim = iota
	// UPN is the userPrincipalName.
	UPN
	// Email is the directory's mail attribute.
	Email
	// Name is the display name.
	Name
	// SID is the user's security identifier.
	SID
	// Groups are the user's group names, filtered (signin.GroupFilter), comma
	// separated. Names come from the directory: without one there are none.
	Groups
	// GroupSIDs are the user's group SIDs, comma separated.
	GroupSIDs
)

// claimNames are the claims as configuration files spell them.
var claimNames = map[Claim]string{User: "user", UPN: "upn", Email: "email", Name: "name", SID: "sid", Groups: "groups", GroupSIDs: "group_sids"}

func (c Claim) String() string { return claimNames[c] }

// ParseClaim returns the claim named s.
func ParseClaim(s string) (Claim, bool) {
	for c, n := range claimNames {
		if n == s {
			return c, true
		}
	}
	return 0, false
}

// ClaimNames lists the claims' names, for messages.
func ClaimNames() []string {
	return []string{"user", "upn", "email", "name", "sid", "groups", "group_sids"}
}

// Mapping sends one claim in one header.
type Mapping struct {
	Claim  Claim
	Header string
}

// Defaults are the headers sent when an app maps none, named as oauth2-proxy names
// them.
func Defaults() []Mapping {
	return []Mapping{
		{User, "X-Auth-Request-User"},
		{Email, "X-Auth-Request-Email"},
		{Groups, "X-Auth-Request-Groups"},
		{SID, "X-Auth-Request-Sid"},
		{UPN, "X-Auth-Request-Preferred-Username"},
	}
}

// OverageSuffix is added to the groups header's name for the header that says the
// user has more group names than the app's cap: the groups header is then absent and
// "<groups header>-Overage: true" is sent (as Entra ID signals a group overage).
const OverageSuffix = "-Overage"

// DefaultAssertionHeader is the assertion's header when an app names none.
const DefaultAssertionHeader = "X-Auth-Request-Assertion"

// MaxAssertionTTL is the longest an assertion lives.
const MaxAssertionTTL = 5 * time.Minute

// Assertion is the signed identity assertion: a JWT signed with the OpenID
// Provider's keys, its iss the provider's issuer, so its sub is the account's sub at
// the provider.
//
// Signing is most of a request's cost on the forward-auth hot path (an ES256
// signature is tens of microseconds, the rest of the request a few), so a node
// reuses an assertion for the same claims (user, groups, audience: everything but
// iat and exp) while it has at least half its lifetime left: an application may see
// an iat up to TTL/2 old, never an expired token, and never another user's claims.
type Assertion struct {
	Header string
	TTL    time.Duration // at most MaxAssertionTTL
	Issuer string
	Keys   *signingkeys.Set

	canonical string // Header, canonical (Prepare)

	mu     sync.Mutex
	signed map[assertionKey]signedAssertion
}

// assertionKey is what a reused assertion must match: its audience, and the rest
// of its claims but iat and exp, as JSON.
type assertionKey struct{ audience, claims string }

type signedAssertion struct {
	value []string // the token, as a header value
	iat   time.Time
}

// maxCachedAssertions bounds the reuse cache; when full it is emptied.
const maxCachedAssertions = 50_000

// Policy is what one app's requests carry.
type Policy struct {
	// Headers map claims to header names; nil sends none (only the assertion, if any).
	Headers []Mapping
	// Groups selects the group names sent (header and assertion).
	Groups signin.GroupFilter
	// Assertion is the JWT; nil sends none.
	Assertion *Assertion
	// Now is the assertion's clock; nil: time.Now.
	Now func() time.Time

	strip []string // canonical names of every header Strip removes
}

// Prepare checks p and fixes the set of headers it strips: the defaults, each
// mapped header, the overage header of each, and the assertion's. It must be called
// once before Strip and Set.
func (p *Policy) Prepare() error {
	if p.Assertion != nil {
		a := p.Assertion
		if a.Keys == nil || a.Issuer == "" {
			return errors.New("idheaders: an assertion needs signing keys and an issuer")
		}
		if a.TTL <= 0 || a.TTL > MaxAssertionTTL {
			return fmt.Errorf("idheaders: assertion ttl %v; expected up to %v", a.TTL, MaxAssertionTTL)
		}
		if a.Header == "" {
			a.Header = DefaultAssertionHeader
		}
		a.canonical = http.CanonicalHeaderKey(a.Header)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	seen := map[string]bool{}
	add := func(h string) {
		h = http.CanonicalHeaderKey(h)
		if !seen[h] {
			seen[h] = true
			p.strip = append(p.strip, h)
		}
	}
	for _, m := range append(Defaults(), p.Headers...) {
		if m.Header == "" {
			return fmt.Errorf("idheaders: claim %s has no header name", m.Claim)
		}
		add(m.Header)
		if m.Claim == Groups {
			add(m.Header + OverageSuffix)
		}
	}
	add(DefaultAssertionHeader)
	if p.Assertion != nil {
		add(p.Assertion.Header)
	}
	return nil
}

// Names returns the headers Strip removes and Set may write, canonical.
func (p *Policy) Names() []string { return append([]string(nil), p.strip...) }

// Strip removes every header of h that Set could write, so that a client's forged
// X-Auth-Request-User never reaches the application, whatever the app's mapping.
func (p *Policy) Strip(h http.Header) {
	for _, n := range p.strip {
		delete(h, n)
	}
}

// Set writes id's headers for an application at host audience into h: each mapped
// claim the identity has (an absent one is not sent), and the assertion. A header
// Set writes replaces any of the same name. Set does not strip: call Strip first
// where h came from a client.
func (p *Policy) Set(h http.Header, id *identity.Identity, audience string) error {
	return p.Render(id).Set(h, audience)
}

// Rendered is one identity's headers under one policy, worked out once — the group
// filter applied, the values joined and cleaned, the assertion's claims encoded —
// and set on many answers: forward-auth keeps it beside the session in the node's
// cache, so a request with a cookie does not filter 130 group names again.
type Rendered struct {
	p       *Policy
	headers []renderedHeader
	claims  Claims // the assertion's, without aud, iat and exp
	key     string // claims as JSON: the assertion cache's key
	err     error  // why there can be no assertion
}

type renderedHeader struct {
	name  string   // canonical
	value []string // one value; shared by every answer Set writes it into
}

// Render works out id's headers under p.
func (p *Policy) Render(id *identity.Identity) *Rendered {
	rd := &Rendered{p: p}
	names, overage := p.Groups.Apply(id.GroupNames)
	for _, m := range p.Headers {
		if m.Claim == Groups && overage {
			rd.add(m.Header+OverageSuffix, "true")
			continue
		}
		if v := clean(value(m.Claim, id, names)); v != "" {
			rd.add(m.Header, v)
		}
	}
	a := p.Assertion
	if a == nil {
		return rd
	}
	if id.SID == "" {
		rd.err = reason.New(reason.Internal, "the account has no SID to derive the assertion's subject from", "user", id.Principal)
		return rd
	}
	rd.claims = Claims{
		Issuer: a.Issuer, Subject: signingkeys.Subject(a.Issuer, id.SID),
		User: userName(id), UPN: id.UPN, Email: id.Mail, Name: id.DisplayName, Groups: names, GroupsOverage: overage,
	}
	key, err := json.Marshal(rd.claims)
	if err != nil {
		rd.err = reason.New(reason.Internal, "cannot encode the identity assertion", "error", err.Error())
		return rd
	}
	rd.key = string(key)
	return rd
}

func (rd *Rendered) add(name, v string) {
	name = http.CanonicalHeaderKey(name)
	for i := range rd.headers {
		if rd.headers[i].name == name { // a later mapping to the same header wins, as with Header.Set
			rd.headers[i].value = []string{v}
			return
		}
	}
	rd.headers = append(rd.headers, renderedHeader{name: name, value: []string{v}})
}

// Set writes the rendered headers and, with an assertion, a token for audience into
// h, replacing any of the same names. The values are shared by every answer they
// are written into: h's values must be replaced, never changed in place (net/http
// only reads them).
func (rd *Rendered) Set(h http.Header, audience string) error {
	for _, hd := range rd.headers {
		h[hd.name] = hd.value
	}
	a := rd.p.Assertion
	if a == nil {
		return nil
	}
	if rd.err != nil {
		return rd.err
	}
	tok, err := rd.p.assertion(rd, audience)
	if err != nil {
		return err
	}
	h[a.canonical] = tok
	return nil
}

// Claims are the assertion's claims.
type Claims struct {
	Issuer   string   `json:"iss"`
	Audience string   `json:"aud"`
	Subject  string   `json:"sub"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	User     string   `json:"preferred_username,omitempty"`
	UPN      string   `json:"upn,omitempty"`
	Email    string   `json:"email,omitempty"`
	Name     string   `json:"name,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	// GroupsOverage is true when the user has more group names than the app's cap:
	// groups is then absent.
	GroupsOverage bool `json:"groups_overage,omitempty"`
}

// assertion returns the token of rd's claims for audience, as a header value: the
// one signed before while it has half its lifetime left, else a new one.
func (p *Policy) assertion(rd *Rendered, audience string) ([]string, error) {
	a := p.Assertion
	now := p.Now()
	key := assertionKey{audience: audience, claims: rd.key}
	a.mu.Lock()
	prev, ok := a.signed[key]
	a.mu.Unlock()
	if ok && !now.Before(prev.iat) && now.Sub(prev.iat) <= a.TTL/2 {
		return prev.value, nil
	}
	c := rd.claims
	c.Audience, c.IssuedAt, c.Expiry = audience, now.Unix(), now.Add(a.TTL).Unix()
	tok, err := a.Keys.Sign(c)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot sign the identity assertion", "error", err.Error())
	}
	signed := signedAssertion{value: []string{tok}, iat: time.Unix(c.IssuedAt, 0)}
	a.mu.Lock()
	if a.signed == nil || len(a.signed) >= maxCachedAssertions {
		a.signed = map[assertionKey]signedAssertion{}
	}
	a.signed[key] = signed
	a.mu.Unlock()
	return signed.value, nil
}

func value(c Claim, id *identity.Identity, groups []string) string {
	switch c {
	case User:
		return userName(id)
	case UPN:
		return id.UPN
	case Email:
		return id.Mail
	case Name:
		return id.DisplayName
	case SID:
		return id.SID
	case Groups:
		return strings.Join(groups, ",")
	case GroupSIDs:
		return strings.Join(id.Groups, ",")
	}
	return ""
}

// userName is the account name: sAMAccountName, else the principal's name part.
func userName(id *identity.Identity) string {
	if id.SAMAccountName != "" {
		return id.SAMAccountName
	}
	name, _, _ := strings.Cut(id.Principal, "@")
	return name
}

// clean drops control characters: a header value is one line.
func clean(v string) string {
	if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}
