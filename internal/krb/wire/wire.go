// Package wire decodes and encodes the Kerberos (RFC 4120) messages an acceptor handles:
// AP-REQ, Ticket, EncTicketPart, Authenticator, AP-REP and EncAPRepPart, and the
// authorization data Windows clients put in the authenticator (MS-KILE §3.2.5.8).
//
// It owns DER only. It must not decrypt, look up keys, read the clock or decide policy:
// callers hand it bytes and get typed values (or an error) back. Every input may come
// from the network, so every length is checked and nothing here panics. Decoded byte
// slices alias the input (no copies); strings are copied.
//
// It exists because gokrb5's reflection-based ASN.1 decoding costs tens of
// microseconds and hundreds of allocations per AP-REQ, which dominates sign-in cost.
package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("kerberos: malformed message")

// Limits on attacker-controlled repetition.
const (
	maxNameComponents = 10
	maxAuthzElements  = 64
	maxAddresses      = 64
)

// Application tags of the messages we read or write (RFC 4120 §5.10).
const (
	tagTicket        = 1
	tagAuthenticator = 2
	tagEncTicketPart = 3
	tagAPReq         = 14
	tagAPRep         = 15
	tagEncAPRepPart  = 27
)

const tagGeneralString = casn1.Tag(27)

// PrincipalName is a Kerberos principal name without its realm.
type PrincipalName struct {
	NameType   int32
	Components []string
}

// String joins the components with "/", e.g. "HTTP/sso.example.test".
func (p PrincipalName) String() string { return strings.Join(p.Components, "/") }

// Equal reports whether two names have the same components (name types are ignored,
// as RFC 4120 §6.2 allows).
func (p PrincipalName) Equal(o PrincipalName) bool {
	if len(p.Components) != len(o.Components) {
		return false
	}
	for i := range p.Components {
		if p.Components[i] != o.Components[i] {
			return false
		}
	}
	return true
}

// EncryptedData is RFC 4120's EncryptedData. Cipher aliases the input.
type EncryptedData struct {
	EType   int32
	KVNO    uint32
	HasKVNO bool
	Cipher  []byte
}

// EncryptionKey is a key and its enctype. Value aliases the decrypted input.
type EncryptionKey struct {
	KeyType int32
	Value   []byte
}

// Checksum is RFC 4120's Checksum.
type Checksum struct {
	Type  int32
	Value []byte
}

// AuthorizationData is one element of an AuthorizationData sequence.
type AuthorizationData struct {
	Type int32
	Data []byte
}

// Ticket is the clear part of a Kerberos ticket.
type Ticket struct {
	Realm   string
	SName   PrincipalName
	EncPart EncryptedData
}

// APReq is a decoded KRB_AP_REQ.
type APReq struct {
	APOptions     uint32 // first 32 bits of the BIT STRING, bit 0 is the MSB
	Ticket        Ticket
	Authenticator EncryptedData
}

// AP options (RFC 4120 §5.5.1), numbered from the most significant bit.
const (
	APOptionUseSessionKey  = 1 << (31 - 1)
	APOptionMutualRequired = 1 << (31 - 2)
)

// MutualRequired reports whether the client asked for mutual authentication.
func (r *APReq) MutualRequired() bool { return r.APOptions&APOptionMutualRequired != 0 }

// EncTicketPart is the decrypted part of a ticket.
type EncTicketPart struct {
	Flags         uint32
	Key           EncryptionKey
	CRealm        string
	CName         PrincipalName
	AuthTime      time.Time
	StartTime     time.Time // zero when absent (then AuthTime applies)
	EndTime       time.Time
	RenewTill     time.Time
	Authorization []AuthorizationData
}

