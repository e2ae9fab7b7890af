package oidcprovider

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
)

// An access token kerbgate issues is self-contained: it carries, sealed by
// tokenCrypto (XChaCha20-Poly1305 under the farm's key), everything userinfo and
// introspection answer — the client, the times, the refresh family and the sign-in
// it belongs to, the scopes granted, and the account's claims — so that answering it reads the store
// only for whether it is still alive: not revoked at /revoke (a revocation record
// written then, keyed by the token's id), not of a sign-in ended by end_session
// (the ended-record of its handle), not of a revoked refresh family (the family's
// record). Those few records are read in one store operation (store.GetSessions:
// one Redis round trip), on every use, on whatever node: no node keeps an answer
// for later.
//
// Claims that do not fit a token (the group claims, which run to kilobytes, and a
// claim longer than maxClaimLen) are kept in a store record of the token's own
// instead (claimsPrefix), read in the same operation; the token then carries no
// claims.
//
// The token id the protocol library seals is accessTokenMark followed by the
// claims, base64url: the library seals "ID:SUBJECT", and neither holds a ':'. Ids
// of the record-keyed access tokens of kerbgate before (43 base64url characters,
// their record holding the identity) have no mark; they are still answered, from
// their record, until they expire.

// accessTokenMark starts a self-contained access token's id: a character outside
// base64url, so that no record id, code id or refresh token (FAMILY.RANDOM) reads as
// one.
const accessTokenMark = "~"

// accessClaimsVersion is the first byte of the encoded claims. Version 2 adds the
// granted scopes (bits of the flags byte); a token of version 1 (kerbgate before)
// is still read, its grant unknown.
const (
	accessClaimsVersion   = 2
	accessClaimsVersionV1 = 1
)

// grantScopes are the scopes a grant can hold (the ones a client may be
// configured with), each a bit of the flags byte from bit 1 on: userinfo and
// introspection answer the claims of the scopes granted (OIDC Core §5.4), not of
// every scope the client may ask for.
var grantScopes = [...]string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, ScopeGroups}

// scopeSets are the scope lists of every combination of grantScopes' bits, made
// once so that reading a token allocates none.
var scopeSets = func() (sets [1 << len(grantScopes)][]string) {
	for m := range sets {
		sets[m] = []string{}
		for i, sc := range grantScopes {
			if m&(1<<i) != 0 {
				sets[m] = append(sets[m], sc)
			}
		}
	}
	return sets
}()

// scopeBits is the bits of scopes in grantScopes (others are dropped: no client
// can be granted one).
func scopeBits(scopes []string) byte {
	var m byte
	for i, sc := range grantScopes {
		if slices.Contains(scopes, sc) {
			m |= 1 << i
		}
	}
	return m
}

// maxClaimLen bounds each claim a token carries (longer: the claims go to the
// store record), so that a token stays ~2 KiB at most in an Authorization header.
const maxClaimLen = 256

// Store records of self-contained access tokens, keyed by the token's id: its
// revocation (written by /revoke, kept until the token expires) and, for a token
// whose claims do not fit, its claims.
const (
	revokedPrefix = "oidc-revoked."
	revokedApp    = "oidc-revoked"
	claimsPrefix  = "oidc-claims."
	claimsApp     = "oidc-claims:" // + the client id
)

// accessClaims is what a self-contained access token carries.
type accessClaims struct {
	// id is 16 random bytes: the key of the token's revocation record (and of its
	// claims record).
	id      [16]byte
	client  string
	family  string // the refresh family, "" without offline_access
	handle  string // the sign-in it was issued in (the ID token's sid)
	issued  time.Time
	expires time.Time
	// inStore: the claims are in the token's claims record, not in the token.
	inStore bool
	// scopes are the scopes granted (in grantScopes' order); nil for a token of
	// version 1, which did not carry them.
	scopes []string
	// The account's claims: principal (the Kerberos principal, for the log and
	// preferred_username without a UPN), upn, name (displayName), mail.
	principal, upn, name, mail string
}

