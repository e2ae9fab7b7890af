// Package s4u is kerbgate's KDC client for Kerberos constrained delegation: with the
// service account's own keys it keeps a forwardable TGT, asks the KDC for a ticket to
// itself on a user's behalf (S4U2Self, MS-SFU PA-FOR-USER), then exchanges that for a
// ticket to an upstream service (S4U2Proxy, classic or resource-based), and makes a
// fresh AP-REQ from it for every upstream request.
//
// It owns the KDC exchanges (on gokrb5's message types and crypto), the checks of the
// KDC's replies, the per-(user, SPN) ticket cache with single flight, and the mapping
// of KDC errors to reason codes naming the AD setting at fault. It must not know HTTP
// or configuration files, and never logs keys or tickets.
//
// Samba 4.17's KDC (the test domain) answers, as observed by this package's tests:
// an unknown user in S4U2Self → KDC_ERR_C_PRINCIPAL_UNKNOWN (6); S4U2Proxy to an SPN
// not in msDS-AllowedToDelegateTo, or with a non-forwardable evidence ticket →
// KDC_ERR_BADOPTION (13); an unknown target SPN → KDC_ERR_S_PRINCIPAL_UNKNOWN (7).
package s4u

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	stdasn1 "encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// User names the user a ticket is delegated for.
type User struct {
	// Name is "alice@example.test" when Enterprise (resolved by the KDC as a UPN,
	// NT-ENTERPRISE), otherwise an account name like "alice" in Realm.
	Name       string
	Enterprise bool
	// Realm is the user's realm, sent as PA-FOR-USER's userRealm (MS-SFU 2.2.1);
	// the service's realm (Config.Realm) when empty. A user of a trusted realm must
	// carry theirs: with the service's realm, a bare name is the local account of
	// that name.
	Realm string
}

// realm is the user's realm, the service's when the user names none.
func (u User) realm(service string) string {
	if u.Realm != "" {
		return u.Realm
	}
	return service
}

