// Package fast is Kerberos FAST armouring (RFC 6113) from the client's side: an
// armor made from kerbgate's own TGT, the armored request a KDC decrypts with it,
// and the armored reply and error it answers.
//
// FAST puts a user's pre-authentication inside a tunnel keyed by the armor key, which
// only the KDC and the holder of the armor TGT know: a passive listener on the way to
// the KDC sees no encrypted timestamp to guess the password offline from, and the
// KDC's answers (errors included) are authenticated.
//
// It owns the FAST messages' encoding and decoding and the armor key. It must not
// choose enctypes, talk to the KDC, know passwords or decide what an answer means
// (package logon does). Parsers take untrusted bytes and never panic.
package fast

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

// Pre-authentication data types of FAST (RFC 6113 §7) and the ones it carries.
const (
	PAEncTimestamp       = 2
	PAETypeInfo2         = 19
	PAPACRequest         = 128
	PAFXCookie           = 133
	PAFXFAST             = 136
	PAFXError            = 137
	PAEncryptedChallenge = 138
)

// armorAPRequest is FX_FAST_ARMOR_AP_REQUEST (RFC 6113 §5.4.1.1).
const armorAPRequest = 1

// ErrMalformed means a FAST message does not decode.
var ErrMalformed = errors.New("fast: malformed message")

// PAData is one element of a PA-DATA sequence.
type PAData struct {
	Type  int32
	Value []byte
}

// Find returns the value of the first element of type t.
func Find(pas []PAData, t int32) ([]byte, bool) {
	for _, p := range pas {
		if p.Type == t {
			return p.Value, true
		}
	}
	return nil, false
}

// Armor is an armor for one exchange: the AP-REQ that carries kerbgate's TGT to the
// KDC with a fresh subkey, and the armor key both sides derive from it.
type Armor struct {
	apReq []byte
	key   *kcrypto.Key
}

// Key is the armor key.
func (a *Armor) Key() *kcrypto.Key { return a.key }

// NewArmor makes an armor from a TGT (its DER Ticket and session key) of client in
// realm: an AP-REQ whose authenticator carries a random subkey of the session key's
// enctype, and the armor key KRB-FX-CF2(subkey, session key, "subkeyarmor",
// "ticketarmor") (RFC 6113 §5.4.1.1). rnd is crypto/rand when nil.
func NewArmor(tgt []byte, sessionKey *kcrypto.Key, client wire.PrincipalName, realm string, now time.Time, rnd io.Reader) (*Armor, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	sub := make([]byte, len(sessionKey.Value()))
	if _, err := io.ReadFull(rnd, sub); err != nil {
		return nil, err
	}
	subKey, err := kcrypto.NewKey(sessionKey.EType(), sub)
	if err != nil {
		return nil, err
	}
	auth := wire.Authenticator{
		CRealm: realm,
		CName:  client,
		CUSec:  int32(now.Nanosecond() / 1000),
		CTime:  now.Truncate(time.Second),
		SubKey: &wire.EncryptionKey{KeyType: subKey.EType(), Value: subKey.Value()},
	}
	plain, err := wire.MarshalAuthenticator(&auth)
	if err != nil {
		return nil, err
	}
	ct, err := sessionKey.Encrypt(kcrypto.UsageAPReqAuth, plain, rnd)
	if err != nil {
		return nil, err
	}
	ap, err := wire.MarshalAPReq(0, tgt, wire.EncryptedData{EType: sessionKey.EType(), Cipher: ct})
	if err != nil {
		return nil, err
	}
	key, err := kcrypto.CF2(subKey, sessionKey, "subkeyarmor", "ticketarmor")
	if err != nil {
		return nil, err
	}
	return &Armor{apReq: ap, key: key}, nil
}

