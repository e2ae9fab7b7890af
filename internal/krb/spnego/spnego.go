package spnego

import (
	"encoding/asn1"
	"errors"
	"strconv"
)

// ErrMalformed is wrapped by every error Decode and KerberosAPReq return.
var ErrMalformed = errors.New("spnego: malformed token")

// ErrNotKerberos is additionally wrapped (together with ErrMalformed) when a GSS
// token is well framed but names a mechanism other than Kerberos V5.
var ErrNotKerberos = errors.New("spnego: not a Kerberos token")

// Kind says which kind of token Decode found.
type Kind int

// Token kinds. The zero Kind is not a valid kind.
const (
	// KindNegTokenInit is a SPNEGO NegTokenInit (or Microsoft NegTokenInit2) in
	// GSS InitialContextToken framing: a client's first SPNEGO token.
	KindNegTokenInit Kind = iota + 1
	// KindNegTokenResp is a bare SPNEGO NegTokenResp ([1] SEQUENCE).
	KindNegTokenResp
	// KindKerberos is a raw Kerberos V5 GSS token without SPNEGO:
	// [APPLICATION 0] { Kerberos OID, 2-byte token id, inner token }.
	KindKerberos
	// KindNTLM is a raw NTLMSSP message (it starts with "NTLMSSP\x00").
	KindNTLM
)

