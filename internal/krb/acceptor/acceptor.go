// Package acceptor verifies Kerberos AP-REQs the way a Windows server does: with the
// service's keys only, no call to the KDC.
//
// It owns the checks between "bytes of an AP-REQ" and "this is alice, in these groups":
// accepted SPN (checked against the name a Windows client authenticates in the
// authenticator when it sends one, MS-KILE §3.2.5.8) and realm, the client's realm
// (own or trusted), enctype policy (for the ticket, its session key and the
// authenticator's subkey), key lookup across keytabs and key versions, ticket and
// authenticator decryption, the ticket's INVALID flag, ticket lifetime, clock skew,
// client name agreement, replay detection, PAC verification (server signature,
// PAC_CLIENT_INFO name and time), and the AP-REP for mutual authentication.
//
// Realms are compared exactly, case included: RFC 4120 §6.1 makes realm names case
// sensitive, and AD writes its realms in upper case (configuration insists on it).
// Every refusal is a *reason.Error carrying the facts an administrator
// needs. It must not know about HTTP, SPNEGO framing or configuration files: callers
// hand it policy as a Config.
package acceptor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/pac"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Authorization data types (RFC 4120 §5.2.6, MS-PAC §2.4 via MS-KILE).
const (
	adIfRelevant = 1
	adWin2kPAC   = 128
)

// DefaultEnctypes are the enctypes accepted when Config.Enctypes is empty: AES only.
var DefaultEnctypes = []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1, kcrypto.AES256SHA384, kcrypto.AES128SHA256}

// Config is the acceptor's policy and its collaborators.
type Config struct {
	Keyring *keyring.Keyring
	// SPNs are the service principal names (without realm) tickets may be for, e.g.
	// "HTTP/sso.example.test". Compared case-insensitively, as AD does.
	SPNs []string
	// Realm is the service's realm; tickets from other realms are refused.
	Realm string
	// TrustedRealms are the client realms accepted besides Realm: users of trusted
	// domains and forests, whose tickets our KDC issues after a referral. A ticket
	// whose client realm is neither is refused with reason.ForeignRealm.
	TrustedRealms []string
	// Enctypes are the ticket enctypes accepted (DefaultEnctypes when empty).
	Enctypes []int32
	// ClockSkew is the largest accepted difference between the client's and our clock
	// (5 minutes when zero).
	ClockSkew time.Duration
	// Replay detects reused authenticators. Required: there is no safe default.
	Replay replay.Cache
	// Now and Rand are injected for tests; time.Now and crypto/rand when nil.
	Now  func() time.Time
	Rand io.Reader
}

// Acceptor verifies AP-REQs. It is safe for concurrent use.
type Acceptor struct {
	cfg      Config
	keys     atomic.Pointer[keyring.Keyring]
	spns     []string
	enctypes []int32
	skew     time.Duration
	now      func() time.Time
	rand     io.Reader
}