// Config is the service identity and the KDCs.
type Config struct {
	// Keytab holds the service account's own keys (principal Principal@Realm).
	Keytab    *keytab.Keytab
	Principal string // "svc-gw"
	Realm     string // "EXAMPLE.TEST"
	// KDCs are host:port addresses, tried in order.
	KDCs []string
	// CacheSize bounds the delegated tickets kept (LRU); 10000 when zero.
	CacheSize int
	// Timeout bounds one KDC exchange; 5s when zero.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Stats are the client's counters since start.
type Stats struct {
	ASRequests, S4U2SelfRequests, S4U2ProxyRequests uint64
	CacheHits, CacheMisses                          uint64
	Failures                                        map[reason.Code]uint64
}

// Client obtains delegated tickets. It is safe for concurrent use.
type Client struct {
	cfg    Config
	krbcfg *krbconfig.Config
	now    func() time.Time

	tgtMu sync.Mutex
	tgt   *tgt

	cache *lru

	statsMu sync.Mutex
	stats   Stats
}

type tgt struct {
	ticket     messages.Ticket
	key        types.EncryptionKey
	start, end time.Time
}

// New checks the configuration. It does not contact the KDC.
func New(cfg Config) (*Client, error) {
	if cfg.Keytab == nil || cfg.Principal == "" || cfg.Realm == "" || len(cfg.KDCs) == 0 {
		return nil, errors.New("s4u: keytab, principal, realm and KDCs are required")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	kc, err := kdc.Client{Realm: cfg.Realm, KDCs: cfg.KDCs, Forwardable: true, Canonicalize: true}.Config()
	if err != nil {
		return nil, fmt.Errorf("s4u: %w", err)
	}
	return &Client{cfg: cfg, krbcfg: kc, now: now, cache: newLRU(cfg.CacheSize), stats: Stats{Failures: map[reason.Code]uint64{}}}, nil
}

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	s := c.stats
	s.Failures = make(map[reason.Code]uint64, len(c.stats.Failures))
	for k, v := range c.stats.Failures {
		s.Failures[k] = v
	}
	return s
}

func (c *Client) count(f func(*Stats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.statsMu.Unlock()
}

// Format is how a token is framed.
type Format int

const (
	// SPNEGO wraps the Kerberos token in a NegTokenInit, as browsers send it.
	SPNEGO Format = iota
	// RawKerberos is the GSS-API Kerberos token (RFC 4121 framing) alone.
	RawKerberos
)

// Token returns a fresh GSS token (a new authenticator) for user to spn, from the
// cached delegated ticket or a new KDC exchange.
func (c *Client) Token(ctx context.Context, user User, spn string, f Format) ([]byte, error) {
	tok, _, err := c.TokenInfo(ctx, user, spn, f)
	return tok, err
}

// TokenInfo is Token, and also says whether this call made a KDC exchange (the
// delegation events an audit log records) rather than using the cache.
func (c *Client) TokenInfo(ctx context.Context, user User, spn string, f Format) (token []byte, exchanged bool, err error) {
	cred, exchanged, err := c.credential(ctx, user, spn)
	if err != nil {
		return nil, exchanged, err
	}
	tok, err := c.tokenFrom(cred, f)
	return tok, exchanged, err
}

func (c *Client) tokenFrom(cred *initiator.Credential, f Format) ([]byte, error) {
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the AP-REQ for the upstream", "error", err.Error())
	}
	gss := spnego.WrapKerberos(spnego.OIDKerberos, spnego.TokIDAPReq, ap)
	if f == RawKerberos {
		return gss, nil
	}
	return spnego.EncodeNegTokenInit([]stdasn1.ObjectIdentifier{spnego.OIDKerberos}, gss), nil
}

// Credential returns the delegated service ticket for user to spn, cached until
// shortly before it expires. Concurrent calls for one (user, spn) make one exchange.
func (c *Client) Credential(ctx context.Context, user User, spn string) (*initiator.Credential, error) {
	cr, _, err := c.credential(ctx, user, spn)
	return cr, err
}

func (c *Client) credential(ctx context.Context, user User, spn string) (*initiator.Credential, bool, error) {
	key := c.cacheKey(user, spn)
	now := c.now()
	if cr, ok := c.cache.get(key, now); ok {
		c.count(func(s *Stats) { s.CacheHits++ })
		return cr, false, nil
	}
	c.count(func(s *Stats) { s.CacheMisses++ })
	exchanged := false
	cr, err := c.cache.do(key, func() (*initiator.Credential, time.Time, error) {
		// Another caller may have filled the entry while this one waited.
		if cr, ok := c.cache.get(key, c.now()); ok {
			return cr, time.Time{}, nil
		}
		exchanged = true
		return c.delegate(ctx, user, spn)
	})
	if err != nil {
		var re *reason.Error
		if errors.As(err, &re) {
			c.count(func(s *Stats) { s.Failures[re.Code]++ })
		}
		return nil, exchanged, err
	}
	return cr, exchanged, nil
}

// cacheKey keeps users apart by name form, name and realm (alice of another realm
// is another user), and tickets apart by SPN.
func (c *Client) cacheKey(u User, spn string) string {
	e := "p"
	if u.Enterprise {
		e = "e"
	}
	return e + "\x00" + strings.ToLower(u.Name) + "\x00" + u.realm(c.cfg.Realm) + "\x00" + strings.ToLower(spn)
}

// refreshBefore is how long before its end a ticket is replaced: the larger of 5
// minutes and a tenth of its lifetime.
func refreshBefore(start, end time.Time) time.Duration {
	d := end.Sub(start) / 10
	if d < 5*time.Minute {
		d = 5 * time.Minute
	}
	return d
}

// delegate runs S4U2Self then S4U2Proxy.
func (c *Client) delegate(ctx context.Context, user User, spn string) (*initiator.Credential, time.Time, error) {
	t, err := c.tgtFor(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	self, err := c.s4u2self(ctx, t, user)
	if err != nil {
		return nil, time.Time{}, err
	}
	selfForwardable := types.IsFlagSet(&self.DecryptedEncPart.Flags, flags.Forwardable)
	rep, err := c.s4u2proxy(ctx, t, self, user, spn, selfForwardable)
	if err != nil {
		return nil, time.Time{}, err
	}
	der, err := rep.Ticket.Marshal()
	if err != nil {
		return nil, time.Time{}, reason.New(reason.Internal, "cannot encode the delegated ticket", "error", err.Error())
	}
	sk, err := kcrypto.NewKey(rep.DecryptedEncPart.Key.KeyType, rep.DecryptedEncPart.Key.KeyValue)
	if err != nil {
		return nil, time.Time{}, reason.New(reason.Internal, "delegated ticket's session key enctype is not supported", "error", err.Error())
	}
	cr := &initiator.Credential{
		Ticket:      der,
		SessionKey:  sk,
		Client:      wire.PrincipalName{NameType: rep.CName.NameType, Components: rep.CName.NameString},
		ClientRealm: rep.CRealm,
		Server:      spn + "@" + rep.Ticket.Realm,
		EndTime:     rep.DecryptedEncPart.EndTime,
	}
	start := rep.DecryptedEncPart.StartTime
	if start.IsZero() {
		start = rep.DecryptedEncPart.AuthTime
	}
	return cr, rep.DecryptedEncPart.EndTime.Add(-refreshBefore(start, rep.DecryptedEncPart.EndTime)), nil
}

// tgtFor returns the service's TGT, getting a new one when it is close to its end.
func (c *Client) tgtFor(ctx context.Context) (*tgt, error) {
	c.tgtMu.Lock()
	defer c.tgtMu.Unlock()
	now := c.now()
	if c.tgt != nil && now.Before(c.tgt.end.Add(-refreshBefore(c.tgt.start, c.tgt.end))) {
		return c.tgt, nil
	}
	c.count(func(s *Stats) { s.ASRequests++ })
	cl := krbclient.NewWithKeytab(c.cfg.Principal, c.cfg.Realm, c.cfg.Keytab, c.krbcfg, krbclient.DisablePAFXFAST(true))
	req, err := messages.NewASReqForTGT(c.cfg.Realm, c.krbcfg, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, c.cfg.Principal))
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the AS-REQ", "error", err.Error())
	}
	rep, err := cl.ASExchange(c.cfg.Realm, req, 0)
	if err != nil {
		return nil, c.kdcError("as", err, "principal", c.cfg.Principal)
	}
	if !types.IsFlagSet(&rep.DecryptedEncPart.Flags, flags.Forwardable) {
		return nil, reason.New(reason.DelegationNotAllowed, "the service's TGT is not forwardable: S4U2Proxy needs a forwardable TGT",
			"principal", c.cfg.Principal, "fix", "the account must not be marked sensitive (NOT_DELEGATED) and the realm must allow forwardable tickets")
	}
	start := rep.DecryptedEncPart.StartTime
	if start.IsZero() {
		start = rep.DecryptedEncPart.AuthTime
	}
	c.tgt = &tgt{ticket: rep.Ticket, key: rep.DecryptedEncPart.Key, start: start, end: rep.DecryptedEncPart.EndTime}
	return c.tgt, nil
}

