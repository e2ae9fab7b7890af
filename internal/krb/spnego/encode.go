package spnego

import "encoding/asn1"

// EncodeNegTokenResp encodes a bare NegTokenResp ([1] SEQUENCE, RFC 4178 §4.2.2),
// the form servers send back. Absent fields are omitted: negState when state is
// negative (NegStateAbsent), supportedMech when nil, responseToken and mechListMIC
// when nil (a non-nil empty slice encodes an empty OCTET STRING). It panics if
// supportedMech cannot be DER-encoded.
func EncodeNegTokenResp(state NegState, supportedMech asn1.ObjectIdentifier, responseToken, mic []byte) []byte {
	seq := 0
	if state >= 0 {
		seq += tlvLen(tlvLen(enumLen(state)))
	}
	oidLen := 0
	if supportedMech != nil {
		oidLen = mustOIDContentLen(supportedMech)
		seq += tlvLen(tlvLen(oidLen))
	}
	if responseToken != nil {
		seq += tlvLen(tlvLen(len(responseToken)))
	}
	if mic != nil {
		seq += tlvLen(tlvLen(len(mic)))
	}
	b := make([]byte, 0, tlvLen(tlvLen(seq)))
	b = appendHeader(b, tagNegTokenResp, tlvLen(seq))
	b = appendHeader(b, tagSequence, seq)
	if state >= 0 {
		n := enumLen(state)
		b = appendHeader(b, classContextConstructed|0, tlvLen(n))
		b = appendHeader(b, tagEnumerated, n)
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(state>>(8*i)))
		}
	}
	if supportedMech != nil {
		b = appendHeader(b, classContextConstructed|1, tlvLen(oidLen))
		b = appendHeader(b, tagOID, oidLen)
		b = appendOIDContent(b, supportedMech)
	}
	if responseToken != nil {
		b = appendOctetField(b, 2, responseToken)
	}
	if mic != nil {
		b = appendOctetField(b, 3, mic)
	}
	return b
}

// enumLen is the length of the minimal two's-complement encoding of a
// non-negative ENUMERATED value.
func enumLen(v NegState) int {
	n := 1
	for v > 0x7f {
		v >>= 8
		n++
	}
	return n
}

// appendOctetField appends [n] { OCTET STRING b }.
func appendOctetField(b []byte, n byte, v []byte) []byte {
	b = appendHeader(b, classContextConstructed|n, tlvLen(len(v)))
	b = appendHeader(b, tagOctetString, len(v))
	return append(b, v...)
}

// EncodeNegTokenInit encodes a client's initial SPNEGO token in GSS framing:
// [APPLICATION 0] { SPNEGO OID, [0] NegTokenInit { [0] mechs, [2] mechToken } }.
// mechToken is omitted when nil and belongs to mechs[0]. It panics if mechs is
// empty or holds an OID that cannot be DER-encoded.
func EncodeNegTokenInit(mechs []asn1.ObjectIdentifier, mechToken []byte) []byte {
	if len(mechs) == 0 {
		panic("spnego: EncodeNegTokenInit without mechanisms")
	}
	list := 0
	for _, m := range mechs {
		list += tlvLen(mustOIDContentLen(m))
	}
	seq := tlvLen(tlvLen(list))
	if mechToken != nil {
		seq += tlvLen(tlvLen(len(mechToken)))
	}
	gss := tlvLen(len(derSPNEGO)) + tlvLen(tlvLen(seq))
	b := make([]byte, 0, tlvLen(gss))
	b = appendHeader(b, tagGSSToken, gss)
	b = appendHeader(b, tagOID, len(derSPNEGO))
	b = append(b, derSPNEGO...)
	b = appendHeader(b, tagNegTokenInit, tlvLen(seq))
	b = appendHeader(b, tagSequence, seq)
	b = appendHeader(b, classContextConstructed|0, tlvLen(list))
	b = appendHeader(b, tagSequence, list)
	for _, m := range mechs {
		b = appendHeader(b, tagOID, mustOIDContentLen(m))
		b = appendOIDContent(b, m)
	}
	if mechToken != nil {
		b = appendOctetField(b, 2, mechToken)
	}
	return b
}
