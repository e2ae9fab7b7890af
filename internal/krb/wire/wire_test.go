package wire_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

func forged(t testing.TB) (*initiator.Credential, *kcrypto.Key) {
	t.Helper()
	key := krbtest.RandomKey(kcrypto.AES256SHA1)
	c, err := krbtest.Forge(krbtest.TicketSpec{
		ServiceKey: key, KVNO: 7, SPN: []string{"HTTP", "sso.example.test"}, Realm: "EXAMPLE.TEST",
		Client: []string{"alice"}, CRealm: "EXAMPLE.TEST", PAC: bytes.Repeat([]byte{0xAB}, 300),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func gokKey(k *kcrypto.Key) types.EncryptionKey {
	return types.EncryptionKey{KeyType: k.EType(), KeyValue: k.Value()}
}

// Our encoder's output decodes with gokrb5, field for field.
func TestOurAPReqDecodesWithGokrb5(t *testing.T) {
	c, key := forged(t)
	now := time.Now()
	b, err := c.APReq(initiator.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var g messages.APReq
	if err := g.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if g.Ticket.SName.PrincipalNameString() != "HTTP/sso.example.test" || g.Ticket.Realm != "EXAMPLE.TEST" || g.Ticket.EncPart.KVNO != 7 {
		t.Errorf("ticket %+v", g.Ticket)
	}
	if !types.IsFlagSet(&g.APOptions, 2) {
		t.Error("mutual-required not set")
	}
	if err := g.Ticket.Decrypt(gokKey(key)); err != nil {
		t.Fatal(err)
	}
	if g.Ticket.DecryptedEncPart.CName.PrincipalNameString() != "alice" || len(g.Ticket.DecryptedEncPart.AuthorizationData) != 1 {
		t.Errorf("enc part %+v", g.Ticket.DecryptedEncPart)
	}
	if err := g.DecryptAuthenticator(gokKey(c.SessionKey)); err != nil {
		t.Fatal(err)
	}
	if !g.Authenticator.CTime.Equal(now.Truncate(time.Second)) || g.Authenticator.Cusec != now.Nanosecond()/1000 {
		t.Errorf("authenticator time %v %d", g.Authenticator.CTime, g.Authenticator.Cusec)
	}
	if g.Authenticator.Cksum.CksumType != initiator.ChecksumGSS || len(g.Authenticator.Cksum.Checksum) != 24 {
		t.Errorf("checksum %+v", g.Authenticator.Cksum)
	}
}

// gokrb5's encoder's output decodes with ours.
func TestGokrb5APReqDecodesWithOurs(t *testing.T) {
	c, key := forged(t)
	var tkt messages.Ticket
	if err := tkt.Unmarshal(c.Ticket); err != nil {
		t.Fatal(err)
	}
	auth, err := types.NewAuthenticator("EXAMPLE.TEST", types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := messages.NewAPReq(tkt, gokKey(c.SessionKey), auth)
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.ParseAPReq(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ticket.SName.String() != "HTTP/sso.example.test" || got.Ticket.EncPart.KVNO != 7 || got.Ticket.EncPart.EType != kcrypto.AES256SHA1 {
		t.Errorf("ticket %+v", got.Ticket)
	}
	plain, err := key.Decrypt(kcrypto.UsageTicket, got.Ticket.EncPart.Cipher)
	if err != nil {
		t.Fatal(err)
	}
	var etp wire.EncTicketPart
	if err := wire.ParseEncTicketPart(plain, &etp); err != nil {
		t.Fatal(err)
	}
	if etp.CName.String() != "alice" || etp.CRealm != "EXAMPLE.TEST" || !bytes.Equal(etp.Key.Value, c.SessionKey.Value()) {
		t.Errorf("enc ticket part %+v", etp)
	}
	ap, err := c.SessionKey.Decrypt(kcrypto.UsageAPReqAuth, got.Authenticator.Cipher)
	if err != nil {
		t.Fatal(err)
	}
	var a wire.Authenticator
	if err := wire.ParseAuthenticator(ap, &a); err != nil {
		t.Fatal(err)
	}
	if a.CName.String() != "alice" || !a.CTime.Equal(auth.CTime.Truncate(time.Second)) || a.CUSec != int32(auth.Cusec) {
		t.Errorf("authenticator %+v vs %+v", a, auth)
	}
	if !a.HasSeqNumber || a.SeqNumber != uint32(auth.SeqNumber) {
		t.Errorf("seq %d vs %d", a.SeqNumber, auth.SeqNumber)
	}
}

func TestAPRepDecodesWithGokrb5(t *testing.T) {
	sk := krbtest.RandomKey(kcrypto.AES128SHA1)
	ctime := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	plain, err := wire.MarshalEncAPRepPart(&wire.EncAPRepPart{CTime: ctime, CUSec: 123456, SeqNumber: 99, HasSeq: true})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := sk.Encrypt(kcrypto.UsageAPRepEncPart, plain, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.MarshalAPRep(sk.EType(), ct)
	if err != nil {
		t.Fatal(err)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	dec, err := crypto.DecryptEncPart(rep.EncPart, gokKey(sk), kcrypto.UsageAPRepEncPart)
	if err != nil {
		t.Fatal(err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(dec); err != nil {
		t.Fatal(err)
	}
	if !part.CTime.Equal(ctime) || part.Cusec != 123456 || part.SequenceNumber != 99 {
		t.Errorf("EncAPRepPart %+v", part)
	}
}

func TestTruncatedOrCorruptAPReqIsMalformed(t *testing.T) {
	c, _ := forged(t)
	b, err := c.APReq(initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := wire.ParseAPReq(b[:n]); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := wire.ParseAPReq(append(append([]byte(nil), b...), 0)); !errors.Is(err, wire.ErrMalformed) {
		t.Error("trailing byte accepted")
	}
	for _, bad := range [][]byte{
		{0x6e, 0x80},                         // indefinite length
		{0x6e, 0x84, 0xff, 0xff, 0xff, 0xff}, // absurd length
		{0x6d, 0x00},                         // wrong application tag
		{0x6e, 0x03, 0x30, 0x01, 0x00},
	} {
		if _, err := wire.ParseAPReq(bad); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("% x: %v", bad, err)
		}
	}
}

func TestKerberosTimeIsStrict(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	good, err := wire.MarshalAuthenticator(&wire.Authenticator{CRealm: "R", CName: wire.PrincipalName{Components: []string{"a"}}, CTime: at})
	if err != nil {
		t.Fatal(err)
	}
	var out wire.Authenticator
	if err := wire.ParseAuthenticator(good, &out); err != nil || !out.CTime.Equal(at) {
		t.Fatalf("good time: %v %v", out.CTime, err)
	}
	i := bytes.Index(good, []byte("20261122100000Z"))
	if i < 0 {
		t.Fatal("encoded time not found")
	}
	for _, bad := range []string{"20261322100000Z", "20261122250000Z", "2026112210000aZ", "20261122100000+", "-0261122100000Z"} {
		b := append([]byte(nil), good...)
		copy(b[i:], bad)
		if err := wire.ParseAuthenticator(b, &out); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("time %q accepted: %v", bad, err)
		}
	}
}

func FuzzParseAPReq(f *testing.F) {
	c, key := forged(f)
	for _, o := range []initiator.Options{{}, {NoMutual: true}} {
		b, err := c.APReq(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	plain, _ := key.Decrypt(kcrypto.UsageTicket, mustParse(f, c).Ticket.EncPart.Cipher)
	f.Add(plain)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := wire.ParseAPReq(b); err == nil {
			_ = r.MutualRequired()
			_ = r.Ticket.SName.String()
		} else if !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
		// The decrypted parts come from the network too once a key matches; they
		// must be as robust.
		var etp wire.EncTicketPart
		if err := wire.ParseEncTicketPart(b, &etp); err != nil && !errors.Is(err, wire.ErrMalformed) {
			t.Fatal(err)
		}
		var a wire.Authenticator
		if err := wire.ParseAuthenticator(b, &a); err != nil && !errors.Is(err, wire.ErrMalformed) {
			t.Fatal(err)
		}
		if _, err := wire.ParseAuthorizationData(b); err != nil && !errors.Is(err, wire.ErrMalformed) {
			t.Fatal(err)
		}
	})
}

func mustParse(t testing.TB, c *initiator.Credential) *wire.APReq {
	b, err := c.APReq(initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.ParseAPReq(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The hand-written AP-REP encoders agree byte for byte with cryptobyte's.
func TestAPRepEncodingMatchesGenericEncoder(t *testing.T) {
	for _, p := range []wire.EncAPRepPart{
		{CTime: time.Date(2026, 11, 22, 10, 1, 2, 0, time.UTC), CUSec: 999999, SeqNumber: 0x3fffffff, HasSeq: true},
		{CTime: time.Date(1999, 1, 2, 3, 4, 5, 0, time.UTC), CUSec: 0},
		{CTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), CUSec: 128, SeqNumber: 127, HasSeq: true},
	} {
		got, err := wire.MarshalEncAPRepPart(&p)
		if err != nil {
			t.Fatal(err)
		}
		want := genericEncAPRepPart(t, &p)
		if !bytes.Equal(got, want) {
			t.Errorf("EncAPRepPart %+v:\n got % x\nwant % x", p, got, want)
		}
	}
	for _, n := range []int{0, 60, 127, 128, 255, 256, 70000} {
		cipher := bytes.Repeat([]byte{0x5a}, n)
		got, err := wire.MarshalAPRep(18, cipher)
		if err != nil {
			t.Fatal(err)
		}
		var rep messages.APRep
		if err := rep.Unmarshal(got); err != nil {
			t.Fatalf("cipher %d bytes: gokrb5 rejects our AP-REP: %v", n, err)
		}
		if rep.EncPart.EType != 18 || !bytes.Equal(rep.EncPart.Cipher, cipher) || rep.PVNO != 5 || rep.MsgType != 15 {
			t.Errorf("cipher %d bytes: %+v", n, rep.EncPart.EType)
		}
	}
}

func genericEncAPRepPart(t *testing.T, p *wire.EncAPRepPart) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(casn1.Tag(27).Constructed()|0x40, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.GeneralizedTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(p.CTime.Format("20060102150405Z"))) })
			})
			b.AddASN1(casn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(p.CUSec)) })
			if p.HasSeq {
				b.AddASN1(casn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(p.SeqNumber)) })
			}
		})
	})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