// Authenticator is a decrypted authenticator.
type Authenticator struct {
	CRealm        string
	CName         PrincipalName
	Checksum      *Checksum
	CUSec         int32
	CTime         time.Time
	SubKey        *EncryptionKey
	SeqNumber     uint32
	HasSeqNumber  bool
	Authorization []AuthorizationData
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

func ctx(n int) casn1.Tag { return casn1.Tag(n).Constructed().ContextSpecific() }

func app(n int) casn1.Tag { return casn1.Tag(n).Constructed() | 0x40 }

// readExplicit reads a mandatory [n] EXPLICIT wrapper.
func readExplicit(s *cryptobyte.String, n int, out *cryptobyte.String) bool {
	return s.ReadASN1(out, ctx(n))
}

// readOptionalExplicit reads an optional [n] EXPLICIT wrapper.
func readOptionalExplicit(s *cryptobyte.String, n int, out *cryptobyte.String) (present, ok bool) {
	if !s.PeekASN1Tag(ctx(n)) {
		return false, true
	}
	return true, s.ReadASN1(out, ctx(n))
}

func readInt32(s *cryptobyte.String, n int, v *int32) bool {
	var w cryptobyte.String
	var i int64
	if !readExplicit(s, n, &w) || !w.ReadASN1Integer(&i) || !w.Empty() {
		return false
	}
	if i < -1<<31 || i > 1<<31-1 {
		return false
	}
	*v = int32(i)
	return true
}

func readUInt32(s *cryptobyte.String, n int, v *uint32) bool {
	var w cryptobyte.String
	var i int64
	if !readExplicit(s, n, &w) || !w.ReadASN1Integer(&i) || !w.Empty() {
		return false
	}
	// Some implementations encode UInt32 values as negative Int32 (MS-KILE notes
	// sequence numbers this way); accept both and keep the 32 bits.
	if i < -1<<31 || i > 1<<32-1 {
		return false
	}
	*v = uint32(i)
	return true
}

func readOctets(s *cryptobyte.String, n int, v *[]byte) bool {
	var w, o cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&o, casn1.OCTET_STRING) || !w.Empty() {
		return false
	}
	*v = o
	return true
}

func readRealm(s *cryptobyte.String, n int, v *string) bool {
	var w, o cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&o, tagGeneralString) || !w.Empty() {
		return false
	}
	*v = string(o)
	return true
}

func readPrincipal(s *cryptobyte.String, n int, p *PrincipalName) bool {
	var w, seq, names cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&seq, casn1.SEQUENCE) || !w.Empty() {
		return false
	}
	if !readInt32(&seq, 0, &p.NameType) {
		return false
	}
	var nw cryptobyte.String
	if !readExplicit(&seq, 1, &nw) || !nw.ReadASN1(&names, casn1.SEQUENCE) || !nw.Empty() || !seq.Empty() {
		return false
	}
	p.Components = p.Components[:0]
	for !names.Empty() {
		var c cryptobyte.String
		if !names.ReadASN1(&c, tagGeneralString) {
			return false
		}
		if len(p.Components) == maxNameComponents {
			return false
		}
		p.Components = append(p.Components, string(c))
	}
	return true
}

func readEncryptedData(s *cryptobyte.String, n int, e *EncryptedData) bool {
	var w, seq cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&seq, casn1.SEQUENCE) || !w.Empty() {
		return false
	}
	if !readInt32(&seq, 0, &e.EType) {
		return false
	}
	if seq.PeekASN1Tag(ctx(1)) {
		if !readUInt32(&seq, 1, &e.KVNO) {
			return false
		}
		e.HasKVNO = true
	}
	return readOctets(&seq, 2, &e.Cipher) && seq.Empty()
}

func readEncryptionKey(s *cryptobyte.String, n int, k *EncryptionKey) bool {
	var w, seq cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&seq, casn1.SEQUENCE) || !w.Empty() {
		return false
	}
	return readInt32(&seq, 0, &k.KeyType) && readOctets(&seq, 1, &k.Value) && seq.Empty()
}