// newAccessClaims returns the claims of a token issued at now to client for who,
// granted scopes, with a fresh id from rand. inStore is set when who's claims do
// not fit (the grant includes the group claims and who has groups).
func newAccessClaims(rand io.Reader, client, family, handle string, now, expires time.Time, who *identity.Identity, scopes []string) (*accessClaims, error) {
	c := &accessClaims{client: client, family: family, handle: handle, issued: now, expires: expires, scopes: scopeSets[scopeBits(scopes)]}
	withGroups := slices.Contains(c.scopes, ScopeGroups)
	if _, err := io.ReadFull(rand, c.id[:]); err != nil {
		return nil, err
	}
	if withGroups && len(who.Groups) > 0 || len(who.Principal) > maxClaimLen || len(who.UPN) > maxClaimLen ||
		len(who.DisplayName) > maxClaimLen || len(who.Mail) > maxClaimLen {
		c.inStore = true
		if len(who.Principal) <= maxClaimLen {
			c.principal = who.Principal // for the log, at revocation
		}
		return c, nil
	}
	c.principal, c.upn, c.name, c.mail = who.Principal, who.UPN, who.DisplayName, who.Mail
	return c, nil
}

// key is the token's id as the store keys its records.
func (c *accessClaims) key() string { return base64.RawURLEncoding.EncodeToString(c.id[:]) }

// identity is the account as the token's claims have it.
func (c *accessClaims) identity() identity.Identity {
	return identity.Identity{Principal: c.principal, UPN: c.upn, DisplayName: c.name, Mail: c.mail}
}

// tokenID is the id the protocol library seals (with the subject) into the token.
func (c *accessClaims) tokenID() string {
	b := make([]byte, 0, 64+len(c.client)+len(c.family)+len(c.handle)+len(c.principal)+len(c.upn)+len(c.name)+len(c.mail))
	b = append(b, accessClaimsVersion)
	b = binary.AppendUvarint(b, uint64(max(c.issued.Unix(), 0)))
	b = binary.AppendUvarint(b, uint64(max(c.expires.Unix()-c.issued.Unix(), 0)))
	flags := scopeBits(c.scopes) << 1
	if c.inStore {
		flags |= 1
	}
	b = append(b, flags)
	b = append(b, c.id[:]...)
	for _, s := range []string{c.client, c.family, c.handle, c.principal, c.upn, c.name, c.mail} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return accessTokenMark + base64.RawURLEncoding.EncodeToString(b)
}

var errAccessClaims = errors.New("oidcprovider: not a self-contained access token")

// isAccessClaims reports whether a token id is a self-contained token's.
func isAccessClaims(tokenID string) bool { return strings.HasPrefix(tokenID, accessTokenMark) }

// parseAccessClaims reads a self-contained token's id. Its content is only as
// trustworthy as where it came from: the token's seal (tokenCrypto), never a
// string a client sent.
func parseAccessClaims(tokenID string) (*accessClaims, error) {
	enc, ok := strings.CutPrefix(tokenID, accessTokenMark)
	if !ok || len(enc) > maxSealed {
		return nil, errAccessClaims
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(raw) < 1 || raw[0] != accessClaimsVersion && raw[0] != accessClaimsVersionV1 {
		return nil, errAccessClaims
	}
	all := string(raw) // one string: the claims are its substrings
	i := 1
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(raw[i:])
		if n <= 0 {
			return 0, false
		}
		i += n
		return v, true
	}
	issued, ok1 := uvarint()
	ttl, ok2 := uvarint()
	if !ok1 || !ok2 || issued > 1<<40 || ttl > 1<<32 || len(raw)-i < 1+16 {
		return nil, errAccessClaims
	}
	flags := raw[i]
	c := &accessClaims{issued: time.Unix(int64(issued), 0), expires: time.Unix(int64(issued+ttl), 0), inStore: flags&1 != 0}
	switch {
	case raw[0] == accessClaimsVersionV1 && flags&^1 == 0:
	case raw[0] == accessClaimsVersion && int(flags>>1) < len(scopeSets):
		c.scopes = scopeSets[flags>>1]
	default:
		return nil, errAccessClaims
	}
	copy(c.id[:], raw[i+1:i+17])
	i += 17
	for _, s := range []*string{&c.client, &c.family, &c.handle, &c.principal, &c.upn, &c.name, &c.mail} {
		n, ok := uvarint()
		if !ok || n > uint64(len(raw)-i) {
			return nil, errAccessClaims
		}
		*s = all[i : i+int(n)]
		i += int(n)
	}
	if i != len(raw) || c.client == "" {
		return nil, errAccessClaims
	}
	return c, nil
}
