// Package initiator is the client side of a Kerberos sign-in: from a service ticket the
// client already holds (an MIT credential cache), it builds a fresh AP-REQ per call.
//
// It owns authenticator construction (GSS checksum 0x8003 with channel bindings, time,
// options). kerbgate bench uses it to load a gateway with real tickets, and tests use
// it to send what real clients send with exact control over time and options. It must
// not be used on the serving path and never talks to a KDC.
package initiator

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

// GSS flags carried in the 0x8003 checksum (RFC 2744, RFC 4121 §4.1.1.1).
const (
	FlagDeleg    = 1
	FlagMutual   = 2
	FlagReplay   = 4
	FlagSequence = 8
	FlagConf     = 16
	FlagInteg    = 32
)

// ChecksumGSS is the authenticator checksum type of GSS-API Kerberos (RFC 4121).
const ChecksumGSS = 0x8003

// Credential is a service ticket with its session key.
type Credential struct {
	Ticket      []byte // DER Ticket as issued by the KDC
	SessionKey  *kcrypto.Key
	Client      wire.PrincipalName
	ClientRealm string
	Server      string // "HTTP/sso.example.test@EXAMPLE.TEST"
	EndTime     time.Time
}

// FromCCache reads the service ticket for spn ("HTTP/host", realm optional) from an
// MIT credential cache file (get it first with kinit and kvno).
func FromCCache(path, spn string) (*Credential, error) {
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("read ccache %s: %w", path, err)
	}
	name, realm, _ := strings.Cut(spn, "@")
	for _, c := range cc.GetEntries() {
		srv := strings.Join(c.Server.PrincipalName.NameString, "/")
		if !strings.EqualFold(srv, name) || (realm != "" && !strings.EqualFold(c.Server.Realm, realm)) {
			continue
		}
		key, err := kcrypto.NewKey(c.Key.KeyType, c.Key.KeyValue)
		if err != nil {
			return nil, fmt.Errorf("session key of %s: %w", srv, err)
		}
		return &Credential{
			Ticket:      c.Ticket,
			SessionKey:  key,
			Client:      wire.PrincipalName{NameType: c.Client.PrincipalName.NameType, Components: c.Client.PrincipalName.NameString},
			ClientRealm: c.Client.Realm,
			Server:      srv + "@" + c.Server.Realm,
			EndTime:     c.EndTime,
		}, nil
	}
	return nil, fmt.Errorf("ccache %s holds no ticket for %s (run kvno %s first)", path, spn, name)
}

// Options shape one authenticator. The zero value asks for mutual authentication at
// the current time with no channel bindings, like curl --negotiate.
type Options struct {
	// Now is the authenticator time; time.Now() when zero.
	Now time.Time
	// NoMutual clears the mutual-required AP option and GSS flag.
	NoMutual bool
	// ChannelBindingHash is the 16-byte Bnd field (MD5 of gss_channel_bindings_struct);
	// zeros when nil (no bindings).
	ChannelBindingHash []byte
	// AuthorizationData is added to the authenticator (e.g. KERB_AP_OPTIONS_CBT).
	AuthorizationData []wire.AuthorizationData
	// Client overrides the client name in the authenticator (tests of client_mismatch).
	Client *wire.PrincipalName
	// SubKey, when set, is sent as the authenticator's subkey (RFC 4120 §5.5.1).
	SubKey *kcrypto.Key
	// Rand supplies the confounder and sequence number; crypto/rand when nil.
	Rand io.Reader
}

// APReq builds a DER KRB_AP_REQ with a fresh authenticator.
func (c *Credential) APReq(o Options) ([]byte, error) {
	if c.SessionKey == nil || len(c.Ticket) == 0 {
		return nil, errors.New("initiator: credential without ticket or session key")
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	flags := uint32(FlagReplay | FlagSequence | FlagConf | FlagInteg)
	var apOptions uint32
	if !o.NoMutual {
		flags |= FlagMutual
		apOptions |= wire.APOptionMutualRequired
	}
	sum := make([]byte, 24)
	binary.LittleEndian.PutUint32(sum[0:4], 16)
	copy(sum[4:20], o.ChannelBindingHash)
	binary.LittleEndian.PutUint32(sum[20:24], flags)

	var seq [4]byte
	if _, err := io.ReadFull(rnd, seq[:]); err != nil {
		return nil, err
	}
	cname := c.Client
	if o.Client != nil {
		cname = *o.Client
	}
	auth := wire.Authenticator{
		CRealm:        c.ClientRealm,
		CName:         cname,
		Checksum:      &wire.Checksum{Type: ChecksumGSS, Value: sum},
		CUSec:         int32(now.Nanosecond() / 1000),
		CTime:         now.Truncate(time.Second),
		SeqNumber:     binary.BigEndian.Uint32(seq[:]) & 0x3fffffff,
		HasSeqNumber:  true,
		Authorization: o.AuthorizationData,
	}
	if o.SubKey != nil {
		auth.SubKey = &wire.EncryptionKey{KeyType: o.SubKey.EType(), Value: o.SubKey.Value()}
	}
	plain, err := wire.MarshalAuthenticator(&auth)
	if err != nil {
		return nil, err
	}
	ct, err := c.SessionKey.Encrypt(kcrypto.UsageAPReqAuth, plain, rnd)
	if err != nil {
		return nil, err
	}
	return wire.MarshalAPReq(apOptions, c.Ticket, wire.EncryptedData{EType: c.SessionKey.EType(), Cipher: ct})
}