// readKerberosTime reads a [n] GeneralizedTime in Kerberos' fixed form YYYYMMDDHHMMSSZ.
func readKerberosTime(s *cryptobyte.String, n int, t *time.Time) bool {
	var w, g cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&g, casn1.GeneralizedTime) || !w.Empty() {
		return false
	}
	var ok bool
	*t, ok = parseKerberosTime(g)
	return ok
}

func parseKerberosTime(b []byte) (time.Time, bool) {
	if len(b) != 15 || b[14] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 2)
	d, ok3 := num(6, 2)
	h, ok4 := num(8, 2)
	mi, ok5 := num(10, 2)
	se, ok6 := num(12, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC), true
}

func readFlags(s *cryptobyte.String, n int, v *uint32) bool {
	var w cryptobyte.String
	var bs casn1.Tag = casn1.BIT_STRING
	var bits cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&bits, bs) || !w.Empty() {
		return false
	}
	// bits[0] is the count of unused bits; Kerberos flags are at least 32 bits but
	// some encoders send fewer bytes: missing bits are zero.
	if len(bits) < 1 || bits[0] > 7 {
		return false
	}
	var f uint32
	for i := 0; i < 4; i++ {
		f <<= 8
		if 1+i < len(bits) {
			f |= uint32(bits[1+i])
		}
	}
	*v = f
	return true
}

func readAuthorizationData(s *cryptobyte.String, n int, out *[]AuthorizationData) bool {
	var w, seq cryptobyte.String
	if !readExplicit(s, n, &w) || !w.ReadASN1(&seq, casn1.SEQUENCE) || !w.Empty() {
		return false
	}
	return parseAuthorizationData(seq, out)
}

func parseAuthorizationData(seq cryptobyte.String, out *[]AuthorizationData) bool {
	for !seq.Empty() {
		var el cryptobyte.String
		var ad AuthorizationData
		if !seq.ReadASN1(&el, casn1.SEQUENCE) || !readInt32(&el, 0, &ad.Type) || !readOctets(&el, 1, &ad.Data) || !el.Empty() {
			return false
		}
		if len(*out) == maxAuthzElements {
			return false
		}
		*out = append(*out, ad)
	}
	return true
}

// ParseAuthorizationData decodes a DER AuthorizationData sequence, such as the
// contents of an AD-IF-RELEVANT element.
func ParseAuthorizationData(b []byte) ([]AuthorizationData, error) {
	s := cryptobyte.String(b)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("AuthorizationData")
	}
	var out []AuthorizationData
	if !parseAuthorizationData(seq, &out) {
		return nil, malformed("AuthorizationData element")
	}
	return out, nil
}

func readVersion(s *cryptobyte.String, n int, want int32, what string) error {
	var v int32
	if !readInt32(s, n, &v) {
		return malformed(what)
	}
	if v != want {
		return malformed(fmt.Sprintf("%s is %d, expected %d", what, v, want))
	}
	return nil
}

// ParseAPReq decodes a DER KRB_AP_REQ.
func ParseAPReq(b []byte) (*APReq, error) {
	r := new(APReq)
	if err := r.Unmarshal(b); err != nil {
		return nil, err
	}
	return r, nil
}

// Unmarshal decodes a DER KRB_AP_REQ into r, reusing r's slices.
func (r *APReq) Unmarshal(b []byte) error {
	s := cryptobyte.String(b)
	var body, seq cryptobyte.String
	if !s.ReadASN1(&body, app(tagAPReq)) || !s.Empty() {
		return malformed("not an AP-REQ ([APPLICATION 14])")
	}
	if !body.ReadASN1(&seq, casn1.SEQUENCE) || !body.Empty() {
		return malformed("AP-REQ body is not a SEQUENCE")
	}
	if err := readVersion(&seq, 0, 5, "AP-REQ pvno"); err != nil {
		return err
	}
	if err := readVersion(&seq, 1, tagAPReq, "AP-REQ msg-type"); err != nil {
		return err
	}
	if !readFlags(&seq, 2, &r.APOptions) {
		return malformed("AP-REQ ap-options")
	}
	var tw cryptobyte.String
	if !readExplicit(&seq, 3, &tw) {
		return malformed("AP-REQ ticket")
	}
	if err := r.Ticket.unmarshal(tw); err != nil {
		return err
	}
	if !readEncryptedData(&seq, 4, &r.Authenticator) || !seq.Empty() {
		return malformed("AP-REQ authenticator")
	}
	return nil
}

