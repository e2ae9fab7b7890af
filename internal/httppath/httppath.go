// Package httppath computes the one canonical form of a request path that kerbgate
// routes on and forwards, so that what kerbgate checks is what the upstream serves.
//
// It owns the rules: RFC 3986 dot-segment removal, collapsed slashes, percent-encoded
// unreserved characters decoded and every other escape in upper-case hex, and the
// refusals of paths no upstream reads the same way (an encoded / or \, a raw \, a
// control character or NUL, double encoding, a dot segment in disguise, a .. above
// the root). It also gives the key under which a lenient upstream (IIS: case-
// insensitive, trailing dots and spaces ignored, ;parameters and :streams cut)
// compares paths, so that a caller can refuse a path whose meaning depends on the
// upstream's leniency.
//
// Its functions are pure: no configuration, no logging, no HTTP handling. Callers
// (the application proxy, the forward-auth face for X-Forwarded-Uri) decide what to
// route and how to refuse. The query string is not a path and is never passed here.
package httppath

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error says why a path has no canonical form. Why is a short, stable phrase for
// logs; it never contains the path.
type Error struct{ Why string }

func (e *Error) Error() string { return "path not canonical: " + e.Why }

// The reasons a path is refused.
var (
	ErrNotAbsolute      = &Error{"does not start with /"}
	ErrMalformedEscape  = &Error{"% not followed by two hex digits"}
	ErrEncodedSlash     = &Error{"encoded / (%2F)"}
	ErrEncodedBackslash = &Error{`encoded \ (%5C)`}
	ErrBackslash        = &Error{`\ in the path`}
	ErrControl          = &Error{"control character or NUL, raw or encoded"}
	ErrDoubleEncoding   = &Error{"encoded % followed by two hex digits (double encoding)"}
	ErrDisguisedDot     = &Error{"segment of dots and spaces, or with ;parameters, that an upstream reads as . or .."}
	ErrAboveRoot        = &Error{".. above the root"}
)

// Raw returns r's path as the client escaped it (before net/http's decoding), for
// Canonical. The escaped form is what shows %2F and %5C.
func Raw(r *http.Request) string {
	u := r.URL
	switch {
	case u.Opaque != "":
		return u.Opaque // never starts with /: refused
	case u.RawPath != "":
		// net/url keeps the client's bytes here whenever they differ from the
		// default encoding of Path, even when EscapedPath would not return them.
		return u.RawPath
	case u.Path == "":
		return "/" // absolute-form "http://host" without a path
	}
	return u.EscapedPath()
}