// New checks the configuration and returns an acceptor.
func New(cfg Config) (*Acceptor, error) {
	if cfg.Keyring == nil {
		return nil, errors.New("acceptor: no keyring")
	}
	if cfg.Replay == nil {
		return nil, errors.New("acceptor: no replay cache")
	}
	if len(cfg.SPNs) == 0 {
		return nil, errors.New("acceptor: no accepted SPNs")
	}
	if cfg.Realm == "" {
		return nil, errors.New("acceptor: no realm")
	}
	a := &Acceptor{cfg: cfg, spns: cfg.SPNs, enctypes: cfg.Enctypes, skew: cfg.ClockSkew, now: cfg.Now, rand: cfg.Rand}
	if len(a.enctypes) == 0 {
		a.enctypes = DefaultEnctypes
	}
	if a.skew <= 0 {
		a.skew = 5 * time.Minute
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	a.keys.Store(cfg.Keyring)
	return a, nil
}

// SetKeyring replaces the service keys (a reloaded keytab); requests in flight finish
// with the keys they started with.
func (a *Acceptor) SetKeyring(kr *keyring.Keyring) { a.keys.Store(kr) }

// Keyring returns the keys in use.
func (a *Acceptor) Keyring() *keyring.Keyring { return a.keys.Load() }

// Result is a verified sign-in.
type Result struct {
	Identity identity.Identity
	// SPN is the accepted service name the ticket was for, as the ticket spells it.
	SPN string
	// EType and KVNO identify the service key that decrypted the ticket.
	EType int32
	KVNO  uint32
	// APRep is the KRB_AP_REP to return to the client; nil unless the client asked
	// for mutual authentication.
	APRep []byte
	// Checksum is the authenticator's checksum: for GSS-API clients, type 0x8003
	// carrying the channel-binding hash and flags (RFC 4121 §4.1.1).
	Checksum *wire.Checksum
	// AuthenticatorAD is the authenticator's authorization data (where Windows puts
	// KERB_AP_OPTIONS and the target name for Extended Protection).
	AuthenticatorAD []wire.AuthorizationData
	// HasPAC reports whether the ticket carried a PAC (AD always adds one).
	HasPAC   bool
	AuthTime time.Time
	EndTime  time.Time
}

// Accept verifies a DER-encoded KRB_AP_REQ. Refusals are *reason.Error. ctx is the
// request's: the replay check stops waiting on a shared cache when it ends.
func (a *Acceptor) Accept(ctx context.Context, apReqDER []byte) (*Result, error) {
	var req wire.APReq
	if err := req.Unmarshal(apReqDER); err != nil {
		return nil, reason.New(reason.MalformedToken, "AP-REQ does not decode", "error", err.Error())
	}
	tkt := &req.Ticket
	spn := tkt.SName.String()
	if !a.spnAccepted(spn) {
		return nil, reason.New(reason.SPNMismatch, "ticket is for a service name this server does not accept",
			"ticket_spn", spn, "accepted_spns", strings.Join(a.spns, ","), "setting", "kerberos.spns").
			WithFix(reason.FixKerberosSPNs)
	}
	if !strings.EqualFold(tkt.Realm, a.cfg.Realm) {
		return nil, reason.New(reason.RealmMismatch, "ticket is from another realm",
			"ticket_realm", tkt.Realm, "accepted_realm", a.cfg.Realm)
	}
	etype := tkt.EncPart.EType
	if !a.enctypeAllowed(etype) {
		return nil, reason.New(reason.EnctypeNotAllowed, "ticket enctype is not allowed",
			"ticket_enctype", kcrypto.EnctypeName(etype), "allowed_enctypes", kcrypto.EnctypeNameList(a.enctypes), "spn", spn)
	}
	var kvno uint32
	if tkt.EncPart.HasKVNO {
		kvno = tkt.EncPart.KVNO
	}
	kr := a.keys.Load()
	keys, kvnos, known := kr.Find(spn, tkt.Realm, kvno, etype)
	if len(keys) == 0 {
		if !known {
			return nil, reason.New(reason.SPNNotInKeytab, "no keytab holds keys for this SPN", "spn", spn, "realm", tkt.Realm)
		}
		if len(kvnos) == 0 {
			return nil, reason.New(reason.EnctypeNotAllowed, "the keytab has no key of the ticket's enctype for this SPN",
				"spn", spn, "ticket_enctype", kcrypto.EnctypeName(etype),
				"keytab_enctypes", kcrypto.EnctypeNameList(kr.ETypes(spn, tkt.Realm)))
		}
		return nil, reason.New(reason.KVNONotInKeytab, "the ticket's key version is not in the keytab",
			"spn", spn, "ticket_kvno", kvno, "keytab_kvnos", kvnoList(kvnos), "enctype", kcrypto.EnctypeName(etype))
	}

	var (
		plain     []byte
		ticketKey *kcrypto.Key
		err       error
	)
	for _, k := range keys {
		if plain, err = k.Decrypt(kcrypto.UsageTicket, tkt.EncPart.Cipher); err == nil {
			ticketKey = k
			break
		}
	}
	if ticketKey == nil {
		return nil, reason.New(reason.KeyMismatch, "no key of the right version decrypts the ticket",
			"spn", spn, "kvno", kvno, "enctype", kcrypto.EnctypeName(etype))
	}
	var etp wire.EncTicketPart
	if err := wire.ParseEncTicketPart(plain, &etp); err != nil {
		return nil, reason.New(reason.MalformedToken, "ticket decrypts but does not decode", "error", err.Error())
	}
	client := etp.CName.String() + "@" + etp.CRealm
	if etp.Flags&flagInvalid != 0 {
		return nil, reason.New(reason.TicketInvalid, "ticket has the INVALID flag (RFC 4120 §2.2)",
			"client", client, "ticket_flags", fmt.Sprintf("%#08x", etp.Flags))
	}
	// The session key is what protects the authenticator and everything after it:
	// the enctype policy applies to it as to the ticket (an RC4-only client gets an
	// RC4 session key even for an AES ticket).
	if !a.enctypeAllowed(etp.Key.KeyType) {
		return nil, reason.New(reason.EnctypeNotAllowed, "session key enctype is not allowed",
			"client", client, "session_enctype", kcrypto.EnctypeName(etp.Key.KeyType), "ticket_enctype", kcrypto.EnctypeName(etype),
			"allowed_enctypes", kcrypto.EnctypeNameList(a.enctypes), "spn", spn)
	}
	sessionKey, err := kcrypto.NewKey(etp.Key.KeyType, etp.Key.Value)
	if err != nil {
		return nil, reason.New(reason.EnctypeNotAllowed, "session key enctype is not supported",
			"session_enctype", kcrypto.EnctypeName(etp.Key.KeyType))
	}
	authPlain, err := sessionKey.Decrypt(kcrypto.UsageAPReqAuth, req.Authenticator.Cipher)
	if err != nil {
		return nil, reason.New(reason.MalformedToken, "authenticator does not decrypt with the ticket's session key")
	}
	var auth wire.Authenticator
	if err := wire.ParseAuthenticator(authPlain, &auth); err != nil {
		return nil, reason.New(reason.MalformedToken, "authenticator does not decode", "error", err.Error())
	}
	if !auth.CName.Equal(etp.CName) || auth.CRealm != etp.CRealm {
		return nil, reason.New(reason.ClientMismatch, "authenticator names another client than the ticket",
			"ticket_client", client, "authenticator_client", auth.CName.String()+"@"+auth.CRealm)
	}
	// A subkey, when sent, replaces the session key for the GSS-API context
	// (RFC 4121 §2): the same policy applies.
	if auth.SubKey != nil && !a.enctypeAllowed(auth.SubKey.KeyType) {
		return nil, reason.New(reason.EnctypeNotAllowed, "authenticator subkey enctype is not allowed",
			"client", client, "subkey_enctype", kcrypto.EnctypeName(auth.SubKey.KeyType),
			"allowed_enctypes", kcrypto.EnctypeNameList(a.enctypes), "spn", spn)
	}
	if !a.realmAccepted(etp.CRealm) {
		return nil, reason.New(reason.ForeignRealm, "the client's realm is neither this server's realm nor a trusted one",
			"client", client, "client_realm", etp.CRealm, "realm", a.cfg.Realm,
			"trusted_realms", strings.Join(a.cfg.TrustedRealms, ","),
			"fix", "add the realm to kerberos.trusted_realms if its users may sign in")
	}
	if err := checkClientTarget(&auth, tkt, client); err != nil {
		return nil, err
	}

	now := a.now()
	start := etp.StartTime
	if start.IsZero() {
		start = etp.AuthTime
	}
	if now.Add(a.skew).Before(start) {
		return nil, reason.New(reason.TicketNotYetValid, "ticket start time is in the future",
			"client", client, "start_time", start.UTC().Format(time.RFC3339), "seconds_ahead", int64(start.Sub(now)/time.Second))
	}
	if now.Add(-a.skew).After(etp.EndTime) {
		return nil, reason.New(reason.TicketExpired, "ticket has expired",
			"client", client, "end_time", etp.EndTime.UTC().Format(time.RFC3339), "seconds_ago", int64(now.Sub(etp.EndTime)/time.Second))
	}
	ctime := auth.CTime.Add(time.Duration(auth.CUSec) * time.Microsecond)
	if d := now.Sub(ctime); d > a.skew || d < -a.skew {
		return nil, reason.New(reason.ClockSkew, "authenticator time is too far from this server's time",
			"client", client, "skew_seconds", int64(math.Round(d.Seconds())), "max_skew_seconds", int64(a.skew/time.Second))
	}

	// Two different authenticators never share a ciphertext (each carries a random
	// confounder), and one replayed byte for byte always does: the hash of the
	// ciphertext is the replay key. It need only be remembered while the
	// authenticator's time is within the skew window; after that the skew check
	// refuses it anyway.
	rk := replay.Key(sha256Prefix(req.Authenticator.Cipher))
	seen, err := a.cfg.Replay.SeenBefore(ctx, rk, now, ctime.Add(a.skew))
	if err != nil {
		if errors.Is(err, replay.ErrFull) {
			return nil, reason.New(reason.ReplayCacheFull, "replay cache is full", "client", client)
		}
		if ctx.Err() != nil {
			// The request ended (the client went away) before the shared cache
			// answered: whether the authenticator is new is unknown.
			return nil, reason.New(reason.StoreUnavailable, "the request ended before the shared replay cache answered",
				"client", client, "op", "replay_check", "error", ctx.Err().Error())
		}
		if errors.Is(err, replay.ErrUnavailable) {
			return nil, reason.New(reason.StoreUnavailable, "shared replay cache cannot be reached",
				"client", client, "op", "replay_check", "error", err.Error())
		}
		return nil, reason.New(reason.Internal, "replay cache failed", "error", err.Error())
	}
	if seen {
		return nil, reason.New(reason.Replay, "authenticator was already used",
			"client", client, "authenticator_time", ctime.UTC().Format(time.RFC3339Nano))
	}

	res := &Result{
		SPN:             spn,
		EType:           etype,
		KVNO:            kvno,
		Checksum:        auth.Checksum,
		AuthenticatorAD: auth.Authorization,
		AuthTime:        etp.AuthTime,
		EndTime:         etp.EndTime,
	}
	res.Identity = identity.Identity{
		Principal:  client,
		Realm:      etp.CRealm,
		AuthMethod: "kerberos",
	}
	if err := a.readPAC(&etp, ticketKey, res); err != nil {
		return nil, err
	}
	if res.Identity.SAMAccountName == "" && len(etp.CName.Components) == 1 {
		res.Identity.SAMAccountName = etp.CName.Components[0]
	}
	if res.Identity.Groups == nil {
		res.Identity.Groups = []string{}
	}

	if req.MutualRequired() {
		rep, err := a.apRep(sessionKey, &auth)
		if err != nil {
			return nil, reason.New(reason.Internal, "cannot build AP-REP", "error", err.Error())
		}
		res.APRep = rep
	}
	return res, nil
}

// readPAC finds the PAC in the ticket (AD-IF-RELEVANT → AD-WIN2K-PAC), verifies its
// server signature with the ticket key and copies the identity out of it. A ticket
// without a PAC is accepted with no groups: MIT KDCs issue such tickets.
func (a *Acceptor) readPAC(etp *wire.EncTicketPart, ticketKey *kcrypto.Key, res *Result) error {
	var pacBytes []byte
	for _, ad := range etp.Authorization {
		if ad.Type != adIfRelevant {
			continue
		}
		inner, err := wire.ParseAuthorizationData(ad.Data)
		if err != nil {
			return reason.New(reason.PACInvalid, "ticket authorization data does not decode", "error", err.Error())
		}
		for _, in := range inner {
			if in.Type == adWin2kPAC {
				if pacBytes != nil {
					return reason.New(reason.PACInvalid, "ticket carries more than one PAC")
				}
				pacBytes = in.Data
			}
		}
	}
	if pacBytes == nil {
		return nil
	}
	p, err := pac.Parse(pacBytes)
	if err != nil {
		return reason.New(reason.PACInvalid, "PAC does not decode", "error", err.Error())
	}
	if err := p.VerifyServerSignature(ticketKey); err != nil {
		return reason.New(reason.PACInvalid, "PAC server signature does not verify", "error", err.Error())
	}
	// PAC_CLIENT_INFO binds the PAC to its ticket (MS-PAC §2.7): its name is the
	// ticket's client name without realm and its ClientId the ticket's authtime. A
	// PAC without it, or with another name or time, was lifted from another ticket.
	cn := etp.CName.String()
	if !p.HasClientInfo {
		return reason.New(reason.PACInvalid, "PAC has no PAC_CLIENT_INFO", "ticket_client", cn)
	}
	if !strings.EqualFold(p.ClientName, cn) {
		return reason.New(reason.PACInvalid, "PAC client name differs from the ticket's client",
			"pac_client", p.ClientName, "ticket_client", cn)
	}
	// KerberosTime has whole seconds; FILETIME has 100 ns.
	if ct := p.ClientInfoTime.Truncate(time.Second); !ct.Equal(etp.AuthTime) {
		return reason.New(reason.PACInvalid, "PAC_CLIENT_INFO time differs from the ticket's authtime",
			"ticket_client", cn, "ticket_authtime", etp.AuthTime.UTC().Format(time.RFC3339),
			"pac_client_info_time", ct.UTC().Format(time.RFC3339))
	}
	id := &res.Identity
	res.HasPAC = true
	id.SID = p.UserSID
	id.Groups = p.GroupSIDs
	id.UPN = p.UPN
	id.SAMAccountName = p.SAMAccountName
	if id.SAMAccountName == "" {
		id.SAMAccountName = p.EffectiveName
	}
	id.DNSDomain = p.DNSDomainName
	id.DisplayName = p.FullName
	return nil
}

// apRep builds the KRB_AP_REP answering the authenticator: its ctime/cusec echoed and
// a random sequence number, encrypted with the ticket's session key (RFC 4120 §3.2.4).
// No subkey is sent, so the client keeps using its own (RFC 4121 §2).
func (a *Acceptor) apRep(sessionKey *kcrypto.Key, auth *wire.Authenticator) ([]byte, error) {
	var seq [4]byte
	if _, err := io.ReadFull(a.rand, seq[:]); err != nil {
		return nil, err
	}
	part := wire.EncAPRepPart{
		CTime:     auth.CTime,
		CUSec:     auth.CUSec,
		SeqNumber: binary.BigEndian.Uint32(seq[:]) & 0x3fffffff,
		HasSeq:    true,
	}
	plain, err := wire.MarshalEncAPRepPart(&part)
	if err != nil {
		return nil, err
	}
	ct, err := sessionKey.Encrypt(kcrypto.UsageAPRepEncPart, plain, a.rand)
	if err != nil {
		return nil, err
	}
	return wire.MarshalAPRep(sessionKey.EType(), ct)
}

func (a *Acceptor) spnAccepted(spn string) bool {
	for _, s := range a.spns {
		if strings.EqualFold(s, spn) {
			return true
		}
	}
	return false
}

// flagInvalid is the INVALID ticket flag (RFC 4120 §5.3, bit 7).
const flagInvalid = 1 << (31 - 7)

// realmAccepted reports whether users of realm may sign in: the service's own realm
// or a trusted one, compared exactly (see the package comment).
func (a *Acceptor) realmAccepted(realm string) bool {
	if realm == a.cfg.Realm {
		return true
	}
	for _, r := range a.cfg.TrustedRealms {
		if r == realm {
			return true
		}
	}
	return false
}

func (a *Acceptor) enctypeAllowed(e int32) bool {
	for _, x := range a.enctypes {
		if x == e {
			return true
		}
	}
	return false
}

func sha256Prefix(b []byte) (k [16]byte) {
	sum := sha256.Sum256(b)
	copy(k[:], sum[:16])
	return k
}

func kvnoList(ks []uint32) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = fmt.Sprint(k)
	}
	return strings.Join(s, ",")
}