// Request returns the value of PA-FX-FAST (a PA-FX-FAST-REQUEST) for an AS-REQ whose
// body is outerBody (its DER, as sent: the checksum covers it): the armor, a
// checksum of outerBody under the armor key, and the encrypted KrbFastReq with the
// inner pre-authentication data and body the KDC acts on (RFC 6113 §5.4.2).
func (a *Armor) Request(outerBody []byte, inner []PAData, innerBody []byte, rnd io.Reader) ([]byte, error) {
	sum, err := a.key.Checksum(kcrypto.UsageFASTReqChecksum, outerBody)
	if err != nil {
		return nil, err
	}
	var fr cryptobyte.Builder
	fr.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1BitString([]byte{0, 0, 0, 0}) }) // fast-options: none
		explicit(b, 1, func(b *cryptobyte.Builder) { addPAData(b, inner) })
		explicit(b, 2, func(b *cryptobyte.Builder) { b.AddBytes(innerBody) })
	})
	fastReq, err := fr.Bytes()
	if err != nil {
		return nil, err
	}
	ct, err := a.key.Encrypt(kcrypto.UsageFASTEnc, fastReq, rnd)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	explicit(&b, 0, func(b *cryptobyte.Builder) { // PA-FX-FAST-REQUEST: armored-data [0]
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { // KrbFastArmoredReq
			explicit(b, 0, func(b *cryptobyte.Builder) { // KrbFastArmor
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					explicitInt(b, 0, armorAPRequest)
					explicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1OctetString(a.apReq) })
				})
			})
			explicit(b, 1, func(b *cryptobyte.Builder) { addChecksum(b, a.key.ChecksumType(), sum) })
			explicit(b, 2, func(b *cryptobyte.Builder) { addEncryptedData(b, a.key.EType(), ct) })
		})
	})
	return b.Bytes()
}

// Response is a decrypted KrbFastResponse (RFC 6113 §5.4.3).
type Response struct {
	PAData []PAData
	// StrengthenKey, when the KDC sends one, replaces the reply key by
	// KRB-FX-CF2(strengthen key, reply key, "strengthenkey", "replykey").
	StrengthenKey *kcrypto.Key
	// Finished is present in an AS-REP, absent in an error.
	Finished *Finished
	Nonce    uint32
}

// Finished is KrbFastFinished: the client's name as the KDC vouches for it, and a
// checksum of the ticket under the armor key.
type Finished struct {
	Time           time.Time
	CRealm         string
	CName          wire.PrincipalName
	ChecksumType   int32
	TicketChecksum []byte
}

// Reply decrypts the value of a PA-FX-FAST in a reply (a PA-FX-FAST-REPLY) with the
// armor key.
func (a *Armor) Reply(v []byte) (*Response, error) {
	s := cryptobyte.String(v)
	var armored, seq, enc cryptobyte.String
	if !s.ReadASN1(&armored, ctx(0)) || !s.Empty() || !armored.ReadASN1(&seq, casn1.SEQUENCE) || !armored.Empty() ||
		!seq.ReadASN1(&enc, ctx(0)) {
		return nil, fmt.Errorf("%w: PA-FX-FAST-REPLY", ErrMalformed)
	}
	et, cipher, ok := readEncryptedData(enc)
	if !ok {
		return nil, fmt.Errorf("%w: KrbFastArmoredRep.enc-fast-rep", ErrMalformed)
	}
	if et != a.key.EType() {
		return nil, fmt.Errorf("%w: enc-fast-rep of enctype %d, armor key of %d", ErrMalformed, et, a.key.EType())
	}
	plain, err := a.key.Decrypt(kcrypto.UsageFASTRep, cipher)
	if err != nil {
		return nil, fmt.Errorf("fast: reply does not decrypt with the armor key: %w", err)
	}
	return parseResponse(plain)
}

func parseResponse(b []byte) (*Response, error) {
	s := cryptobyte.String(b)
	var seq, padataField, padata cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1(&padataField, ctx(0)) || !padataField.ReadASN1(&padata, casn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: KrbFastResponse", ErrMalformed)
	}
	r := &Response{}
	var err error
	if r.PAData, err = parsePAData(padata); err != nil {
		return nil, err
	}
	var f cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&f, &present, ctx(1)) {
		return nil, fmt.Errorf("%w: strengthen-key", ErrMalformed)
	}
	if present {
		et, v, ok := readEncryptionKey(f)
		if !ok {
			return nil, fmt.Errorf("%w: strengthen-key", ErrMalformed)
		}
		if r.StrengthenKey, err = kcrypto.NewKey(et, v); err != nil {
			return nil, fmt.Errorf("fast: strengthen-key: %w", err)
		}
	}
	if !seq.ReadOptionalASN1(&f, &present, ctx(2)) {
		return nil, fmt.Errorf("%w: finished", ErrMalformed)
	}
	if present {
		if r.Finished, err = parseFinished(f); err != nil {
			return nil, err
		}
	}
	var n cryptobyte.String
	var nonce int64
	if !seq.ReadASN1(&n, ctx(3)) || !n.ReadASN1Int64WithTag(&nonce, casn1.INTEGER) || nonce < 0 || nonce > 1<<32-1 {
		return nil, fmt.Errorf("%w: nonce", ErrMalformed)
	}
	r.Nonce = uint32(nonce)
	return r, nil
}