// s4u2self asks for a ticket to the service itself on user's behalf.
func (c *Client) s4u2self(ctx context.Context, t *tgt, user User) (*messages.TGSRep, error) {
	c.count(func(s *Stats) { s.S4U2SelfRequests++ })
	self := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, c.cfg.Principal)
	req, err := c.tgsReq(t, self, nil)
	if err != nil {
		return nil, err
	}
	pa, err := c.paForUser(user, t.key)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build PA-FOR-USER", "error", err.Error())
	}
	req.PAData = append(req.PAData, pa)
	rep, err := c.tgsExchange(ctx, req, t.key)
	if err != nil {
		return nil, c.kdcError("s4u2self", err, "user", user.Name, "user_realm", user.realm(c.cfg.Realm))
	}
	if !rep.Ticket.SName.Equal(self) && !strings.EqualFold(rep.Ticket.SName.PrincipalNameString(), c.cfg.Principal) {
		return nil, reason.New(reason.Internal, "S4U2Self reply is for another service", "sname", rep.Ticket.SName.PrincipalNameString())
	}
	return rep, nil
}

// s4u2proxy exchanges the S4U2Self ticket for a ticket to spn.
func (c *Client) s4u2proxy(ctx context.Context, t *tgt, self *messages.TGSRep, user User, spn string, selfForwardable bool) (*messages.TGSRep, error) {
	c.count(func(s *Stats) { s.S4U2ProxyRequests++ })
	target := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn)
	req, err := c.tgsReq(t, target, func(r *messages.TGSReq) {
		r.ReqBody.AdditionalTickets = []messages.Ticket{self.Ticket}
		types.SetFlag(&r.ReqBody.KDCOptions, cnameInAddlTkt)
	})
	if err != nil {
		return nil, err
	}
	req.PAData = append(req.PAData, paPACOptionsRBCD())
	rep, err := c.tgsExchange(ctx, req, t.key)
	if err != nil {
		var kerr messages.KRBError
		if errors.As(err, &kerr) && kerr.ErrorCode == errorcode.KDC_ERR_BADOPTION && !selfForwardable {
			return nil, reason.New(reason.ProtocolTransitionNotAllowed,
				"the S4U2Self ticket is not forwardable, so the KDC refused S4U2Proxy",
				"service", c.cfg.Principal, "user", user.Name, "spn", spn, "kdc_error", errorcode.Lookup(kerr.ErrorCode),
				"fix", "allow protocol transition on "+c.cfg.Principal+": \"Trust this user for delegation to specified services only\" with \"Use any authentication protocol\" (TRUSTED_TO_AUTH_FOR_DELEGATION; samba-tool delegation for-any-protocol "+c.cfg.Principal+" on)")
		}
		return nil, c.kdcError("s4u2proxy", err, "user", user.Name, "spn", spn)
	}
	if !strings.EqualFold(rep.Ticket.SName.PrincipalNameString(), spn) {
		return nil, reason.New(reason.Internal, "S4U2Proxy reply is for another service", "spn", spn, "sname", rep.Ticket.SName.PrincipalNameString())
	}
	if !rep.CName.Equal(self.CName) {
		return nil, reason.New(reason.Internal, "S4U2Proxy reply is for another user", "user", self.CName.PrincipalNameString(), "cname", rep.CName.PrincipalNameString())
	}
	return rep, nil
}