func (k Kind) String() string {
	switch k {
	case KindNegTokenInit:
		return "NegTokenInit"
	case KindNegTokenResp:
		return "NegTokenResp"
	case KindKerberos:
		return "Kerberos"
	case KindNTLM:
		return "NTLM"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// NegState is the negState of a NegTokenResp (RFC 4178 §4.2.2).
type NegState int

// Negotiation states. NegStateAbsent is not a wire value: Decode reports it when a
// NegTokenResp has no negState, and EncodeNegTokenResp omits the field for it (or
// any other negative value).
const (
	AcceptCompleted  NegState = 0
	AcceptIncomplete NegState = 1
	Reject           NegState = 2
	RequestMIC       NegState = 3

	NegStateAbsent NegState = -1
)

func (s NegState) String() string {
	switch s {
	case AcceptCompleted:
		return "accept-completed"
	case AcceptIncomplete:
		return "accept-incomplete"
	case Reject:
		return "reject"
	case RequestMIC:
		return "request-mic"
	case NegStateAbsent:
		return "absent"
	}
	return "NegState(" + strconv.Itoa(int(s)) + ")"
}

// Token is a decoded Negotiate token. Which fields are set depends on Kind.
//
// Byte slices alias the decoded input (capacity capped at their length); OIDs may
// be shared package values. Treat all of them as read-only.
type Token struct {
	Kind Kind

	// NegTokenInit fields. MechTypes is never empty for KindNegTokenInit.
	MechTypes []asn1.ObjectIdentifier
	ReqFlags  asn1.BitString // zero when absent
	// MechToken is the optimistic token for MechTypes[0] (nil when absent). For
	// KindKerberos it is the whole raw GSS token, for KindNTLM the whole message.
	MechToken []byte

	// MechListMIC is set for KindNegTokenInit and KindNegTokenResp (nil when absent).
	MechListMIC []byte

	// NegTokenResp fields.
	NegState      NegState // NegStateAbsent (-1) when absent, and for other kinds
	SupportedMech asn1.ObjectIdentifier
	ResponseToken []byte
}

// Mech returns the mechanism the token speaks for: MechTypes[0] (the optimistic
// mechanism, the one a MechToken belongs to) for KindNegTokenInit, SupportedMech
// for KindNegTokenResp, the framing OID for KindKerberos and OIDNTLM for KindNTLM.
// It returns nil when there is none.
func (t *Token) Mech() asn1.ObjectIdentifier {
	switch t.Kind {
	case KindNegTokenInit:
		if len(t.MechTypes) > 0 {
			return t.MechTypes[0]
		}
	case KindNegTokenResp:
		return t.SupportedMech
	case KindKerberos:
		r := newReader(t.MechToken)
		outer, err := r.next()
		if err != nil {
			return nil
		}
		r = r.sub(outer)
		if o, err := r.next(); err == nil && o.tag == tagOID {
			oid, _ := lookupOID(r.bytes(o))
			return oid
		}
	case KindNTLM:
		for i := range wellKnown {
			if wellKnown[i].der == derNTLM {
				return wellKnown[i].oid
			}
		}
	}
	return nil
}

// ntlmSignature starts every NTLMSSP message (MS-NLMP §2.2).
const ntlmSignature = "NTLMSSP\x00"

// IsNTLM reports whether b is a raw NTLMSSP message.
func IsNTLM(b []byte) bool {
	return len(b) >= len(ntlmSignature) && string(b[:len(ntlmSignature)]) == ntlmSignature
}

// IsKerberos reports whether oid names Kerberos V5: the standard OID
// 1.2.840.113554.1.2.2 or Microsoft's legacy 1.2.840.48018.1.2.2.
func IsKerberos(oid asn1.ObjectIdentifier) bool {
	return len(oid) == 7 && oid[0] == 1 && oid[1] == 2 && oid[2] == 840 &&
		(oid[3] == 113554 || oid[3] == 48018) && oid[4] == 1 && oid[5] == 2 && oid[6] == 2
}

func isKerberosDER(der []byte) bool {
	return string(der) == derKerberos || string(der) == derKerberosMS
}

// Decode decodes a Negotiate token: a GSS-framed SPNEGO NegTokenInit (or
// NegTokenInit2), a bare NegTokenResp, a GSS-framed raw Kerberos token, or a raw
// NTLMSSP message. The returned Token aliases b. On error the Token is zero and the
// error wraps ErrMalformed.
//
// Decode checks framing only: a KindKerberos token's inner message, and the
// contents of MechToken and ResponseToken, are left to KerberosAPReq and the
// mechanism.
func Decode(b []byte) (Token, error) {
	if IsNTLM(b) {
		return Token{Kind: KindNTLM, MechToken: b[:len(b):len(b)], NegState: NegStateAbsent}, nil
	}
	if len(b) == 0 {
		return Token{}, malformed("empty token")
	}
	r := newReader(b)
	t := Token{NegState: NegStateAbsent}
	var err error
	switch b[0] {
	case tagGSSToken:
		err = decodeGSS(&t, &r)
	case tagNegTokenResp:
		var resp tlv
		if resp, err = r.only(tagNegTokenResp, "NegTokenResp"); err == nil {
			err = decodeNegTokenResp(&t, &r, resp)
		}
	default:
		err = malformed("unexpected token tag 0x%02x at offset 0", b[0])
	}
	if err != nil {
		return Token{}, err
	}
	return t, nil
}

// decodeGSS decodes an InitialContextToken carrying SPNEGO or Kerberos.
func decodeGSS(t *Token, r *reader) error {
	outer, err := r.only(tagGSSToken, "GSS token")
	if err != nil {
		return err
	}
	g := r.sub(outer)
	o, err := g.expect(tagOID, "GSS mechanism")
	if err != nil {
		return err
	}
	der := g.bytes(o)
	switch {
	case string(der) == derSPNEGO:
		init, err := g.only(tagNegTokenInit, "SPNEGO NegotiationToken")
		if err != nil {
			return err
		}
		return decodeNegTokenInit(t, &g, init)
	case isKerberosDER(der):
		if g.end-g.pos < 2 {
			return malformed("Kerberos GSS token: truncated token id at offset %d", g.pos)
		}
		t.Kind, t.MechToken = KindKerberos, r.in[outer.start:outer.end:outer.end]
		return nil
	default:
		return notKerberos(der, o.body)
	}
}

// notKerberos reports a GSS token for an unsupported mechanism.
func notKerberos(der []byte, off int) error {
	oid, err := parseOID(der, off)
	if err != nil {
		return err
	}
	return notKerberosOID(oid)
}

func notKerberosOID(oid asn1.ObjectIdentifier) error {
	return &notKerberosError{oid: oid}
}

type notKerberosError struct{ oid asn1.ObjectIdentifier }

func (e *notKerberosError) Error() string {
	return ErrMalformed.Error() + ": GSS token for mechanism " + e.oid.String() + ", not Kerberos"
}

func (e *notKerberosError) Is(target error) bool {
	return target == ErrMalformed || target == ErrNotKerberos
}

// contextTag returns the number of a constructed context-specific tag, or -1.
func contextTag(tag byte) int {
	if tag&0xe0 != classContextConstructed {
		return -1
	}
	return int(tag & 0x1f)
}

// decodeNegTokenInit decodes the [0] choice of a NegotiationToken:
//
//	NegTokenInit ::= SEQUENCE {
//	    mechTypes   [0] MechTypeList,
//	    reqFlags    [1] ContextFlags  OPTIONAL,
//	    mechToken   [2] OCTET STRING  OPTIONAL,
//	    mechListMIC [3] OCTET STRING  OPTIONAL }
//
// and Microsoft's NegTokenInit2 (MS-SPNG §2.2.1), which has negHints [3] SEQUENCE
// and moves mechListMIC to [4]. negHints is skipped.
func decodeNegTokenInit(t *Token, r *reader, choice tlv) error {
	c := r.sub(choice)
	seq, err := c.only(tagSequence, "NegTokenInit")
	if err != nil {
		return err
	}
	t.Kind = KindNegTokenInit
	s := r.sub(seq)
	last := -1
	mic3 := false // field [3] was a mechListMIC, not NegTokenInit2's negHints
	for !s.empty() {
		f, err := s.next()
		if err != nil {
			return err
		}
		n := contextTag(f.tag)
		if n < 0 || n > 4 {
			return malformed("NegTokenInit: unexpected tag 0x%02x at offset %d", f.tag, f.start)
		}
		if n <= last {
			return malformed("NegTokenInit: field [%d] at offset %d out of order or repeated", n, f.start)
		}
		if last < 0 && n != 0 {
			return malformed("NegTokenInit: missing mechTypes before field [%d] at offset %d", n, f.start)
		}
		last = n
		v := r.sub(f)
		switch n {
		case 0:
			l, err := v.only(tagSequence, "mechTypes")
			if err != nil {
				return err
			}
			if t.MechTypes, err = decodeMechTypes(r, l); err != nil {
				return err
			}
		case 1:
			bs, err := v.only(tagBitString, "reqFlags")
			if err != nil {
				return err
			}
			if t.ReqFlags, err = decodeBitString(r, bs); err != nil {
				return err
			}
		case 2:
			os, err := v.only(tagOctetString, "mechToken")
			if err != nil {
				return err
			}
			t.MechToken = r.bytes(os)
		case 3:
			e, err := v.next()
			if err != nil {
				return err
			}
			switch e.tag {
			case tagOctetString:
				t.MechListMIC = r.bytes(e)
				mic3 = true
			case tagSequence:
				// NegTokenInit2 negHints: advisory, from servers; contents not needed.
			default:
				return malformed("NegTokenInit field [3]: expected mechListMIC or negHints, got tag 0x%02x at offset %d", e.tag, e.start)
			}
			if !v.empty() {
				return malformed("NegTokenInit field [3]: %d bytes of trailing data at offset %d", v.end-v.pos, v.pos)
			}
		case 4:
			if mic3 {
				return malformed("NegTokenInit: second mechListMIC at offset %d", f.start)
			}
			os, err := v.only(tagOctetString, "mechListMIC")
			if err != nil {
				return err
			}
			t.MechListMIC = r.bytes(os)
		}
	}
	if last < 0 {
		return malformed("NegTokenInit: missing mechTypes at offset %d", seq.body)
	}
	return nil
}

// decodeMechTypes decodes a MechTypeList (SEQUENCE OF OBJECT IDENTIFIER). A first
// pass validates and counts; then one slice holds the list and, if any OID is not
// well known, one more backs all of their arcs.
func decodeMechTypes(r *reader, list tlv) ([]asn1.ObjectIdentifier, error) {
	l := r.sub(list)
	count, arcs := 0, 0
	for !l.empty() {
		o, err := l.expect(tagOID, "mechTypes element")
		if err != nil {
			return nil, err
		}
		if count++; count > maxMechTypes {
			return nil, malformed("mechTypes: more than %d mechanisms at offset %d", maxMechTypes, o.start)
		}
		der := r.bytes(o)
		if _, ok := lookupOID(der); ok {
			continue
		}
		n, err := oidArcs(der, o.body)
		if err != nil {
			return nil, err
		}
		arcs += n
	}
	if count == 0 {
		return nil, malformed("mechTypes: empty list at offset %d", list.start)
	}
	mechs := make([]asn1.ObjectIdentifier, count)
	var backing []int
	if arcs > 0 {
		backing = make([]int, arcs)
	}
	l = r.sub(list)
	for i := range mechs {
		o, _ := l.next() // validated above
		der := r.bytes(o)
		if oid, ok := lookupOID(der); ok {
			mechs[i] = oid
			continue
		}
		n, _ := oidArcs(der, o.body)
		oid := backing[:n:n]
		backing = backing[n:]
		fillOID(oid, der)
		mechs[i] = oid
	}
	return mechs, nil
}

// decodeBitString decodes the contents of a primitive BIT STRING.
func decodeBitString(r *reader, t tlv) (asn1.BitString, error) {
	b := r.bytes(t)
	if len(b) == 0 {
		return asn1.BitString{}, malformed("empty BIT STRING at offset %d", t.start)
	}
	unused := int(b[0])
	if unused > 7 || (len(b) == 1 && unused != 0) {
		return asn1.BitString{}, malformed("BIT STRING at offset %d: invalid unused-bits count %d", t.start, unused)
	}
	return asn1.BitString{Bytes: b[1:], BitLength: (len(b)-1)*8 - unused}, nil
}

// decodeNegTokenResp decodes the [1] choice of a NegotiationToken:
//
//	NegTokenResp ::= SEQUENCE {
//	    negState      [0] ENUMERATED     OPTIONAL,
//	    supportedMech [1] MechType       OPTIONAL,
//	    responseToken [2] OCTET STRING   OPTIONAL,
//	    mechListMIC   [3] OCTET STRING   OPTIONAL }
func decodeNegTokenResp(t *Token, r *reader, choice tlv) error {
	c := r.sub(choice)
	seq, err := c.only(tagSequence, "NegTokenResp")
	if err != nil {
		return err
	}
	t.Kind = KindNegTokenResp
	s := r.sub(seq)
	last := -1
	for !s.empty() {
		f, err := s.next()
		if err != nil {
			return err
		}
		n := contextTag(f.tag)
		if n < 0 || n > 3 {
			return malformed("NegTokenResp: unexpected tag 0x%02x at offset %d", f.tag, f.start)
		}
		if n <= last {
			return malformed("NegTokenResp: field [%d] at offset %d out of order or repeated", n, f.start)
		}
		last = n
		v := r.sub(f)
		switch n {
		case 0:
			e, err := v.only(tagEnumerated, "negState")
			if err != nil {
				return err
			}
			b := r.bytes(e)
			if len(b) != 1 || b[0] > byte(RequestMIC) {
				return malformed("negState at offset %d: invalid %d-byte value % x", e.start, len(b), b)
			}
			t.NegState = NegState(b[0])
		case 1:
			o, err := v.only(tagOID, "supportedMech")
			if err != nil {
				return err
			}
			if t.SupportedMech, err = parseOID(r.bytes(o), o.body); err != nil {
				return err
			}
		case 2:
			os, err := v.only(tagOctetString, "responseToken")
			if err != nil {
				return err
			}
			t.ResponseToken = r.bytes(os)
		case 3:
			os, err := v.only(tagOctetString, "mechListMIC")
			if err != nil {
				return err
			}
			t.MechListMIC = r.bytes(os)
		}
	}
	return nil
}