// Canonical returns the canonical form of escaped, an absolute path as sent in a
// request target (escaped, without the query), or an *Error:
//
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other
//     escapes are written in upper-case hex, and bytes that may not appear raw in a
//     path (space, ", <, >, non-ASCII, ...) are percent-encoded;
//   - empty segments are removed ("//" is "/"), then "." and ".." segments as in
//     RFC 3986 section 5.2.4; a trailing slash is kept, and a path ending in a dot
//     segment ends in "/";
//   - refused: %2F, %5C, a raw \, a control character or NUL (raw or encoded), an
//     encoded % followed by two hex digits, a ".." above the root, and segments that
//     upstreams read as dot segments though RFC 3986 does not ("..;x", ".;", "...",
//     ". ", "..%20").
//
// Canonical(Canonical(p)) == Canonical(p) for every p it accepts.
func Canonical(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", ErrNotAbsolute
	}
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", ErrMalformedEscape
			}
			v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			switch {
			case v == '/':
				return "", ErrEncodedSlash
			case v == '\\':
				return "", ErrEncodedBackslash
			case v < 0x20 || v == 0x7f:
				return "", ErrControl
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				writeEscape(&b, v)
			}
		case c == '\\':
			return "", ErrBackslash
		case c < 0x20 || c == 0x7f:
			return "", ErrControl
		case c == '/' || isPchar(c):
			b.WriteByte(c)
		default:
			writeEscape(&b, c)
		}
	}
	s := b.String()
	// After the unreserved escapes are decoded (%25%34%31 is %2541), an encoded %
	// must not start an escape: an upstream that decodes twice would see another
	// character than kerbgate routed.
	for i := strings.Index(s, "%25"); i >= 0; {
		if i+4 < len(s) && isHex(s[i+3]) && isHex(s[i+4]) {
			return "", ErrDoubleEncoding
		}
		j := strings.Index(s[i+3:], "%25")
		if j < 0 {
			break
		}
		i += 3 + j
	}

	segs := strings.Split(s[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case "", ".":
			trailing = last
		case "..":
			if len(out) == 0 {
				return "", ErrAboveRoot
			}
			out = out[:len(out)-1]
			trailing = last
		default:
			if disguisedDot(seg) {
				return "", ErrDisguisedDot
			}
			out = append(out, seg)
			trailing = false
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	p := "/" + strings.Join(out, "/")
	if trailing {
		p += "/"
	}
	return p, nil
}

// Decode returns the decoded form of a canonical path (for url.URL.Path; RawPath is
// the canonical path itself). Canonical paths hold no %2F, so no segment boundary
// moves.
func Decode(canonical string) string {
	if !strings.Contains(canonical, "%") {
		return canonical
	}
	var b strings.Builder
	b.Grow(len(canonical))
	for i := 0; i < len(canonical); i++ {
		c := canonical[i]
		if c == '%' && i+2 < len(canonical) && isHex(canonical[i+1]) && isHex(canonical[i+2]) {
			b.WriteByte(unhex(canonical[i+1])<<4 | unhex(canonical[i+2]))
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// disguisedDot reports whether a segment (not "." or "..") is read as a dot segment
// by some upstream: its name before any ";parameters" (Tomcat, Jetty) is nothing but
// dots and spaces, with a dot (Windows drops trailing dots and spaces).
func disguisedDot(seg string) bool {
	name, _, _ := strings.Cut(Decode(seg), ";")
	return name != "" && strings.Contains(name, ".") && strings.Trim(name, ". ") == ""
}

// FoldKey returns the key under which a lenient upstream compares a canonical path:
// each segment fully decoded, cut at ";" (path parameters) and ":" (NTFS streams such
// as "::$INDEX_ALLOCATION"), stripped of trailing dots and spaces, dropped if then
// empty, and case-folded (upper case, then Unicode simple folding: "ſ", "s" and "S"
// are one, and so are "ı", "i" and "I"). Two paths with the same key are the same
// file to IIS on NTFS. The key is for comparison only, never for forwarding.
func FoldKey(canonical string) string {
	var b strings.Builder
	b.Grow(len(canonical))
	segs := strings.Split(strings.TrimPrefix(canonical, "/"), "/")
	for i, seg := range segs {
		name := Decode(seg)
		if j := strings.IndexAny(name, ";:"); j >= 0 {
			name = name[:j]
		}
		name = strings.TrimRight(name, ". ")
		if name == "" {
			if i == len(segs)-1 && b.Len() > 0 {
				b.WriteByte('/') // keep the trailing slash
			}
			continue
		}
		b.WriteByte('/')
		for len(name) > 0 {
			r, size := utf8.DecodeRuneInString(name)
			if r == utf8.RuneError && size <= 1 {
				b.WriteByte(name[0]) // not UTF-8: the byte itself
				name = name[1:]
				continue
			}
			b.WriteRune(fold(r))
			name = name[size:]
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// fold returns the smallest rune of the case-folding orbit of r's upper case: the
// upper case first, as Windows compares names by upper-casing them ("ı", U+0131,
// has no folding partner but is "I" in upper case).
func fold(r rune) rune {
	r = unicode.ToUpper(r)
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

// HasPrefix reports whether path p is under prefix, by whole segments: "/app/" holds
// "/app/x" and "/app"; "/app" holds "/app" and "/app/x" but not "/apple".
func HasPrefix(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix) || p+"/" == prefix
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved is RFC 3986's unreserved set.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPchar is RFC 3986's pchar without pct-encoded: unreserved, sub-delims, ":", "@".
func isPchar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}
