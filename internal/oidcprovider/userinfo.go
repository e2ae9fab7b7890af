package oidcprovider

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// userinfo is the userinfo endpoint (OIDC Core §5.3), which kerbgate serves itself
// rather than through the protocol library: the library's handler parses the
// request and writes the claims at a cost several times that of the rest of the
// answer (its JSON is written, read back into a map and written again), and
// answered refusals against RFC 6750 (a plain-text 401, a 403). The answer is the
// library's, byte for byte in meaning:
//
//   - the access token from the Authorization header's Bearer scheme (any case),
//     else from the form (access_token, in the query or a POST body: RFC 6750
//     §2.2–2.3); the library's CORS (p.cors) wraps the endpoint as it wraps the
//     library's;
//   - 200 with the claims as JSON (Content-Type application/json): sub, and the
//     claims of the scopes the token was granted (liveToken.userinfoScopes; fill,
//     which ID tokens use too);
//   - a missing token: 401 with WWW-Authenticate: Bearer realm="kerbgate"; an
//     unreadable or dead one: the same with error="invalid_token" (RFC 6750 §3),
//     Cache-Control: no-store; the refusal noted with its reason.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	token, presented := bearerToken(r)
	ri := &requestInfo{log: p.opts.Log}
	t, subject, e := p.userinfoToken(r.Context(), ri, token, presented)
	if e != nil {
		p.refused(r, ri, e, "stage", "userinfo")
		challenge := `Bearer realm="kerbgate"`
		if presented {
			challenge += `, error="invalid_token"`
		}
		h := w.Header()
		h.Set("WWW-Authenticate", challenge)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c := p.clients[t.client]
	bp := userinfoBuffers.Get().(*[]byte)
	b := p.appendUserinfo((*bp)[:0], subject, &t.who, t.userinfoScopes(c), c)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // a few very large answers do not stay pinned
		*bp = b
		userinfoBuffers.Put(bp)
	}
}

var userinfoBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// bearerToken is the request's access token and whether it presented one: the
// Authorization header's Bearer credentials, else the form's access_token (the
// query, or a POST body the caller bounded). A header of another scheme counts as
// presented (RFC 6750 §3: the client tried to authenticate).
func bearerToken(r *http.Request) (string, bool) {
	const scheme = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
		return h[len(scheme):], true
	}
	if r.ParseForm() == nil {
		if t := r.Form.Get("access_token"); t != "" {
			return t, true
		}
	}
	return "", h != ""
}

// userinfoToken opens the access token and returns it live with its subject, or
// the refusal.
func (p *Provider) userinfoToken(ctx context.Context, ri *requestInfo, token string, presented bool) (*liveToken, string, *reason.Error) {
	if !presented {
		return nil, "", reason.New(reason.OIDCInvalidToken, "no access token", "cause", "missing")
	}
	sealed, err := p.crypto.Decrypt(token)
	if err != nil {
		return nil, "", reason.New(reason.OIDCInvalidToken, "the access token does not read", "cause", "malformed")
	}
	tokenID, subject, ok := strings.Cut(sealed, ":") // "ID:SUBJECT", as the library seals it
	if !ok || strings.Contains(subject, ":") {
		return nil, "", reason.New(reason.OIDCInvalidToken, "the access token does not read", "cause", "malformed")
	}
	t, e := p.st.liveAccess(ctx, ri, tokenID, subject)
	if e != nil {
		return nil, "", e
	}
	return t, subject, nil
}

// appendUserinfo appends userinfo's JSON answer (and a newline, as the library's
// encoder ends it) for the account id with subject sub, to client c whose scopes
// are scopes: the claims fill puts in a userinfo answer, the same names and
// values.
func (p *Provider) appendUserinfo(b []byte, sub string, id *identity.Identity, scopes []string, c *client) []byte {
	b = append(b, `{"sub":`...)
	b = appendJSONString(b, sub)
	if slices.Contains(scopes, oidc.ScopeProfile) {
		b = appendStringClaim(b, "name", id.DisplayName)
		b = appendStringClaim(b, "preferred_username", preferredUsername(id))
		b = appendStringClaim(b, "upn", id.UPN)
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && id.Mail != "" {
		b = appendStringClaim(b, "email", id.Mail)
		b = append(b, `,"email_verified":true`...)
	}
	if c != nil && slices.Contains(scopes, ScopeGroups) && len(id.Groups) > 0 {
		f := c.GroupNames
		f.Max = 0 // userinfo answers the whole lists (setGroupClaims)
		sids, _ := f.Apply(id.Groups)
		b = appendListClaim(b, claimGroupSIDs, sids)
		if id.GroupNames != nil {
			names, _ := f.Apply(id.GroupNames)
			b = appendListClaim(b, claimGroups, names)
		}
	}
	return append(b, "}\n"...)
}

// appendStringClaim appends ,"name":"value" unless value is empty (the library's
// claims are omitempty).
func appendStringClaim(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendListClaim appends ,"name":[...] (an empty list as []).
func appendListClaim(b []byte, name string, values []string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string (RFC 8259 §7), escaped as Go's
// encoding/json escapes it (what the library wrote): control characters, and <, >
// and & (HTML-safe), as \u00XX except \b \f \n \r \t; U+2028 and U+2029 as \u2028
// and \u2029; each byte of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '<', '>', '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				if c < 0x20 {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
