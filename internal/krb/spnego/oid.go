package spnego

import (
	"encoding/asn1"
	"fmt"
	"math"
)

// Mechanism OIDs.
//
// Decode and KerberosAPReq return these very slices (not copies) whenever the wire
// carries one of them, so callers must treat every returned OID as read-only.
var (
	OIDSPNEGO   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}
	OIDKerberos = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	// OIDKerberosMS is the OID Microsoft clients historically send for Kerberos: the
	// result of encoding 113554 truncated to 16 bits. It identifies the same mechanism.
	OIDKerberosMS  = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
	OIDNTLM        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}
	OIDKerberosU2U = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2, 3}
	// OIDNegoEx is Microsoft's NEGOEX pseudo-mechanism, which Windows clients list
	// between Kerberos and NTLM.
	OIDNegoEx = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 30}
)

// Contents octets (no tag, no length) of the well-known OIDs' DER encodings.
const (
	derSPNEGO      = "\x2b\x06\x01\x05\x05\x02"
	derKerberos    = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
	derKerberosMS  = "\x2a\x86\x48\x82\xf7\x12\x01\x02\x02"
	derNTLM        = "\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"
	derKerberosU2U = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x03"
	derNegoEx      = "\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x1e"
)

// Limits on attacker-controlled OIDs.
const (
	// maxOIDLen bounds the contents of one OID. Real mechanism OIDs are at most
	// a dozen octets; 64 leaves room for exotic ones and bounds the arcs (≤ 65).
	maxOIDLen = 64
	// maxMechTypes bounds the NegTokenInit mechanism list. Clients send 1 to 5.
	maxMechTypes = 32
)

// wellKnown maps the DER contents of an OID we know to the shared value returned
// for it. It is copied from the exported variables once, at package init, so
// reassigning an exported variable does not change what decoding returns.
var wellKnown = [...]struct {
	der string
	oid asn1.ObjectIdentifier
}{
	{derKerberos, OIDKerberos[:len(OIDKerberos):len(OIDKerberos)]},
	{derKerberosMS, OIDKerberosMS[:len(OIDKerberosMS):len(OIDKerberosMS)]},
	{derNTLM, OIDNTLM[:len(OIDNTLM):len(OIDNTLM)]},
	{derSPNEGO, OIDSPNEGO[:len(OIDSPNEGO):len(OIDSPNEGO)]},
	{derKerberosU2U, OIDKerberosU2U[:len(OIDKerberosU2U):len(OIDKerberosU2U)]},
	{derNegoEx, OIDNegoEx[:len(OIDNegoEx):len(OIDNegoEx)]},
}

// lookupOID returns the shared value for a well-known OID's contents octets.
func lookupOID(der []byte) (asn1.ObjectIdentifier, bool) {
	for i := range wellKnown {
		if string(der) == wellKnown[i].der {
			return wellKnown[i].oid, true
		}
	}
	return nil, false
}

// oidArcs validates the contents octets of an OBJECT IDENTIFIER and returns how
// many arcs it has. off is the absolute offset of der, used in errors. It enforces
// DER: no leading 0x80 octet in a subidentifier, no truncated final subidentifier,
// and every arc must fit in 31 bits (so it is a valid int on every platform).
func oidArcs(der []byte, off int) (int, error) {
	if len(der) == 0 {
		return 0, malformed("empty OID at offset %d", off)
	}
	if len(der) > maxOIDLen {
		return 0, malformed("OID of %d bytes at offset %d exceeds limit of %d", len(der), off, maxOIDLen)
	}
	arcs := 1 // the first subidentifier holds two arcs
	var v uint32
	start := true
	for i, c := range der {
		if start && c == 0x80 {
			return 0, malformed("non-minimal OID subidentifier at offset %d", off+i)
		}
		if v > math.MaxInt32>>7 {
			return 0, malformed("OID arc overflows at offset %d", off+i)
		}
		v = v<<7 | uint32(c&0x7f)
		start = c&0x80 == 0
		if start {
			arcs++
			v = 0
		}
	}
	if !start {
		return 0, malformed("truncated OID at offset %d", off+len(der))
	}
	return arcs, nil
}

// fillOID decodes contents octets already validated by oidArcs into dst, which must
// have exactly the length oidArcs reported.
func fillOID(dst []int, der []byte) {
	var v int
	j := 0
	for _, c := range der {
		v = v<<7 | int(c&0x7f)
		if c&0x80 != 0 {
			continue
		}
		if j == 0 {
			switch {
			case v < 40:
				dst[0], dst[1] = 0, v
			case v < 80:
				dst[0], dst[1] = 1, v-40
			default:
				dst[0], dst[1] = 2, v-80
			}
			j = 2
		} else {
			dst[j] = v
			j++
		}
		v = 0
	}
}

// parseOID decodes one OID, returning the shared value for well-known OIDs and a
// freshly allocated one otherwise.
func parseOID(der []byte, off int) (asn1.ObjectIdentifier, error) {
	if oid, ok := lookupOID(der); ok {
		return oid, nil
	}
	n, err := oidArcs(der, off)
	if err != nil {
		return nil, err
	}
	oid := make(asn1.ObjectIdentifier, n)
	fillOID(oid, der)
	return oid, nil
}

// oidContentLen returns the length of the DER contents octets of oid, or an error
// if oid cannot be encoded (fewer than two arcs, negative arcs, or a first/second
// arc combination X.690 §8.19.4 does not allow).
func oidContentLen(oid asn1.ObjectIdentifier) (int, error) {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) {
		return 0, fmt.Errorf("spnego: cannot encode OID %v", oid)
	}
	if oid[1] > math.MaxInt32-80 {
		return 0, fmt.Errorf("spnego: cannot encode OID %v", oid)
	}
	n := base128Len(oid[0]*40 + oid[1])
	for _, a := range oid[2:] {
		if a < 0 {
			return 0, fmt.Errorf("spnego: cannot encode OID %v", oid)
		}
		n += base128Len(a)
	}
	return n, nil
}

func base128Len(v int) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendOIDContent appends the DER contents octets of an OID that oidContentLen
// accepted.
func appendOIDContent(b []byte, oid asn1.ObjectIdentifier) []byte {
	b = appendBase128(b, oid[0]*40+oid[1])
	for _, a := range oid[2:] {
		b = appendBase128(b, a)
	}
	return b
}

func appendBase128(b []byte, v int) []byte {
	for i := base128Len(v) - 1; i > 0; i-- {
		b = append(b, byte(v>>(7*i))|0x80)
	}
	return append(b, byte(v&0x7f))
}

// mustOIDContentLen is oidContentLen for encoder arguments, which come from the
// program, not the network: an unencodable OID there is a programming error.
func mustOIDContentLen(oid asn1.ObjectIdentifier) int {
	n, err := oidContentLen(oid)
	if err != nil {
		panic(err)
	}
	return n
}
