// Package logon checks a user's password the way a Windows logon does: a Kerberos
// AS exchange for the user's TGT with pre-authentication, armoured with FAST
// (RFC 6113) under kerbgate's own TGT when the KDC offers FAST, then a service
// ticket for kerbgate's own SPN, which the acceptor verifies like any Negotiate
// ticket (same PAC, same groups).
//
// It owns the client side of those exchanges: choosing AES, the salt the KDC
// announces, the encrypted challenge or timestamp, checking the KDC's replies
// (nonce, FAST finished checksum, KDC challenge), kerbgate's armor TGT, and the
// mapping of the KDC's answers (wrong password, disabled, locked, expired, password
// expired or to change, clock skew, unreachable) to reason codes. It must not know
// HTTP, configuration files, lockout policy or rate limits (the sign-in core decides
// whether an attempt may reach the KDC), and never logs or returns a password or key.
//
// An attempt is two steps, so that the caller can count it under the account's own
// name before the password is sent: Begin (an AS-REQ without the password: the KDC
// names the account and its salt, or says it does not exist), then Attempt.Password.
//
// Samba 4.17's KDC (the test domain, Heimdal inside) offers FAST: PA-FX-FAST in
// METHOD-DATA, the encrypted challenge (PA-ENCRYPTED-CHALLENGE) and a PA-FX-COOKIE,
// as this package's tests observe.
package logon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/fast"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// FASTMode says when the user's exchange is armoured.
type FASTMode int

const (
	// FASTAuto armours whenever the KDC offers FAST (it says so when kerbgate gets
	// its own TGT), and sends an encrypted timestamp otherwise.
	FASTAuto FASTMode = iota
	// FASTRequired refuses to send a password key to a KDC that does not offer FAST.
	FASTRequired
)

func (m FASTMode) String() string {
	if m == FASTRequired {
		return "required"
	}
	return "auto"
}

// Config is kerbgate's own identity towards the KDC and the service the users'
// tickets are asked for.
type Config struct {
	Realm string
	// KDCs are host:port addresses, tried in order.
	KDCs []string
	// Keytab holds the keys of Principal, kerbgate's own account (its TGT is the
	// FAST armor).
	Keytab    *keytab.Keytab
	Principal string
	// ServiceSPN is the SPN the user's service ticket is for ("HTTP/sso.example.test"),
	// one kerbgate accepts.
	ServiceSPN string
	FAST       FASTMode
	// Timeout bounds one KDC exchange (5s when zero).
	Timeout time.Duration
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
}

// Stats are the messages sent to the KDC since start.
type Stats struct {
	// ASExchanges counts AS-REQs sent for users (one attempt is two: the first
	// names the account, the second carries the password key).
	ASExchanges uint64
	// TGSExchanges counts the service tickets asked for users.
	TGSExchanges uint64
	// ArmorExchanges counts the AS-REQs for kerbgate's own TGT.
	ArmorExchanges uint64
}

// Client checks passwords. It is safe for concurrent use.
type Client struct {
	cfg      Config
	krbcfg   *krbconfig.Config
	enctypes []int32
	now      func() time.Time
	rand     io.Reader

	asExchanges, tgsExchanges, armorExchanges atomic.Uint64

	armorMu sync.Mutex
	armor   *armorTGT
}

// New checks the configuration. It does not contact the KDC.
func New(cfg Config) (*Client, error) {
	if cfg.Realm == "" || len(cfg.KDCs) == 0 || cfg.Keytab == nil || cfg.Principal == "" || cfg.ServiceSPN == "" {
		return nil, errors.New("logon: realm, KDCs, keytab, principal and service SPN are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = kdc.DefaultTimeout
	}
	c := &Client{cfg: cfg, now: cfg.Now, rand: cfg.Rand, enctypes: []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1}}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	var err error
	if c.krbcfg, err = (kdc.Client{Realm: cfg.Realm, KDCs: cfg.KDCs, Enctypes: c.enctypes}).Config(); err != nil {
		return nil, fmt.Errorf("logon: %w", err)
	}
	return c, nil
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{ASExchanges: c.asExchanges.Load(), TGSExchanges: c.tgsExchanges.Load(), ArmorExchanges: c.armorExchanges.Load()}
}