// cnameInAddlTkt is the KDC option of S4U2Proxy (MS-SFU 2.2.3: bit 14,
// "cname-in-addl-tkt", also called constrained-delegation).
const cnameInAddlTkt = 14

// tgsReq builds a TGS-REQ to sname authenticated with the TGT; edit changes the
// body before the authenticator's checksum is computed over it.
func (c *Client) tgsReq(t *tgt, sname types.PrincipalName, edit func(*messages.TGSReq)) (messages.TGSReq, error) {
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, c.cfg.Principal)
	req, err := messages.NewTGSReq(cname, c.cfg.Realm, c.krbcfg, t.ticket, t.key, sname, false)
	if err != nil {
		return req, reason.New(reason.Internal, "cannot build the TGS-REQ", "error", err.Error())
	}
	if edit == nil {
		return req, nil
	}
	edit(&req)
	// The PA-TGS-REQ authenticator carries a checksum of the body: make it again.
	body, err := req.ReqBody.Marshal()
	if err != nil {
		return req, reason.New(reason.Internal, "cannot encode the TGS-REQ body", "error", err.Error())
	}
	et, err := crypto.GetEtype(t.key.KeyType)
	if err != nil {
		return req, reason.New(reason.Internal, "TGT session key enctype", "error", err.Error())
	}
	sum, err := et.GetChecksumHash(t.key.KeyValue, body, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return req, reason.New(reason.Internal, "TGS-REQ checksum", "error", err.Error())
	}
	auth, err := types.NewAuthenticator(t.ticket.Realm, cname)
	if err != nil {
		return req, reason.New(reason.Internal, "TGS-REQ authenticator", "error", err.Error())
	}
	auth.Cksum = types.Checksum{CksumType: et.GetHashID(), Checksum: sum}
	ap, err := messages.NewAPReq(t.ticket, t.key, auth)
	if err != nil {
		return req, reason.New(reason.Internal, "TGS-REQ AP-REQ", "error", err.Error())
	}
	apb, err := ap.Marshal()
	if err != nil {
		return req, reason.New(reason.Internal, "TGS-REQ AP-REQ", "error", err.Error())
	}
	req.PAData = types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: apb}}
	return req, nil
}

