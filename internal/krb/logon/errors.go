package logon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/kerbgate/kerbgate/internal/krb/fast"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// KDC error codes this package reads (RFC 4120 §7.5.9).
const (
	errNameExp           = 1  // KDC_ERR_NAME_EXP: the account has expired
	errCPrincipalUnknown = 6  // KDC_ERR_C_PRINCIPAL_UNKNOWN
	errETypeNoSupp       = 14 // KDC_ERR_ETYPE_NOSUPP
	errClientRevoked     = 18 // KDC_ERR_CLIENT_REVOKED: disabled, locked out, logon hours
	errKeyExpired        = 23 // KDC_ERR_KEY_EXPIRED: password expired or must change
	errPreauthFailed     = 24 // KDC_ERR_PREAUTH_FAILED: wrong password
	errPreauthRequired   = 25 // KDC_ERR_PREAUTH_REQUIRED
	errSkew              = 37 // KRB_AP_ERR_SKEW
	errWrongRealm        = 68 // KDC_ERR_WRONG_REALM (a referral)
)

// NT status codes Active Directory's KDC sends with its errors (MS-ERREF 2.3.1),
// which tell apart what one Kerberos error code lumps together.
const (
	statusLogonFailure       = 0xC000006D
	statusAccountRestrict    = 0xC000006E
	statusInvalidLogonHours  = 0xC000006F
	statusInvalidWorkstation = 0xC0000070
	statusPasswordExpired    = 0xC0000071
	statusAccountDisabled    = 0xC0000072
	statusAccountExpired     = 0xC0000193
	statusPasswordMustChange = 0xC0000224
	statusAccountLockedOut   = 0xC0000234
	statusWrongPassword      = 0xC000006A
	statusNoSuchUser         = 0xC0000064
)

// ntStatus finds the NT status the KDC put with its error: a KERB-ERROR-DATA of
// type KERB_ERR_TYPE_EXTENDED (MS-KILE 2.2.1, 2.2.2) in e-data, or a PA-PW-SALT
// (type 3) holding the same KERB-EXT-ERROR, as Samba and Windows send them.
func ntStatus(e *messages.KRBError, padata []fast.PAData) (uint32, bool) {
	if v, ok := fast.Find(padata, 3); ok && len(v) >= 4 {
		return binary.LittleEndian.Uint32(v), true
	}
	if len(e.EData) == 0 {
		return 0, false
	}
	if pas, err := fast.ParseMethodData(e.EData); err == nil {
		if v, ok := fast.Find(pas, 3); ok && len(v) >= 4 {
			return binary.LittleEndian.Uint32(v), true
		}
	}
	// KERB-ERROR-DATA ::= SEQUENCE { data-type [1] INTEGER, data-value [2] OCTET STRING OPTIONAL }
	s := cryptobyte.String(e.EData)
	var seq, f cryptobyte.String
	var typ int64
	var v []byte
	if s.ReadASN1(&seq, casn1.SEQUENCE) && seq.ReadASN1(&f, ctxTag(1)) && f.ReadASN1Int64WithTag(&typ, casn1.INTEGER) &&
		typ == 3 && seq.ReadASN1(&f, ctxTag(2)) && f.ReadASN1Bytes(&v, casn1.OCTET_STRING) && len(v) >= 4 {
		return binary.LittleEndian.Uint32(v), true
	}
	return 0, false
}

