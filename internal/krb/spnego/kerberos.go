package spnego

import "encoding/asn1"

// Kerberos V5 GSS token identifiers (RFC 4121 §4.1), the two bytes between the
// mechanism OID and the message in a Kerberos GSS token. An acceptor wraps its AP-REP
// with TokIDAPRep. Read only.
var (
	TokIDAPReq    = [2]byte{0x01, 0x00}
	TokIDAPRep    = [2]byte{0x02, 0x00}
	TokIDKRBError = [2]byte{0x03, 0x00}
)

// KerberosAPReq unwraps a Kerberos V5 GSS initial context token (RFC 4121 §4.1):
//
//	[APPLICATION 0] { OID 1.2.840.113554.1.2.2 (or 1.2.840.48018.1.2.2), 01 00, AP-REQ }
//
// It returns the AP-REQ's DER (starting with its [APPLICATION 14] tag 0x6e) as a
// sub-slice of gssToken, and the mechanism OID as a shared read-only value. Only
// the AP-REQ's outer tag and length are checked. Errors wrap ErrMalformed; a
// well-framed token for another mechanism also wraps ErrNotKerberos.
func KerberosAPReq(gssToken []byte) (apReq []byte, mech asn1.ObjectIdentifier, err error) {
	r := newReader(gssToken)
	outer, err := r.only(tagGSSToken, "Kerberos GSS token")
	if err != nil {
		return nil, nil, err
	}
	g := r.sub(outer)
	o, err := g.expect(tagOID, "Kerberos GSS token mechanism")
	if err != nil {
		return nil, nil, err
	}
	der := g.bytes(o)
	if !isKerberosDER(der) {
		return nil, nil, notKerberos(der, o.body)
	}
	mech, _ = lookupOID(der)
	if g.end-g.pos < 2 {
		return nil, nil, malformed("Kerberos GSS token: truncated token id at offset %d", g.pos)
	}
	id := [2]byte{g.in[g.pos], g.in[g.pos+1]}
	if id != TokIDAPReq {
		return nil, nil, malformed("Kerberos GSS token: token id %02x%02x (%s) at offset %d, want 0100 (AP-REQ)",
			id[0], id[1], tokIDName(id), g.pos)
	}
	g.pos += 2
	a, err := g.only(tagAPReq, "AP-REQ")
	if err != nil {
		return nil, nil, err
	}
	return gssToken[a.start:a.end:a.end], mech, nil
}

func tokIDName(id [2]byte) string {
	switch id {
	case TokIDAPReq:
		return "AP-REQ"
	case TokIDAPRep:
		return "AP-REP"
	case TokIDKRBError:
		return "KRB-ERROR"
	case [2]byte{0x04, 0x00}:
		return "TGT-REQ"
	case [2]byte{0x04, 0x01}:
		return "TGT-REP"
	}
	return "unknown"
}

// WrapKerberos builds a Kerberos V5 GSS token: [APPLICATION 0] { mech, tokID,
// inner }. The server uses it for the AP-REP (tokID TokIDAPRep) with the mechanism
// the client used. It panics if mech cannot be DER-encoded.
func WrapKerberos(mech asn1.ObjectIdentifier, tokID [2]byte, inner []byte) []byte {
	oidLen := mustOIDContentLen(mech)
	body := tlvLen(oidLen) + len(tokID) + len(inner)
	b := make([]byte, 0, tlvLen(body))
	b = appendHeader(b, tagGSSToken, body)
	b = appendHeader(b, tagOID, oidLen)
	b = appendOIDContent(b, mech)
	b = append(b, tokID[:]...)
	return append(b, inner...)
}