// tgsExchange sends req and decrypts the reply with the TGT session key, checking
// the nonce. A KDC refusal is returned as messages.KRBError.
func (c *Client) tgsExchange(ctx context.Context, req messages.TGSReq, key types.EncryptionKey) (*messages.TGSRep, error) {
	b, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	reply, err := c.send(ctx, b)
	if err != nil {
		return nil, err
	}
	if len(reply) > 0 && reply[0] == 0x7e { // [APPLICATION 30] KRB-ERROR
		var kerr messages.KRBError
		if err := kerr.Unmarshal(reply); err != nil {
			return nil, fmt.Errorf("KDC answer does not decode: %w", err)
		}
		return nil, kerr
	}
	var rep messages.TGSRep
	if err := rep.Unmarshal(reply); err != nil {
		return nil, fmt.Errorf("TGS-REP does not decode: %w", err)
	}
	if err := rep.DecryptEncPart(key); err != nil {
		return nil, fmt.Errorf("TGS-REP does not decrypt with the TGT session key: %w", err)
	}
	if rep.DecryptedEncPart.Nonce != req.ReqBody.Nonce {
		return nil, errors.New("TGS-REP nonce does not match the request (a replayed or forged reply)")
	}
	return &rep, nil
}

// send sends one message to the first KDC that answers, over TCP (RFC 4120 §7.2.2).
func (c *Client) send(ctx context.Context, msg []byte) ([]byte, error) {
	var last error
	for _, addr := range c.cfg.KDCs {
		b, err := kdc.Exchange(ctx, addr, msg, c.cfg.Timeout)
		if err == nil {
			return b, nil
		}
		last = err
	}
	return nil, &netError{last}
}

type netError struct{ err error }

func (e *netError) Error() string { return "no KDC answered: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// kdcError maps a failed exchange to a reason naming the AD setting at fault.
func (c *Client) kdcError(step string, err error, kv ...any) error {
	var re *reason.Error
	if errors.As(err, &re) {
		return re
	}
	kv = append(kv, "step", step, "service", c.cfg.Principal)
	var kerr messages.KRBError
	if !errors.As(err, &kerr) {
		// gokrb5 wraps the AS exchange's KDC errors in krberror.Krberror.
		var ke krberror.Krberror
		if errors.As(err, &ke) && ke.RootCause == krberror.NetworkingError {
			return reason.New(reason.KDCUnreachable, "no KDC answered", append(kv, "kdcs", strings.Join(c.cfg.KDCs, ","), "error", err.Error())...)
		}
		var ne *netError
		if errors.As(err, &ne) {
			return reason.New(reason.KDCUnreachable, "no KDC answered", append(kv, "kdcs", strings.Join(c.cfg.KDCs, ","), "error", err.Error())...)
		}
		if e, ok := krbErrorIn(err); ok {
			kerr = e
		} else {
			return reason.New(reason.KDCError, "the KDC exchange failed", append(kv, "error", err.Error())...)
		}
	}
	kv = append(kv, "kdc_error", errorcode.Lookup(kerr.ErrorCode))
	switch kerr.ErrorCode {
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		if step == "as" {
			return reason.New(reason.KDCError, "the KDC does not know kerbgate's service account", append(kv, "fix", "check proxy.delegation.principal")...)
		}
		return reason.New(reason.UserUnknown, "the KDC does not know the user (S4U2Self)", kv...)
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		return reason.New(reason.UpstreamSPNUnknown, "the upstream SPN is registered on no account", kv...)
	case errorcode.KDC_ERR_BADOPTION, errorcode.KDC_ERR_POLICY:
		if step == "s4u2proxy" {
			return reason.New(reason.DelegationNotAllowed,
				"the KDC refused to delegate to the upstream SPN: it is not in the service account's msDS-AllowedToDelegateTo, and the upstream account does not grant it in msDS-AllowedToActOnBehalfOfOtherIdentity",
				append(kv, "fix", "add the SPN to "+c.cfg.Principal+"'s msDS-AllowedToDelegateTo (samba-tool delegation add-service), or let the upstream account trust "+c.cfg.Principal+" (resource-based: samba-tool delegation add-principal / Set-ADComputer -PrincipalsAllowedToDelegateToAccount)")...)
		}
		return reason.New(reason.KDCError, "the KDC refused the request", kv...)
	case errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		return reason.New(reason.KDCError, "the KDC refused kerbgate's service keys (wrong password or kvno in proxy.delegation.keytab)", kv...)
	}
	return reason.New(reason.KDCError, "the KDC refused the request", kv...)
}

func krbErrorIn(err error) (messages.KRBError, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if k, ok := e.(messages.KRBError); ok {
			return k, true
		}
	}
	// gokrb5's krberror keeps the KRB-ERROR only as text; recover the code from it.
	s := err.Error()
	for code, name := range map[int32]string{
		errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
		errorcode.KDC_ERR_PREAUTH_FAILED:      "KDC_ERR_PREAUTH_FAILED",
		errorcode.KDC_ERR_POLICY:              "KDC_ERR_POLICY",
		errorcode.KDC_ERR_CLIENT_REVOKED:      "KDC_ERR_CLIENT_REVOKED",
	} {
		if strings.Contains(s, name) {
			return messages.KRBError{ErrorCode: code}, true
		}
	}
	return messages.KRBError{}, false
}

