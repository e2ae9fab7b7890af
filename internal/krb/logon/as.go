package logon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kerbgate/kerbgate/internal/krb/fast"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

// This file is the AS exchange itself: the request, its transport, and the two
// shapes of answer (AS-REP, KRB-ERROR).

// asRequest is one AS-REQ about to be sent: its body (kept to check the reply's
// nonce and to sign it under FAST) and its pre-authentication data.
type asRequest struct {
	req  messages.ASReq
	body []byte // DER of req.ReqBody
}

// newASRequest builds the body of an AS-REQ for a TGT of client: AES enctypes
// only, canonicalize (so that the KDC answers with the account's own name whatever
// the user typed), no addresses, a fresh nonce.
func (c *Client) newASRequest(client types.PrincipalName, now time.Time) (*asRequest, error) {
	req, err := messages.NewASReqForTGT(c.cfg.Realm, c.krbcfg, client)
	if err != nil {
		return nil, err
	}
	req.ReqBody.Till = now.Add(10 * time.Hour)
	types.SetFlag(&req.ReqBody.KDCOptions, flags.Canonicalize)
	req.ReqBody.EType = append([]int32(nil), c.enctypes...)
	body, err := req.ReqBody.Marshal()
	if err != nil {
		return nil, err
	}
	return &asRequest{req: req, body: body}, nil
}

// enterprise is an NT-ENTERPRISE name ("alice@example.test"), which the KDC
// resolves as a UPN.
func enterprise(name string) types.PrincipalName {
	return types.PrincipalName{NameType: nametype.KRB_NT_ENTERPRISE, NameString: []string{name}}
}

// principal is an account name in the realm ("alice").
func principal(name string) types.PrincipalName {
	return types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{name}}
}

// asReply is an AS-REP split into what the client reads: the raw ticket (FAST's
// finished checksum is over its bytes as sent) and the encrypted part.
type asReply struct {
	padata  []fast.PAData
	crealm  string
	cname   wire.PrincipalName
	ticket  []byte // DER Ticket, exactly as the KDC sent it
	encType int32
	encPart []byte
}

// kdcError is a KRB-ERROR from the KDC.
type kdcError struct {
	messages.KRBError
}

func (e *kdcError) Error() string { return e.KRBError.Error() }