func parseFinished(f cryptobyte.String) (*Finished, error) {
	var seq cryptobyte.String
	bad := fmt.Errorf("%w: KrbFastFinished", ErrMalformed)
	if !f.ReadASN1(&seq, casn1.SEQUENCE) {
		return nil, bad
	}
	// timestamp [0], usec [1], crealm [2], cname [3], ticket-checksum [4]
	var fin Finished
	var t, usec, realm, name, sum cryptobyte.String
	if !seq.ReadASN1(&t, ctx(0)) || !seq.ReadASN1(&usec, ctx(1)) || !seq.ReadASN1(&realm, ctx(2)) ||
		!seq.ReadASN1(&name, ctx(3)) || !seq.ReadASN1(&sum, ctx(4)) {
		return nil, bad
	}
	var gt cryptobyte.String
	if !t.ReadASN1(&gt, casn1.GeneralizedTime) {
		return nil, bad
	}
	tm, err := time.Parse("20060102150405Z", string(gt))
	if err != nil {
		return nil, bad
	}
	fin.Time = tm
	var rs cryptobyte.String
	if !realm.ReadASN1(&rs, tagGeneralString) {
		return nil, bad
	}
	fin.CRealm = string(rs)
	var ok bool
	if fin.CName, ok = readPrincipal(name); !ok {
		return nil, bad
	}
	if fin.ChecksumType, fin.TicketChecksum, ok = readChecksum(sum); !ok {
		return nil, bad
	}
	return &fin, nil
}

// ErrorIn returns the KRB-ERROR (DER) of PA-FX-ERROR in a decrypted error
// response, if the KDC put one there.
func (r *Response) ErrorIn() ([]byte, bool) { return Find(r.PAData, PAFXError) }

// ParseMethodData decodes a METHOD-DATA (a KRB-ERROR's e-data) or any PA-DATA
// sequence.
func ParseMethodData(b []byte) ([]PAData, error) {
	s := cryptobyte.String(b)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !s.Empty() {
		return nil, fmt.Errorf("%w: METHOD-DATA", ErrMalformed)
	}
	return parsePAData(seq)
}

// parsePAData reads the elements of a SEQUENCE OF PA-DATA.
func parsePAData(seq cryptobyte.String) ([]PAData, error) {
	var out []PAData
	for !seq.Empty() {
		var pa, t, v cryptobyte.String
		var typ int64
		var val []byte
		if !seq.ReadASN1(&pa, casn1.SEQUENCE) || !pa.ReadASN1(&t, ctx(1)) || !t.ReadASN1Int64WithTag(&typ, casn1.INTEGER) ||
			!pa.ReadASN1(&v, ctx(2)) || !v.ReadASN1Bytes(&val, casn1.OCTET_STRING) || typ < -1<<31 || typ > 1<<31-1 {
			return nil, fmt.Errorf("%w: PA-DATA", ErrMalformed)
		}
		out = append(out, PAData{Type: int32(typ), Value: val})
		if len(out) > 64 {
			return nil, fmt.Errorf("%w: more than 64 PA-DATA", ErrMalformed)
		}
	}
	return out, nil
}

// EncryptedChallenge returns the value of PA-ENCRYPTED-CHALLENGE (RFC 6113 §5.4.6):
// a PA-ENC-TS-ENC of now, encrypted with KRB-FX-CF2(armor key, long-term key,
// "clientchallengearmor", "challengelongterm").
func (a *Armor) EncryptedChallenge(longTerm *kcrypto.Key, now time.Time, rnd io.Reader) ([]byte, error) {
	ck, err := kcrypto.CF2(a.key, longTerm, "clientchallengearmor", "challengelongterm")
	if err != nil {
		return nil, err
	}
	return EncryptedTimestamp(ck, kcrypto.UsageEncChallengeClient, now, rnd)
}

