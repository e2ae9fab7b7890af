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
	// TargetName, when set, is sent as a Windows client sends the name it asked a
	// ticket for: KERB_AUTH_DATA_CLIENT_TARGET (144), the server's name qualified with
	// the realm ("HTTP/sso.example.test@EXAMPLE.TEST"), inside the first
	// AD-IF-RELEVANT element of the authenticator (MS-KILE §3.2.5.8). It is encrypted
	// with the session key, unlike the ticket's server name.
	TargetName string
	// TicketServerName, when set, rewrites the ticket's server name ("HTTP/host"), which
	// travels in clear outside the ticket's encrypted part (RFC 4120 §5.3): what a
	// relaying attacker can do. Tests of service binding only.
	TicketServerName string
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
	ads, err := withTarget(o.AuthorizationData, o.TargetName)
	if err != nil {
		return nil, err
	}
	ticket := c.Ticket
	if o.TicketServerName != "" {
		if ticket, err = rewriteServerName(ticket, o.TicketServerName); err != nil {
			return nil, err
		}
	}
	auth := wire.Authenticator{
		CRealm:        c.ClientRealm,
		CName:         cname,
		Checksum:      &wire.Checksum{Type: ChecksumGSS, Value: sum},
		CUSec:         int32(now.Nanosecond() / 1000),
		CTime:         now.Truncate(time.Second),
		SeqNumber:     binary.BigEndian.Uint32(seq[:]) & 0x3fffffff,
		HasSeqNumber:  true,
		Authorization: ads,
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
	return wire.MarshalAPReq(apOptions, ticket, wire.EncryptedData{EType: c.SessionKey.EType(), Cipher: ct})
}

// withTarget adds KERB_AUTH_DATA_CLIENT_TARGET to the first AD-IF-RELEVANT element of
// ads (one is added first when there is none), as MS-KILE §3.2.5.8 places it.
func withTarget(ads []wire.AuthorizationData, target string) ([]wire.AuthorizationData, error) {
	if target == "" {
		return ads, nil
	}
	elem := wire.AuthorizationData{Type: wire.ADClientTarget, Data: wire.EncodeClientTarget(target)}
	out := append([]wire.AuthorizationData(nil), ads...)
	for i, ad := range out {
		if ad.Type != wire.ADIfRelevant {
			continue
		}
		inner, err := wire.ParseAuthorizationData(ad.Data)
		if err != nil {
			return nil, fmt.Errorf("initiator: AD-IF-RELEVANT: %w", err)
		}
		data, err := wire.MarshalAuthorizationData(append(inner, elem))
		if err != nil {
			return nil, err
		}
		out[i] = wire.AuthorizationData{Type: wire.ADIfRelevant, Data: data}
		return out, nil
	}
	data, err := wire.MarshalAuthorizationData([]wire.AuthorizationData{elem})
	if err != nil {
		return nil, err
	}
	return append(out, wire.AuthorizationData{Type: wire.ADIfRelevant, Data: data}), nil
}

// rewriteServerName replaces the clear-text server name of a DER ticket.
func rewriteServerName(ticketDER []byte, spn string) ([]byte, error) {
	// The ticket is decoded through an AP-REQ, the only envelope wire reads it from.
	ap, err := wire.MarshalAPReq(0, ticketDER, wire.EncryptedData{EType: 18, Cipher: []byte{0}})
	if err != nil {
		return nil, err
	}
	var req wire.APReq
	if err := req.Unmarshal(ap); err != nil {
		return nil, fmt.Errorf("initiator: ticket does not decode: %w", err)
	}
	t := req.Ticket
	t.SName = wire.PrincipalName{NameType: t.SName.NameType, Components: strings.Split(spn, "/")}
	return wire.MarshalTicket(&t)
}