// send sends one KDC message to the first KDC that answers and counts it.
func (c *Client) send(ctx context.Context, msg []byte, counter *atomic.Uint64) ([]byte, error) {
	var last error
	for _, addr := range c.cfg.KDCs {
		counter.Add(1)
		b, err := kdc.Exchange(ctx, addr, msg, c.cfg.Timeout)
		if err == nil {
			return b, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &netError{last}
}

// netError means no KDC answered.
type netError struct{ err error }

func (e *netError) Error() string { return "no KDC answered: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// exchange sends an AS-REQ with padata, counted in counter, and returns the AS-REP,
// or a *kdcError.
func (c *Client) exchange(ctx context.Context, r *asRequest, padata []fast.PAData, counter *atomic.Uint64) (*asReply, error) {
	r.req.PAData = make(types.PADataSequence, len(padata))
	for i, p := range padata {
		r.req.PAData[i] = types.PAData{PADataType: p.Type, PADataValue: p.Value}
	}
	msg, err := r.req.Marshal()
	if err != nil {
		return nil, err
	}
	answer, err := c.send(ctx, msg, counter)
	if err != nil {
		return nil, err
	}
	return parseASAnswer(answer)
}

// parseASAnswer splits a KDC's answer to an AS-REQ.
func parseASAnswer(b []byte) (*asReply, error) {
	if len(b) > 0 && b[0] == 0x7e { // [APPLICATION 30] KRB-ERROR
		var e messages.KRBError
		if err := e.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("KDC answer does not decode: %w", err)
		}
		return nil, &kdcError{e}
	}
	return parseASRep(b)
}

var errMalformedRep = errors.New("AS-REP does not decode")

// parseASRep reads AS-REP ::= [APPLICATION 11] KDC-REP.
func parseASRep(b []byte) (*asReply, error) {
	s := cryptobyte.String(b)
	var rep, seq, f cryptobyte.String
	if !s.ReadASN1(&rep, casn1.Tag(11).Constructed()|0x40) || !rep.ReadASN1(&seq, casn1.SEQUENCE) {
		return nil, errMalformedRep
	}
	var pvno, mt int64
	if !seq.ReadASN1(&f, ctxTag(0)) || !f.ReadASN1Int64WithTag(&pvno, casn1.INTEGER) || pvno != 5 ||
		!seq.ReadASN1(&f, ctxTag(1)) || !f.ReadASN1Int64WithTag(&mt, casn1.INTEGER) || mt != 11 {
		return nil, errMalformedRep
	}
	r := &asReply{}
	var present bool
	if !seq.ReadOptionalASN1(&f, &present, ctxTag(2)) {
		return nil, errMalformedRep
	}
	if present {
		var err error
		if r.padata, err = fast.ParseMethodData(f); err != nil {
			return nil, err
		}
	}
	var realm cryptobyte.String
	if !seq.ReadASN1(&f, ctxTag(3)) || !f.ReadASN1(&realm, casn1.Tag(27)) {
		return nil, errMalformedRep
	}
	r.crealm = string(realm)
	var name cryptobyte.String
	if !seq.ReadASN1Element(&name, ctxTag(4)) {
		return nil, errMalformedRep
	}
	var p *wire.PrincipalName
	if p = parsePrincipal(name); p == nil {
		return nil, errMalformedRep
	}
	r.cname = *p
	var tkt cryptobyte.String
	if !seq.ReadASN1(&f, ctxTag(5)) || !f.ReadASN1Element(&tkt, casn1.Tag(1).Constructed()|0x40) {
		return nil, errMalformedRep
	}
	r.ticket = []byte(tkt)
	var enc, et, ct cryptobyte.String
	var etype int64
	var kv cryptobyte.String
	var hasKVNO bool
	if !seq.ReadASN1(&f, ctxTag(6)) || !f.ReadASN1(&enc, casn1.SEQUENCE) ||
		!enc.ReadASN1(&et, ctxTag(0)) || !et.ReadASN1Int64WithTag(&etype, casn1.INTEGER) ||
		!enc.ReadOptionalASN1(&kv, &hasKVNO, ctxTag(1)) || !enc.ReadASN1(&ct, ctxTag(2)) ||
		!ct.ReadASN1Bytes(&r.encPart, casn1.OCTET_STRING) || etype < -1<<31 || etype > 1<<31-1 {
		return nil, errMalformedRep
	}
	r.encType = int32(etype)
	return r, nil
}

// parsePrincipal reads an explicitly tagged PrincipalName ([n] SEQUENCE {...}).
func parsePrincipal(el cryptobyte.String) *wire.PrincipalName {
	var tagged, seq, f, names cryptobyte.String
	var tag casn1.Tag
	var nt int64
	if !el.ReadAnyASN1(&tagged, &tag) || !tagged.ReadASN1(&seq, casn1.SEQUENCE) ||
		!seq.ReadASN1(&f, ctxTag(0)) || !f.ReadASN1Int64WithTag(&nt, casn1.INTEGER) ||
		!seq.ReadASN1(&f, ctxTag(1)) || !f.ReadASN1(&names, casn1.SEQUENCE) || nt < -1<<31 || nt > 1<<31-1 {
		return nil
	}
	p := &wire.PrincipalName{NameType: int32(nt)}
	for !names.Empty() {
		var c cryptobyte.String
		if !names.ReadASN1(&c, casn1.Tag(27)) || len(p.Components) >= 8 {
			return nil
		}
		p.Components = append(p.Components, string(c))
	}
	return p
}

func ctxTag(n int) casn1.Tag { return casn1.Tag(n).Constructed().ContextSpecific() }

// decryptEncPart decrypts an AS-REP's encrypted part with the reply key and checks
// its nonce against the request's.
func decryptEncPart(r *asReply, replyKey *kcrypto.Key, nonce int) (*messages.EncKDCRepPart, error) {
	if r.encType != replyKey.EType() {
		return nil, fmt.Errorf("AS-REP encrypted with enctype %d, reply key of %d", r.encType, replyKey.EType())
	}
	plain, err := replyKey.Decrypt(kcrypto.UsageASRepEncPart, r.encPart)
	if err != nil {
		return nil, err
	}
	var part messages.EncKDCRepPart
	if err := part.Unmarshal(plain); err != nil {
		return nil, err
	}
	if part.Nonce != nonce {
		return nil, errors.New("AS-REP nonce does not match the request (a replayed or forged reply)")
	}
	return &part, nil
}