// User is the name a person signs in with.
type User struct {
	// Name is an account name ("alice") in the realm, or a UPN ("alice@example.test")
	// when Enterprise.
	Name       string
	Enterprise bool
}

func (u User) principal() types.PrincipalName {
	if u.Enterprise {
		return enterprise(u.Name)
	}
	return principal(u.Name)
}

// Attempt is a started password check: the KDC named the account and told how its
// key is made.
type Attempt struct {
	c     *Client
	user  User
	armor *fast.Armor // nil without FAST
	// Account is the account's name as the KDC gives it ("alice@EXAMPLE.TEST"),
	// whichever name the user typed; the salt's account when the KDC names none.
	Account string
	// Armored says whether the exchange runs inside FAST.
	Armored bool
	etype   int32
	salt    string
	params  []byte
	cookie  []byte
	start   time.Time
}

// Begin sends the first AS-REQ, without any proof of the password: the KDC answers
// that pre-authentication is required, with the account's salt, or refuses (unknown
// user, disabled account...), which is returned as a *reason.Error.
func (c *Client) Begin(ctx context.Context, u User) (*Attempt, error) {
	if u.Name == "" {
		return nil, reason.New(reason.PasswordWrong, "empty user name")
	}
	a := &Attempt{c: c, user: u, start: c.now()}
	if t, err := c.armorTGT(ctx); err != nil {
		return nil, err
	} else if t.fast {
		if a.armor, err = t.newArmor(c); err != nil {
			return nil, reason.New(reason.Internal, "cannot make the FAST armor", "error", err.Error())
		}
		a.Armored = true
	} else if c.cfg.FAST == FASTRequired {
		return nil, reason.New(reason.KDCError, "the KDC does not offer FAST, and password_signin.fast is required",
			"kdcs", strings.Join(c.cfg.KDCs, ","), "fix", "enable Kerberos armoring (FAST) on the domain controllers (KDC support for claims, compound authentication and Kerberos armoring), or set password_signin.fast: auto")
	}
	req, err := c.newASRequest(u.principal(), a.start)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the AS-REQ", "error", err.Error())
	}
	padata, err := a.wrap(req, nil)
	if err != nil {
		return nil, err
	}
	_, err = c.exchange(ctx, req, padata, &c.asExchanges)
	if err == nil {
		// A KDC that issues a TGT without pre-authentication (DONT_REQUIRE_PREAUTH)
		// proves nothing about the password: refuse to use such an account here.
		return nil, reason.New(reason.PasswordWrong, "the KDC issued a ticket without pre-authentication (the account does not require Kerberos pre-authentication)",
			"user", u.Name, "fix", "clear \"Do not require Kerberos preauthentication\" (DONT_REQ_PREAUTH) on the account")
	}
	info, ke, err := a.unwrapError(err)
	if err != nil {
		return nil, err
	}
	if ke.ErrorCode != errPreauthRequired {
		return nil, c.refusal(ke, info, u)
	}
	if err := a.readPreauthInfo(ke, info); err != nil {
		return nil, err
	}
	return a, nil
}

// readPreauthInfo takes the enctype, salt and cookie from the KDC's
// PREAUTH_REQUIRED answer (in the FAST response under FAST, else in e-data).
func (a *Attempt) readPreauthInfo(ke *messages.KRBError, info []fast.PAData) error {
	if a.armor != nil {
		if _, ok := fast.Find(info, fast.PAEncryptedChallenge); !ok {
			return reason.New(reason.KDCError, "the KDC offers FAST but not the encrypted challenge", "user", a.user.Name)
		}
		a.cookie, _ = fast.Find(info, fast.PAFXCookie)
	}
	v, ok := fast.Find(info, fast.PAETypeInfo2)
	if !ok {
		return reason.New(reason.EnctypeNotAllowed, "the KDC announced no key (PA-ETYPE-INFO2) for the user", "user", a.user.Name)
	}
	entries, err := fast.ParseETypeInfo2(v)
	if err != nil {
		return reason.New(reason.KDCError, "the KDC's PA-ETYPE-INFO2 does not decode", "error", err.Error())
	}
	for _, want := range a.c.enctypes {
		for _, e := range entries {
			if e.EType != want {
				continue
			}
			a.etype, a.params = e.EType, e.S2KParams
			a.salt = e.Salt
			if !e.HasSalt {
				a.salt = defaultSalt(a.c.cfg.Realm, a.user.principal())
			}
			a.Account = accountName(ke, a.salt, a.c.cfg.Realm)
			return nil
		}
	}
	ets := make([]int32, len(entries))
	for i, e := range entries {
		ets[i] = e.EType
	}
	return reason.New(reason.EnctypeNotAllowed, "the user has no AES key in the domain", "user", a.user.Name,
		"user_enctypes", kcrypto.EnctypeNameList(ets),
		"fix", "the account's password was last set before AES keys were made (domain functional level 2008 or later): have the user change it")
}