// VerifyKDCChallenge checks the KDC's PA-ENCRYPTED-CHALLENGE in an AS-REP: it
// decrypts with KRB-FX-CF2(armor key, long-term key, "kdcchallengearmor",
// "challengelongterm"), which proves the KDC knows the user's key.
func (a *Armor) VerifyKDCChallenge(longTerm *kcrypto.Key, v []byte) error {
	ck, err := kcrypto.CF2(a.key, longTerm, "kdcchallengearmor", "challengelongterm")
	if err != nil {
		return err
	}
	et, cipher, ok := readEncryptedData(cryptobyte.String(v))
	if !ok || et != ck.EType() {
		return fmt.Errorf("%w: KDC's PA-ENCRYPTED-CHALLENGE", ErrMalformed)
	}
	_, err = ck.Decrypt(kcrypto.UsageEncChallengeKDC, cipher)
	return err
}

// EncryptedTimestamp returns an EncryptedData (DER) of PA-ENC-TS-ENC with now,
// encrypted with key for usage: PA-ENC-TIMESTAMP with the long-term key and usage
// 1, or the encrypted challenge.
func EncryptedTimestamp(key *kcrypto.Key, usage uint32, now time.Time, rnd io.Reader) ([]byte, error) {
	var ts cryptobyte.Builder
	ts.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicit(b, 0, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(now.UTC().Format("20060102150405Z")))
			})
		})
		explicitInt(b, 1, int64(now.Nanosecond()/1000))
	})
	plain, err := ts.Bytes()
	if err != nil {
		return nil, err
	}
	ct, err := key.Encrypt(usage, plain, rnd)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	addEncryptedData(&b, key.EType(), ct)
	return b.Bytes()
}

// VerifyTicketChecksum checks KrbFastFinished's ticket-checksum over the reply's
// ticket (DER) with the armor key: the ticket is the one the KDC issued in this
// armored exchange.
func (a *Armor) VerifyTicketChecksum(f *Finished, ticket []byte) bool {
	return f.ChecksumType == a.key.ChecksumType() && a.key.VerifyChecksum(kcrypto.UsageFASTFinished, f.TicketChecksum, ticket)
}

// MarshalPAData encodes a SEQUENCE OF PA-DATA.
func MarshalPAData(pas []PAData) ([]byte, error) {
	var b cryptobyte.Builder
	addPAData(&b, pas)
	return b.Bytes()
}

// ETypeInfo2 is one entry of PA-ETYPE-INFO2: an enctype the KDC has a key of for the
// user, with its salt and string-to-key parameters.
type ETypeInfo2 struct {
	EType     int32
	Salt      string
	HasSalt   bool
	S2KParams []byte
}

// ParseETypeInfo2 decodes PA-ETYPE-INFO2 (RFC 4120 §5.2.7.5).
func ParseETypeInfo2(b []byte) ([]ETypeInfo2, error) {
	s := cryptobyte.String(b)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !s.Empty() {
		return nil, fmt.Errorf("%w: ETYPE-INFO2", ErrMalformed)
	}
	var out []ETypeInfo2
	for !seq.Empty() {
		var e, f cryptobyte.String
		var present bool
		var et int64
		var entry ETypeInfo2
		if !seq.ReadASN1(&e, casn1.SEQUENCE) || !e.ReadASN1(&f, ctx(0)) || !f.ReadASN1Int64WithTag(&et, casn1.INTEGER) ||
			et < -1<<31 || et > 1<<31-1 {
			return nil, fmt.Errorf("%w: ETYPE-INFO2-ENTRY", ErrMalformed)
		}
		entry.EType = int32(et)
		if !e.ReadOptionalASN1(&f, &present, ctx(1)) {
			return nil, fmt.Errorf("%w: ETYPE-INFO2 salt", ErrMalformed)
		}
		if present {
			var salt cryptobyte.String
			if !f.ReadASN1(&salt, tagGeneralString) {
				return nil, fmt.Errorf("%w: ETYPE-INFO2 salt", ErrMalformed)
			}
			entry.Salt, entry.HasSalt = string(salt), true
		}
		if !e.ReadOptionalASN1(&f, &present, ctx(2)) {
			return nil, fmt.Errorf("%w: ETYPE-INFO2 s2kparams", ErrMalformed)
		}
		if present && !f.ReadASN1Bytes(&entry.S2KParams, casn1.OCTET_STRING) {
			return nil, fmt.Errorf("%w: ETYPE-INFO2 s2kparams", ErrMalformed)
		}
		out = append(out, entry)
		if len(out) > 16 {
			return nil, fmt.Errorf("%w: more than 16 ETYPE-INFO2 entries", ErrMalformed)
		}
	}
	return out, nil
}

