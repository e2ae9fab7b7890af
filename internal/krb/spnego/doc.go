// Package spnego owns the token framing of the HTTP Negotiate scheme (RFC 4559):
// SPNEGO negotiation tokens (RFC 4178), the GSS-API InitialContextToken framing
// around them (RFC 2743 §3.1), and the Kerberos V5 GSS framing with its two-byte
// token identifiers (RFC 4121 §4.1). It also recognises, without parsing, raw
// NTLMSSP messages so that callers can tell NTLM fallbacks apart from garbage.
//
// The package only moves bytes between framings. It does not verify Kerberos
// messages (an AP-REQ is returned as opaque DER for the acceptor to check), and it
// knows nothing about HTTP headers or base64.
//
// Decoding is strict, bounded and allocation-light: every length is checked against
// the remaining input before use, lengths must be definite, trailing data is an
// error, and nothing is allocated in proportion to a length the input claims. All
// decode errors wrap ErrMalformed. Decoded byte fields alias the input slice (with
// their capacity capped, so appending to them cannot overwrite the input), and
// decoded well-known OIDs are shared package values; treat both as read-only.
package spnego