// accountName is the account the KDC answered for: its cname when it gives one
// (canonicalize), else the user part of the salt (REALM + sAMAccountName for a user).
func accountName(ke *messages.KRBError, salt, realm string) string {
	if len(ke.CName.NameString) > 0 && ke.CName.NameType != 10 { // not an enterprise name echoed back
		return strings.ToLower(strings.Join(ke.CName.NameString, "/")) + "@" + ke.CRealm
	}
	if strings.HasPrefix(salt, realm) && len(salt) > len(realm) {
		return strings.ToLower(salt[len(realm):]) + "@" + realm
	}
	return ""
}

// defaultSalt is RFC 4120's default salt: the realm then the name's components.
func defaultSalt(realm string, p types.PrincipalName) string {
	return realm + strings.Join(p.NameString, "")
}

// wrap returns the padata of a request: under FAST, PA-FX-FAST carrying inner;
// otherwise inner itself.
func (a *Attempt) wrap(r *asRequest, inner []fast.PAData) ([]fast.PAData, error) {
	if a.armor == nil {
		return inner, nil
	}
	v, err := a.armor.Request(r.body, inner, r.body, a.c.rand)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the FAST request", "error", err.Error())
	}
	return []fast.PAData{{Type: fast.PAFXFAST, Value: v}}, nil
}

// unwrapError returns the KDC's error and the pre-authentication data that came
// with it: under FAST, the error inside the armored response (PA-FX-ERROR) and the
// response's padata; otherwise the KRB-ERROR and its METHOD-DATA. An answer that
// is not a KRB-ERROR is returned as a refusal.
func (a *Attempt) unwrapError(err error) ([]fast.PAData, *messages.KRBError, error) {
	var ke *kdcError
	if !errors.As(err, &ke) {
		return nil, nil, a.c.transportRefusal(err)
	}
	outer := &ke.KRBError
	var method []fast.PAData
	if len(outer.EData) > 0 {
		method, _ = fast.ParseMethodData(outer.EData) // e-data is not always METHOD-DATA
	}
	if a.armor == nil {
		return method, outer, nil
	}
	v, ok := fast.Find(method, fast.PAFXFAST)
	if !ok {
		// An unarmored error to an armored request: only errors the KDC gives
		// before it could read the armor (it cannot authenticate them).
		return method, outer, nil
	}
	resp, err := a.armor.Reply(v)
	if err != nil {
		return nil, nil, reason.New(reason.KDCError, "the KDC's armored error does not verify", "error", err.Error())
	}
	inner, ok := resp.ErrorIn()
	if !ok {
		return resp.PAData, outer, nil
	}
	var e messages.KRBError
	if err := e.Unmarshal(inner); err != nil {
		return nil, nil, reason.New(reason.KDCError, "the KDC's PA-FX-ERROR does not decode", "error", err.Error())
	}
	padata := resp.PAData
	if len(e.EData) > 0 {
		if more, err := fast.ParseMethodData(e.EData); err == nil {
			padata = append(padata, more...)
		}
	}
	// The inner error's e-data may carry the NT status (KERB-ERROR-DATA) rather
	// than METHOD-DATA: keep the outer's raw e-data for that too.
	if len(e.EData) == 0 {
		e.EData = outer.EData
	}
	return padata, &e, nil
}