// paForUser is the PA-FOR-USER of S4U2Self for user, in the user's own realm.
func (c *Client) paForUser(user User, key types.EncryptionKey) (types.PAData, error) {
	return paForUser(user, user.realm(c.cfg.Realm), key)
}

// paForUser builds PA-FOR-USER (MS-SFU 2.2.1): the user's name and realm (realm is
// the user's own, not necessarily the service's), the
// authentication package "Kerberos", and a KERB_CHECKSUM_HMAC_MD5 checksum over them
// keyed with the TGT session key (key usage 17).
func paForUser(u User, realm string, key types.EncryptionKey) (types.PAData, error) {
	name := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, u.Name)
	if u.Enterprise {
		name = types.PrincipalName{NameType: nametype.KRB_NT_ENTERPRISE, NameString: []string{u.Name}}
	}
	sum := ForUserChecksum(name.NameType, name.NameString, realm, key.KeyValue)
	v := struct {
		UserName    types.PrincipalName `asn1:"explicit,tag:0"`
		UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
		Cksum       types.Checksum      `asn1:"explicit,tag:2"`
		AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
	}{name, realm, types.Checksum{CksumType: checksumHMACMD5, Checksum: sum}, "Kerberos"}
	b, err := asn1.Marshal(v)
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: patype.PA_FOR_USER, PADataValue: b}, nil
}

// checksumHMACMD5 is KERB_CHECKSUM_HMAC_MD5 (RFC 4757 §4).
const checksumHMACMD5 = -138

// ForUserChecksum is the PA-FOR-USER checksum: the RFC 4757 HMAC-MD5 checksum with
// key usage 17 over the name type (little-endian), the name components, the realm and
// "Kerberos", keyed with key (whatever its enctype, as MS-SFU says).
func ForUserChecksum(nameType int32, components []string, realm string, key []byte) []byte {
	var data []byte
	data = binary.LittleEndian.AppendUint32(data, uint32(nameType))
	for _, c := range components {
		data = append(data, c...)
	}
	data = append(data, realm...)
	data = append(data, "Kerberos"...)

	sign := hmac.New(md5.New, key)
	sign.Write([]byte("signaturekey\x00"))
	ksign := sign.Sum(nil)
	inner := md5.New()
	inner.Write(binary.LittleEndian.AppendUint32(nil, 17))
	inner.Write(data)
	outer := hmac.New(md5.New, ksign)
	outer.Write(inner.Sum(nil))
	return outer.Sum(nil)
}

// paPACOptionsRBCD is PA-PAC-OPTIONS (MS-KILE 2.2.10) with the
// resource-based-constrained-delegation flag (bit 3), so that the KDC may honour the
// upstream account's msDS-AllowedToActOnBehalfOfOtherIdentity.
func paPACOptionsRBCD() types.PAData {
	flagsBits := types.NewKrbFlags()
	types.SetFlag(&flagsBits, 3)
	b, _ := asn1.Marshal(struct {
		Flags asn1.BitString `asn1:"explicit,tag:0"`
	}{flagsBits})
	return types.PAData{PADataType: paPACOptions, PADataValue: b}
}

const paPACOptions = 167

// Keytab loads a keytab file for Config.Keytab.
func Keytab(path string) (*keytab.Keytab, error) { return keytab.Load(path) }
