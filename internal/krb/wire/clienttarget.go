package wire

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Authorization data a Windows client puts in the authenticator of an AP-REQ, inside
// the first AD-IF-RELEVANT element (MS-KILE §3.2.5.8).
const (
	ADIfRelevant = 1 // RFC 4120 §5.2.6.1
	// ADAuthDataAPOptions is KERB_AUTH_DATA_AP_OPTIONS: a 4-byte little-endian word
	// of KERB_AP_OPTIONS_* bits (MS-KILE §3.2.5.8).
	ADAuthDataAPOptions = 143
	// ADClientTarget is KERB_AUTH_DATA_CLIENT_TARGET: "the server's name qualified
	// with the realm name" (MS-KILE §3.2.5.8), e.g. HTTP/sso.example.test@EXAMPLE.TEST.
	// MS-KILE names the content but not its encoding; it is read as UTF-16LE, as
	// Wireshark's Kerberos dissector reads the same element from Windows captures.
	ADClientTarget = 144
)

// Bits of KERB_AUTH_DATA_AP_OPTIONS (MS-KILE §3.2.5.8).
const (
	APOptionsCBT              = 0x4000 // KERB_AP_OPTIONS_CBT
	APOptionsUnverifiedTarget = 0x8000 // KERB_AP_OPTIONS_UNVERIFIED_TARGET_NAME
)

const (
	maxClientTargetBytes        = 2048
	clientTargetMalformedReason = "KERB_AUTH_DATA_CLIENT_TARGET"
)

// EncodeClientTarget is the ad-data of KERB_AUTH_DATA_CLIENT_TARGET for a name
// ("HTTP/sso.example.test@EXAMPLE.TEST"): UTF-16LE, no terminator.
func EncodeClientTarget(name string) []byte {
	u := utf16.Encode([]rune(name))
	out := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(out[2*i:], c)
	}
	return out
}

// ClientTarget finds KERB_AUTH_DATA_CLIENT_TARGET in an authenticator's authorization
// data (inside AD-IF-RELEVANT) and decodes it. present is false when the client sent
// none (MIT and Heimdal clients, Chromium on Linux). An element that is there but does
// not decode, or two that disagree, is an error: the caller must refuse rather than
// fall back to the ticket's clear-text server name.
func ClientTarget(ads []AuthorizationData) (name string, present bool, err error) {
	for _, ad := range ads {
		if ad.Type != ADIfRelevant {
			continue
		}
		inner, err := ParseAuthorizationData(ad.Data)
		if err != nil {
			continue // an AD-IF-RELEVANT we cannot read carries nothing we rely on
		}
		for _, e := range inner {
			if e.Type != ADClientTarget {
				continue
			}
			n, ok := decodeClientTarget(e.Data)
			if !ok {
				return "", true, malformed(clientTargetMalformedReason)
			}
			if present && n != name {
				return "", true, malformed("two different " + clientTargetMalformedReason + " elements")
			}
			name, present = n, true
		}
	}
	return name, present, nil
}

func decodeClientTarget(b []byte) (string, bool) {
	if len(b) == 0 || len(b)%2 != 0 || len(b) > maxClientTargetBytes {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 { // tolerate a terminating NUL
		u = u[:len(u)-1]
	}
	s := string(utf16.Decode(u))
	if s == "" || !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) || strings.ContainsRune(s, 0) {
		return "", false
	}
	return s, true
}

// TargetNames reports whether a KERB_AUTH_DATA_CLIENT_TARGET name
// ("HTTP/sso.example.test@EXAMPLE.TEST", realm optional) names spn ("HTTP/sso.example.test")
// in realm, case-insensitively as AD compares SPNs.
func TargetNames(target, spn, realm string) bool {
	name, r := target, ""
	if i := strings.LastIndex(target, "@"); i >= 0 {
		name, r = target[:i], target[i+1:]
	}
	return strings.EqualFold(name, spn) && (r == "" || strings.EqualFold(r, realm))
}