// Result is a password check that succeeded.
type Result struct {
	// Credential is a service ticket for Config.ServiceSPN, for the acceptor.
	Credential *initiator.Credential
	// Armored says whether the exchange ran inside FAST.
	Armored bool
}

// Password sends the password's proof: the encrypted challenge under FAST, else an
// encrypted timestamp. On success it gets the service ticket for kerbgate's own SPN.
// A refusal is a *reason.Error; reason.PasswordWrong means the KDC refused the
// password (it counted a bad password).
func (a *Attempt) Password(ctx context.Context, password string) (*Result, error) {
	c := a.c
	longTerm, err := kcrypto.FromPassword(a.etype, password, a.salt, a.params)
	if err != nil {
		return nil, reason.New(reason.KDCError, "cannot derive the user's key", "error", err.Error(), "user", a.user.Name)
	}
	now := c.now()
	req, err := c.newASRequest(a.user.principal(), now)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the AS-REQ", "error", err.Error())
	}
	var inner []fast.PAData
	if a.armor != nil {
		ch, err := a.armor.EncryptedChallenge(longTerm, now, c.rand)
		if err != nil {
			return nil, reason.New(reason.Internal, "cannot encrypt the challenge", "error", err.Error())
		}
		if a.cookie != nil {
			inner = append(inner, fast.PAData{Type: fast.PAFXCookie, Value: a.cookie})
		}
		inner = append(inner, fast.PAData{Type: fast.PAEncryptedChallenge, Value: ch})
	} else {
		ts, err := fast.EncryptedTimestamp(longTerm, kcrypto.UsagePAEncTimestamp, now, c.rand)
		if err != nil {
			return nil, reason.New(reason.Internal, "cannot encrypt the timestamp", "error", err.Error())
		}
		inner = []fast.PAData{{Type: fast.PAEncTimestamp, Value: ts}}
	}
	padata, err := a.wrap(req, inner)
	if err != nil {
		return nil, err
	}
	rep, err := c.exchange(ctx, req, padata, &c.asExchanges)
	if err != nil {
		info, ke, err := a.unwrapError(err)
		if err != nil {
			return nil, err
		}
		return nil, c.refusal(ke, info, a.user)
	}
	tgt, err := a.readReply(rep, req, longTerm)
	if err != nil {
		return nil, err
	}
	cred, err := c.serviceTicket(ctx, tgt)
	if err != nil {
		return nil, err
	}
	return &Result{Credential: cred, Armored: a.armor != nil}, nil
}

// userTGT is the user's TGT as the AS-REP gave it.
type userTGT struct {
	ticket []byte
	key    *kcrypto.Key
	cname  wire.PrincipalName
	crealm string
}

// readReply checks an AS-REP to the password request and decrypts it: under FAST
// the armored response (nonce, finished checksum over the ticket, the KDC's own
// encrypted challenge) and the strengthened reply key.
func (a *Attempt) readReply(rep *asReply, req *asRequest, longTerm *kcrypto.Key) (*userTGT, error) {
	bad := func(what string, err error) error {
		kv := []any{"user", a.user.Name}
		if err != nil {
			kv = append(kv, "error", err.Error())
		}
		return reason.New(reason.KDCError, "the KDC's AS-REP does not verify: "+what, kv...)
	}
	replyKey := longTerm
	cname, crealm := rep.cname, rep.crealm
	if a.armor != nil {
		v, ok := fast.Find(rep.padata, fast.PAFXFAST)
		if !ok {
			return nil, bad("no PA-FX-FAST in the reply to an armored request", nil)
		}
		resp, err := a.armor.Reply(v)
		if err != nil {
			return nil, bad("armored reply", err)
		}
		if int(resp.Nonce) != req.req.ReqBody.Nonce {
			return nil, bad("FAST response nonce", nil)
		}
		if resp.Finished == nil || !a.armor.VerifyTicketChecksum(resp.Finished, rep.ticket) {
			return nil, bad("FAST finished ticket checksum", nil)
		}
		kdcChallenge, ok := fast.Find(resp.PAData, fast.PAEncryptedChallenge)
		if !ok {
			return nil, bad("no KDC encrypted challenge", nil)
		}
		if err := a.armor.VerifyKDCChallenge(longTerm, kdcChallenge); err != nil {
			return nil, bad("KDC encrypted challenge", err)
		}
		if resp.StrengthenKey != nil {
			if replyKey, err = kcrypto.CF2(resp.StrengthenKey, longTerm, "strengthenkey", "replykey"); err != nil {
				return nil, bad("strengthened reply key", err)
			}
		}
		// The names the KDC vouches for inside the tunnel replace the clear ones.
		cname, crealm = resp.Finished.CName, resp.Finished.CRealm
	}
	part, err := decryptEncPart(rep, replyKey, req.req.ReqBody.Nonce)
	if err != nil {
		return nil, bad("encrypted part", err)
	}
	key, err := kcrypto.NewKey(part.Key.KeyType, part.Key.KeyValue)
	if err != nil {
		return nil, bad("session key", err)
	}
	return &userTGT{ticket: rep.ticket, key: key, cname: cname, crealm: crealm}, nil
}

