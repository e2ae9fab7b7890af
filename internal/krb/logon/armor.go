package logon

import (
	"context"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbgate/kerbgate/internal/krb/fast"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// armorTGT is kerbgate's own TGT, the FAST armor of every user's exchange, and
// whether the KDC offers FAST.
type armorTGT struct {
	ticket     []byte
	key        *kcrypto.Key
	client     wire.PrincipalName
	realm      string
	fast       bool
	start, end time.Time
}

func (t *armorTGT) newArmor(c *Client) (*fast.Armor, error) {
	return fast.NewArmor(t.ticket, t.key, t.client, t.realm, c.now(), c.rand)
}

// refreshBefore is how long before its end the armor TGT is replaced.
func refreshBefore(start, end time.Time) time.Duration {
	return max(end.Sub(start)/10, 5*time.Minute)
}

// armorTGT returns kerbgate's TGT, getting a new one with the keytab's key when there
// is none or it is close to its end. Concurrent callers wait for one exchange.
func (c *Client) armorTGT(ctx context.Context) (*armorTGT, error) {
	c.armorMu.Lock()
	defer c.armorMu.Unlock()
	now := c.now()
	if t := c.armor; t != nil && now.Before(t.end.Add(-refreshBefore(t.start, t.end))) {
		return t, nil
	}
	t, err := c.getArmorTGT(ctx, now)
	if err != nil {
		return nil, err
	}
	c.armor = t
	return t, nil
}

// FASTOffered gets kerbgate's own TGT if it has none and says whether the KDC
// offers FAST (for the start-up log and the doctor).
func (c *Client) FASTOffered(ctx context.Context) (bool, error) {
	t, err := c.armorTGT(ctx)
	if err != nil {
		return false, err
	}
	return t.fast, nil
}

// getArmorTGT runs kerbgate's own AS exchange: the first request learns which of
// the keytab's enctypes the KDC wants (and whether it offers FAST, PA-FX-FAST in
// METHOD-DATA), the second proves the key with an encrypted timestamp.
func (c *Client) getArmorTGT(ctx context.Context, now time.Time) (*armorTGT, error) {
	me := principal(c.cfg.Principal)
	req, err := c.newASRequest(me, now)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build kerbgate's AS-REQ", "error", err.Error())
	}
	_, err = c.exchange(ctx, req, nil, &c.armorExchanges)
	var ke *kdcError
	if err == nil || !asKDCError(err, &ke) {
		if err == nil {
			return nil, reason.New(reason.KDCError, "kerbgate's account does not require pre-authentication", "principal", c.cfg.Principal)
		}
		return nil, c.transportRefusal(err)
	}
	if ke.ErrorCode != errPreauthRequired {
		return nil, c.serviceRefusal(&ke.KRBError)
	}
	method, _ := fast.ParseMethodData(ke.EData)
	_, offered := fast.Find(method, fast.PAFXFAST)
	key, err := c.keytabKey(method)
	if err != nil {
		return nil, err
	}
	req, err = c.newASRequest(me, c.now())
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot build kerbgate's AS-REQ", "error", err.Error())
	}
	ts, err := fast.EncryptedTimestamp(key, 1, c.now(), c.rand)
	if err != nil {
		return nil, reason.New(reason.Internal, "cannot encrypt kerbgate's timestamp", "error", err.Error())
	}
	rep, err := c.exchange(ctx, req, []fast.PAData{{Type: fast.PAEncTimestamp, Value: ts}}, &c.armorExchanges)
	if err != nil {
		if asKDCError(err, &ke) {
			return nil, c.serviceRefusal(&ke.KRBError)
		}
		return nil, c.transportRefusal(err)
	}
	// A KDC that offers FAST also says so in the AS-REP's padata (PA-FX-FAST):
	// MIT clients read it there.
	if _, ok := fast.Find(rep.padata, fast.PAFXFAST); ok {
		offered = true
	}
	part, err := decryptEncPart(rep, key, req.req.ReqBody.Nonce)
	if err != nil {
		return nil, reason.New(reason.KDCError, "kerbgate's own AS-REP does not decrypt with the keytab's key", "error", err.Error(),
			"principal", c.cfg.Principal)
	}
	sk, err := kcrypto.NewKey(part.Key.KeyType, part.Key.KeyValue)
	if err != nil {
		return nil, reason.New(reason.KDCError, "kerbgate's TGT session key", "error", err.Error())
	}
	start := part.StartTime
	if start.IsZero() {
		start = part.AuthTime
	}
	return &armorTGT{ticket: rep.ticket, key: sk, client: rep.cname, realm: rep.crealm, fast: offered, start: start, end: part.EndTime}, nil
}

// keytabKey is the keytab's key of kerbgate's principal for the first AES enctype
// the KDC announces in PA-ETYPE-INFO2.
func (c *Client) keytabKey(method []fast.PAData) (*kcrypto.Key, error) {
	want := c.enctypes
	if v, ok := fast.Find(method, fast.PAETypeInfo2); ok {
		if entries, err := fast.ParseETypeInfo2(v); err == nil {
			want = nil
			for _, e := range entries {
				want = append(want, e.EType)
			}
		}
	}
	me := principal(c.cfg.Principal)
	for _, et := range want {
		if et != kcrypto.AES256SHA1 && et != kcrypto.AES128SHA1 {
			continue
		}
		k, _, err := c.cfg.Keytab.GetEncryptionKey(me, c.cfg.Realm, 0, et)
		if err != nil {
			continue
		}
		return kcrypto.NewKey(k.KeyType, k.KeyValue)
	}
	return nil, reason.New(reason.KDCError, "kerbgate's keytab has no AES key of its principal that the KDC accepts",
		"principal", c.cfg.Principal, "kdc_enctypes", kcrypto.EnctypeNameList(want),
		"fix", "export the account's own keys (samba-tool domain exportkeytab --principal=ACCOUNT, or ktpass) with AES enabled on the account")
}

func asKDCError(err error, out **kdcError) bool {
	ke, ok := err.(*kdcError)
	if ok {
		*out = ke
	}
	return ok
}

// serviceRefusal maps a KDC error to kerbgate's own AS exchange.
func (c *Client) serviceRefusal(e *messages.KRBError) error {
	if e.ErrorCode == errSkew {
		return reason.New(reason.KDCClockSkew, "the KDC says kerbgate's clock is too far from its own",
			"principal", c.cfg.Principal, "kdc_error", errorName(e.ErrorCode))
	}
	return reason.New(reason.KDCError, "the KDC refused kerbgate's own sign-in (the FAST armor)",
		"principal", c.cfg.Principal, "kdc_error", errorName(e.ErrorCode),
		"fix", "check password_signin.principal and password_signin.keytab: the keytab must hold the account's current keys (kvno)")
}