// errorName is the KDC error's name, like KDC_ERR_PREAUTH_FAILED.
func errorName(code int32) string {
	name := errorcode.Lookup(code) // "(24) KDC_ERR_PREAUTH_FAILED Pre-authentication information was invalid"
	if _, rest, ok := strings.Cut(name, ") "); ok {
		name = rest
	}
	if i := strings.IndexByte(name, ' '); i > 0 {
		name = name[:i]
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// refusal maps the KDC's refusal of a user's exchange to a reason. The facts name
// the KDC's error and NT status; the person sees the catalog's page.
func (c *Client) refusal(e *messages.KRBError, padata []fast.PAData, u User) error {
	kv := []any{"user", u.Name, "kdc_error", errorName(e.ErrorCode)}
	if e.EText != "" {
		kv = append(kv, "kdc_text", truncate(e.EText, 128))
	}
	st, hasStatus := ntStatus(e, padata)
	if hasStatus {
		kv = append(kv, "nt_status", fmt.Sprintf("0x%08X", st))
	}
	switch {
	case hasStatus && st == statusAccountDisabled:
		return reason.New(reason.UserDisabled, "the KDC refused the sign-in: the account is disabled", kv...)
	case hasStatus && st == statusAccountLockedOut:
		return reason.New(reason.UserLocked, "the KDC refused the sign-in: the account is locked out", kv...)
	case hasStatus && st == statusAccountExpired, e.ErrorCode == errNameExp:
		return reason.New(reason.UserExpired, "the KDC refused the sign-in: the account has expired", kv...)
	case hasStatus && st == statusPasswordMustChange:
		return reason.New(reason.PasswordMustChange, "the KDC refused the sign-in: the password must be changed before the first sign-in", kv...)
	case hasStatus && st == statusPasswordExpired, e.ErrorCode == errKeyExpired:
		return reason.New(reason.PasswordExpired, "the KDC refused the sign-in: the password has expired", kv...)
	case hasStatus && (st == statusInvalidLogonHours || st == statusInvalidWorkstation || st == statusAccountRestrict):
		return reason.New(reason.UserRestricted, "the KDC refused the sign-in: the account may not sign in now or from here", kv...)
	case e.ErrorCode == errPreauthFailed, hasStatus && (st == statusWrongPassword || st == statusLogonFailure):
		return reason.New(reason.PasswordWrong, "the KDC refused the password", append(kv, "cause", "wrong_password")...)
	case e.ErrorCode == errCPrincipalUnknown, e.ErrorCode == errWrongRealm, hasStatus && st == statusNoSuchUser:
		return reason.New(reason.PasswordWrong, "the KDC does not know the user", append(kv, "cause", "unknown_user")...)
	case e.ErrorCode == errClientRevoked:
		// Samba's KDC answers a locked-out account so, before pre-authentication
		// and with no NT status (Windows sends STATUS_ACCOUNT_LOCKED_OUT); a
		// disabled account comes with its status, after the password is checked.
		return reason.New(reason.UserLocked, "the KDC refused the sign-in: the account's credentials are revoked without an NT status (how Samba answers a locked-out account)", kv...)
	case e.ErrorCode == errSkew:
		return reason.New(reason.KDCClockSkew, "the KDC says kerbgate's clock is too far from its own", kv...)
	case e.ErrorCode == errETypeNoSupp:
		return reason.New(reason.EnctypeNotAllowed, "the KDC has no AES key of the user", append(kv,
			"fix", "have the user change the password so that AES keys are made (domain functional level 2008 or later)")...)
	}
	return reason.New(reason.KDCError, "the KDC refused the sign-in", append(kv, "fix", "see the KDC's error; kerbgate doctor checks kerbgate's own account and the KDCs")...)
}

// transportRefusal maps a failure to reach the KDCs, or an answer that does not
// decode, to a reason.
func (c *Client) transportRefusal(err error) error {
	var re *reason.Error
	if errors.As(err, &re) {
		return re
	}
	var ne *netError
	if errors.As(err, &ne) {
		if errors.Is(err, context.Canceled) {
			return reason.New(reason.KDCUnreachable, "the request ended before the KDC answered", "error", err.Error())
		}
		return reason.New(reason.KDCUnreachable, "no KDC answered", "kdcs", strings.Join(c.cfg.KDCs, ","), "error", err.Error()).
			WithFix("No KDC in password_signin.kdcs answered: check the addresses and that TCP port 88 is open from kerbgate.")
	}
	return reason.New(reason.KDCError, "the KDC's answer does not decode", "error", err.Error())
}