// serviceTicket asks the KDC, with the user's TGT, for a ticket to kerbgate's own
// SPN: the ticket a Negotiate sign-in would bring, with the same PAC.
func (c *Client) serviceTicket(ctx context.Context, t *userTGT) (*initiator.Credential, error) {
	var tkt messages.Ticket
	if err := tkt.Unmarshal(t.ticket); err != nil {
		return nil, reason.New(reason.KDCError, "the user's TGT does not decode", "error", err.Error())
	}
	cname := types.PrincipalName{NameType: t.cname.NameType, NameString: t.cname.Components}
	sname := types.NewPrincipalName(2, c.cfg.ServiceSPN) // NT-SRV-INST
	req, err := messages.NewTGSReq(cname, t.crealm, c.krbcfg, tkt,
		types.EncryptionKey{KeyType: t.key.EType(), KeyValue: t.key.Value()}, sname, false)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build the TGS-REQ", "error", err.Error())
	}
	msg, err := req.Marshal()
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot encode the TGS-REQ", "error", err.Error())
	}
	answer, err := c.send(ctx, msg, &c.tgsExchanges)
	if err != nil {
		return nil, c.transportRefusal(err)
	}
	if len(answer) > 0 && answer[0] == 0x7e {
		var e messages.KRBError
		if err := e.Unmarshal(answer); err != nil {
			return nil, reason.New(reason.KDCError, "the KDC's answer does not decode", "error", err.Error())
		}
		return nil, c.refusal(&e, nil, User{Name: t.cname.String()})
	}
	var rep messages.TGSRep
	if err := rep.Unmarshal(answer); err != nil {
		return nil, reason.New(reason.KDCError, "the TGS-REP does not decode", "error", err.Error())
	}
	if err := rep.DecryptEncPart(types.EncryptionKey{KeyType: t.key.EType(), KeyValue: t.key.Value()}); err != nil {
		return nil, reason.New(reason.KDCError, "the TGS-REP does not decrypt with the TGT's session key", "error", err.Error())
	}
	if rep.DecryptedEncPart.Nonce != req.ReqBody.Nonce {
		return nil, reason.New(reason.KDCError, "the TGS-REP nonce does not match the request")
	}
	if !strings.EqualFold(rep.Ticket.SName.PrincipalNameString(), c.cfg.ServiceSPN) {
		return nil, reason.New(reason.KDCError, "the TGS-REP is for another service", "sname", rep.Ticket.SName.PrincipalNameString())
	}
	der, err := rep.Ticket.Marshal()
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot encode the service ticket", "error", err.Error())
	}
	sk, err := kcrypto.NewKey(rep.DecryptedEncPart.Key.KeyType, rep.DecryptedEncPart.Key.KeyValue)
	if err != nil {
		return nil, reason.New(reason.EnctypeNotAllowed, "the service ticket's session key enctype is not supported", "error", err.Error())
	}
	return &initiator.Credential{
		Ticket:      der,
		SessionKey:  sk,
		Client:      wire.PrincipalName{NameType: rep.CName.NameType, Components: rep.CName.NameString},
		ClientRealm: rep.CRealm,
		Server:      c.cfg.ServiceSPN + "@" + rep.Ticket.Realm,
		EndTime:     rep.DecryptedEncPart.EndTime,
	}, nil
}