func (t *Ticket) unmarshal(s cryptobyte.String) error {
	var body, seq cryptobyte.String
	if !s.ReadASN1(&body, app(tagTicket)) || !s.Empty() || !body.ReadASN1(&seq, casn1.SEQUENCE) || !body.Empty() {
		return malformed("not a Ticket ([APPLICATION 1])")
	}
	if err := readVersion(&seq, 0, 5, "ticket tkt-vno"); err != nil {
		return err
	}
	if !readRealm(&seq, 1, &t.Realm) || !readPrincipal(&seq, 2, &t.SName) {
		return malformed("ticket realm or sname")
	}
	if !readEncryptedData(&seq, 3, &t.EncPart) || !seq.Empty() {
		return malformed("ticket enc-part")
	}
	return nil
}

// ParseEncTicketPart decodes a decrypted EncTicketPart.
func ParseEncTicketPart(b []byte, e *EncTicketPart) error {
	s := cryptobyte.String(b)
	var body, seq cryptobyte.String
	// Decrypted plaintext may carry padding after the DER value (RFC 3961 allows
	// it for some enctypes), so trailing bytes after the outer value are ignored.
	if !s.ReadASN1(&body, app(tagEncTicketPart)) || !body.ReadASN1(&seq, casn1.SEQUENCE) || !body.Empty() {
		return malformed("not an EncTicketPart ([APPLICATION 3])")
	}
	if !readFlags(&seq, 0, &e.Flags) || !readEncryptionKey(&seq, 1, &e.Key) {
		return malformed("EncTicketPart flags or key")
	}
	if !readRealm(&seq, 2, &e.CRealm) || !readPrincipal(&seq, 3, &e.CName) {
		return malformed("EncTicketPart crealm or cname")
	}
	var tr cryptobyte.String
	if !readExplicit(&seq, 4, &tr) { // transited: not used by an acceptor of this kind
		return malformed("EncTicketPart transited")
	}
	if !readKerberosTime(&seq, 5, &e.AuthTime) {
		return malformed("EncTicketPart authtime")
	}
	e.StartTime, e.RenewTill = time.Time{}, time.Time{}
	if seq.PeekASN1Tag(ctx(6)) && !readKerberosTime(&seq, 6, &e.StartTime) {
		return malformed("EncTicketPart starttime")
	}
	if !readKerberosTime(&seq, 7, &e.EndTime) {
		return malformed("EncTicketPart endtime")
	}
	if seq.PeekASN1Tag(ctx(8)) && !readKerberosTime(&seq, 8, &e.RenewTill) {
		return malformed("EncTicketPart renew-till")
	}
	// caddr [9]: ticket addresses are deliberately ignored (NAT, load balancers),
	// but the field must still be well formed.
	var addrs cryptobyte.String
	if present, ok := readOptionalExplicit(&seq, 9, &addrs); !ok {
		return malformed("EncTicketPart caddr")
	} else if present {
		var list cryptobyte.String
		if !addrs.ReadASN1(&list, casn1.SEQUENCE) || !addrs.Empty() {
			return malformed("EncTicketPart caddr")
		}
		for n := 0; !list.Empty(); n++ {
			var a cryptobyte.String
			if n == maxAddresses || !list.ReadASN1(&a, casn1.SEQUENCE) {
				return malformed("EncTicketPart caddr element")
			}
		}
	}
	e.Authorization = e.Authorization[:0]
	if seq.PeekASN1Tag(ctx(10)) && !readAuthorizationData(&seq, 10, &e.Authorization) {
		return malformed("EncTicketPart authorization-data")
	}
	if !seq.Empty() {
		return malformed("EncTicketPart has unexpected trailing fields")
	}
	return nil
}