// tagGeneralString is the universal tag of KerberosString.
const tagGeneralString = casn1.Tag(27)

func ctx(n int) casn1.Tag { return casn1.Tag(n).Constructed().ContextSpecific() }

func explicit(b *cryptobyte.Builder, n int, f cryptobyte.BuilderContinuation) { b.AddASN1(ctx(n), f) }

func explicitInt(b *cryptobyte.Builder, n int, v int64) {
	explicit(b, n, func(b *cryptobyte.Builder) { b.AddASN1Int64(v) })
}

func addPAData(b *cryptobyte.Builder, pas []PAData) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, p := range pas {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				explicitInt(b, 1, int64(p.Type))
				explicit(b, 2, func(b *cryptobyte.Builder) { b.AddASN1OctetString(p.Value) })
			})
		}
	})
}

func addChecksum(b *cryptobyte.Builder, typ int32, v []byte) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicitInt(b, 0, int64(typ))
		explicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1OctetString(v) })
	})
}

func addEncryptedData(b *cryptobyte.Builder, et int32, ct []byte) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicitInt(b, 0, int64(et))
		explicit(b, 2, func(b *cryptobyte.Builder) { b.AddASN1OctetString(ct) })
	})
}

func readEncryptedData(s cryptobyte.String) (int32, []byte, bool) {
	var seq, f cryptobyte.String
	var et int64
	var present bool
	var ct []byte
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1(&f, ctx(0)) || !f.ReadASN1Int64WithTag(&et, casn1.INTEGER) ||
		!seq.ReadOptionalASN1(&f, &present, ctx(1)) || !seq.ReadASN1(&f, ctx(2)) || !f.ReadASN1Bytes(&ct, casn1.OCTET_STRING) ||
		et < -1<<31 || et > 1<<31-1 {
		return 0, nil, false
	}
	return int32(et), ct, true
}

func readEncryptionKey(s cryptobyte.String) (int32, []byte, bool) {
	var seq, f cryptobyte.String
	var et int64
	var v []byte
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1(&f, ctx(0)) || !f.ReadASN1Int64WithTag(&et, casn1.INTEGER) ||
		!seq.ReadASN1(&f, ctx(1)) || !f.ReadASN1Bytes(&v, casn1.OCTET_STRING) || et < -1<<31 || et > 1<<31-1 {
		return 0, nil, false
	}
	return int32(et), v, true
}

func readChecksum(s cryptobyte.String) (int32, []byte, bool) {
	return readEncryptionKey(s) // same shape: [0] Int32, [1] OCTET STRING
}

func readPrincipal(s cryptobyte.String) (wire.PrincipalName, bool) {
	var p wire.PrincipalName
	var seq, f, names cryptobyte.String
	var nt int64
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1(&f, ctx(0)) || !f.ReadASN1Int64WithTag(&nt, casn1.INTEGER) ||
		!seq.ReadASN1(&f, ctx(1)) || !f.ReadASN1(&names, casn1.SEQUENCE) || nt < -1<<31 || nt > 1<<31-1 {
		return p, false
	}
	p.NameType = int32(nt)
	for !names.Empty() {
		var c cryptobyte.String
		if !names.ReadASN1(&c, tagGeneralString) || len(p.Components) >= 8 {
			return p, false
		}
		p.Components = append(p.Components, string(c))
	}
	return p, true
}
