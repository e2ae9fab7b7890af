// Package krbtest forges Kerberos service tickets with a known service key, and the
// signed PACs to put in them (PAC), for unit tests and benchmarks that need tickets
// no KDC would issue (expired, other realm, oversized PAC) or need them without a
// domain controller.
//
// It owns nothing the product uses: only _test files and benchmarks may import it.
// Tests of behaviour a real KDC can produce use the real test domain instead.
package krbtest

import (
	"crypto/rand"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

// TicketSpec describes a forged ticket. Zero times mean "valid now for ten hours".
type TicketSpec struct {
	ServiceKey *kcrypto.Key
	KVNO       uint32
	SPN        []string // {"HTTP", "sso.example.test"}
	Realm      string
	Client     []string // {"alice"}
	CRealm     string
	AuthTime   time.Time
	StartTime  time.Time
	EndTime    time.Time
	// SessionEType is the session key enctype; the service key's when zero.
	SessionEType int32
	// Flags are the ticket flags (RFC 4120 §5.3, bit 0 the most significant);
	// forwardable, renewable, initial and pre-authent when zero.
	Flags uint32
	// PAC, when set, is placed in AD-IF-RELEVANT → AD-WIN2K-PAC.
	PAC []byte
}

// RandomKey returns a fresh random key of the enctype (17, 18, 19, 20 or 23).
func RandomKey(etype int32) *kcrypto.Key {
	size := 32
	switch etype {
	case kcrypto.AES128SHA1, kcrypto.AES128SHA256, kcrypto.RC4HMAC:
		size = 16
	}
	v := make([]byte, size)
	if _, err := rand.Read(v); err != nil {
		panic(err)
	}
	k, err := kcrypto.NewKey(etype, v)
	if err != nil {
		panic(err)
	}
	return k
}

// Forge encrypts a ticket under the service key and returns it as a client
// credential (ticket + session key) ready for initiator.Credential.APReq.
func Forge(s TicketSpec) (*initiator.Credential, error) {
	now := time.Now()
	if s.AuthTime.IsZero() {
		s.AuthTime = now.Add(-time.Minute)
	}
	if s.EndTime.IsZero() {
		s.EndTime = s.AuthTime.Add(10 * time.Hour)
	}
	if s.SessionEType == 0 {
		s.SessionEType = s.ServiceKey.EType()
	}
	if s.Flags == 0 {
		s.Flags = 0x40e10000 // forwardable, renewable, initial, pre-authent
	}
	sk := RandomKey(s.SessionEType)
	etp := wire.EncTicketPart{
		Flags:     s.Flags,
		Key:       wire.EncryptionKey{KeyType: sk.EType(), Value: sk.Value()},
		CRealm:    s.CRealm,
		CName:     wire.PrincipalName{NameType: 1, Components: s.Client},
		AuthTime:  s.AuthTime.UTC().Truncate(time.Second),
		StartTime: s.StartTime.UTC().Truncate(time.Second),
		EndTime:   s.EndTime.UTC().Truncate(time.Second),
	}
	if s.PAC != nil {
		inner, err := wire.MarshalAuthorizationData([]wire.AuthorizationData{{Type: 128, Data: s.PAC}})
		if err != nil {
			return nil, err
		}
		etp.Authorization = []wire.AuthorizationData{{Type: 1, Data: inner}}
	}
	plain, err := wire.MarshalEncTicketPart(&etp)
	if err != nil {
		return nil, err
	}
	ct, err := s.ServiceKey.Encrypt(kcrypto.UsageTicket, plain, rand.Reader)
	if err != nil {
		return nil, err
	}
	tkt, err := wire.MarshalTicket(&wire.Ticket{
		Realm:   s.Realm,
		SName:   wire.PrincipalName{NameType: 2, Components: s.SPN},
		EncPart: wire.EncryptedData{EType: s.ServiceKey.EType(), KVNO: s.KVNO, HasKVNO: true, Cipher: ct},
	})
	if err != nil {
		return nil, err
	}
	return &initiator.Credential{
		Ticket:      tkt,
		SessionKey:  sk,
		Client:      etp.CName,
		ClientRealm: s.CRealm,
		EndTime:     s.EndTime,
	}, nil
}