// ParseAuthenticator decodes a decrypted Authenticator.
func ParseAuthenticator(b []byte, a *Authenticator) error {
	s := cryptobyte.String(b)
	var body, seq cryptobyte.String
	if !s.ReadASN1(&body, app(tagAuthenticator)) || !body.ReadASN1(&seq, casn1.SEQUENCE) || !body.Empty() {
		return malformed("not an Authenticator ([APPLICATION 2])")
	}
	if err := readVersion(&seq, 0, 5, "authenticator-vno"); err != nil {
		return err
	}
	if !readRealm(&seq, 1, &a.CRealm) || !readPrincipal(&seq, 2, &a.CName) {
		return malformed("authenticator crealm or cname")
	}
	a.Checksum = nil
	var cw cryptobyte.String
	if present, ok := readOptionalExplicit(&seq, 3, &cw); !ok {
		return malformed("authenticator cksum")
	} else if present {
		var cs cryptobyte.String
		c := new(Checksum)
		if !cw.ReadASN1(&cs, casn1.SEQUENCE) || !cw.Empty() || !readInt32(&cs, 0, &c.Type) || !readOctets(&cs, 1, &c.Value) || !cs.Empty() {
			return malformed("authenticator cksum")
		}
		a.Checksum = c
	}
	if !readInt32(&seq, 4, &a.CUSec) || a.CUSec < 0 || a.CUSec > 999999 {
		return malformed("authenticator cusec")
	}
	if !readKerberosTime(&seq, 5, &a.CTime) {
		return malformed("authenticator ctime")
	}
	a.SubKey = nil
	if seq.PeekASN1Tag(ctx(6)) {
		k := new(EncryptionKey)
		if !readEncryptionKey(&seq, 6, k) {
			return malformed("authenticator subkey")
		}
		a.SubKey = k
	}
	a.HasSeqNumber = false
	if seq.PeekASN1Tag(ctx(7)) {
		if !readUInt32(&seq, 7, &a.SeqNumber) {
			return malformed("authenticator seq-number")
		}
		a.HasSeqNumber = true
	}
	a.Authorization = a.Authorization[:0]
	if seq.PeekASN1Tag(ctx(8)) && !readAuthorizationData(&seq, 8, &a.Authorization) {
		return malformed("authenticator authorization-data")
	}
	if !seq.Empty() {
		return malformed("authenticator has unexpected trailing fields")
	}
	return nil
}

func addExplicitInt(b *cryptobyte.Builder, n int, v int64) {
	b.AddASN1(ctx(n), func(b *cryptobyte.Builder) { b.AddASN1Int64(v) })
}

// The AP-REP is written on every mutual sign-in, so it is encoded by hand into one
// exactly sized allocation instead of through cryptobyte's builder.

// derHdrLen is the size of a tag and a definite length for n content bytes.
func derHdrLen(n int) int {
	switch {
	case n < 0x80:
		return 2
	case n <= 0xff:
		return 3
	case n <= 0xffff:
		return 4
	case n <= 0xffffff:
		return 5
	}
	return 6
}

func appendDERHdr(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// derIntLen is the content size of a DER INTEGER holding v.
func derIntLen(v int64) int {
	n := 1
	for v > 127 || v < -128 {
		v >>= 8
		n++
	}
	return n
}

func appendDERInt(b []byte, v int64) []byte {
	n := derIntLen(v)
	b = appendDERHdr(b, 0x02, n)
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// explicitIntLen is the encoded size of [n] EXPLICIT INTEGER v.
func explicitIntLen(v int64) int {
	in := 2 + derIntLen(v)
	return derHdrLen(in) + in
}

func appendExplicitInt(b []byte, n int, v int64) []byte {
	b = appendDERHdr(b, 0xa0|byte(n), 2+derIntLen(v))
	return appendDERInt(b, v)
}

func appendKerberosTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	for _, v := range [...]int{int(mo), d, h, mi, s} {
		b = append(b, byte('0'+v/10), byte('0'+v%10))
	}
	return append(b, 'Z')
}

// EncAPRepPart is the encrypted part of an AP-REP.
type EncAPRepPart struct {
	CTime     time.Time
	CUSec     int32
	SubKey    *EncryptionKey
	SeqNumber uint32
	HasSeq    bool
}

// MarshalEncAPRepPart encodes an EncAPRepPart ([APPLICATION 27]).
func MarshalEncAPRepPart(p *EncAPRepPart) ([]byte, error) {
	if p.SubKey != nil {
		return marshalEncAPRepPartSubKey(p)
	}
	const timeLen = 2 + 2 + 15 // [0] { GeneralizedTime "YYYYMMDDHHMMSSZ" }
	seqLen := timeLen + explicitIntLen(int64(p.CUSec))
	if p.HasSeq {
		seqLen += explicitIntLen(int64(p.SeqNumber))
	}
	appLen := derHdrLen(seqLen) + seqLen
	b := make([]byte, 0, derHdrLen(appLen)+appLen)
	b = appendDERHdr(b, 0x40|0x20|tagEncAPRepPart, appLen)
	b = appendDERHdr(b, 0x30, seqLen)
	b = append(b, 0xa0, 17, 0x18, 15)
	b = appendKerberosTime(b, p.CTime)
	b = appendExplicitInt(b, 1, int64(p.CUSec))
	if p.HasSeq {
		b = appendExplicitInt(b, 3, int64(p.SeqNumber))
	}
	return b, nil
}

// marshalEncAPRepPartSubKey is the general (rare) form with a subkey.
func marshalEncAPRepPartSubKey(p *EncAPRepPart) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(app(tagEncAPRepPart), func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(p.CTime.UTC().Format("20060102150405Z")))
				})
			})
			addExplicitInt(b, 1, int64(p.CUSec))
			b.AddASN1(ctx(2), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addExplicitInt(b, 0, int64(p.SubKey.KeyType))
					b.AddASN1(ctx(1), func(b *cryptobyte.Builder) { b.AddASN1OctetString(p.SubKey.Value) })
				})
			})
			if p.HasSeq {
				addExplicitInt(b, 3, int64(p.SeqNumber))
			}
		})
	})
	return b.Bytes()
}

// MarshalAPRep encodes a KRB_AP_REP around an already encrypted EncAPRepPart.
func MarshalAPRep(etype int32, cipher []byte) ([]byte, error) {
	octLen := derHdrLen(len(cipher)) + len(cipher)
	encSeqLen := explicitIntLen(int64(etype)) + derHdrLen(octLen) + octLen
	encLen := derHdrLen(encSeqLen) + encSeqLen
	seqLen := explicitIntLen(5) + explicitIntLen(tagAPRep) + derHdrLen(encLen) + encLen
	appLen := derHdrLen(seqLen) + seqLen
	b := make([]byte, 0, derHdrLen(appLen)+appLen)
	b = appendDERHdr(b, 0x40|0x20|tagAPRep, appLen)
	b = appendDERHdr(b, 0x30, seqLen)
	b = appendExplicitInt(b, 0, 5)
	b = appendExplicitInt(b, 1, tagAPRep)
	b = appendDERHdr(b, 0xa2, encLen)
	b = appendDERHdr(b, 0x30, encSeqLen)
	b = appendExplicitInt(b, 0, int64(etype))
	b = appendDERHdr(b, 0xa2, octLen)
	b = appendDERHdr(b, 0x04, len(cipher))
	return append(b, cipher...), nil
}
