package logon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/testrealm"
)

func newClient(t *testing.T, r *testrealm.Realm) *Client {
	t.Helper()
	kt, err := keytab.Load(r.GatewayAccountKeytab)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Realm: r.Realm, KDCs: []string{r.KDC}, Keytab: kt, Principal: "svc-gw", ServiceSPN: testrealm.GatewaySPN})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accept verifies the credential's ticket with the gateway's keytab, as a Negotiate
// sign-in would be.
func accept(t *testing.T, r *testrealm.Realm, cred *initiator.Credential) identity.Identity {
	t.Helper()
	kr, err := keyring.Load(r.GatewayKeytab)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := acceptor.New(acceptor.Config{Keyring: kr, SPNs: []string{testrealm.GatewaySPN}, Realm: r.Realm, Replay: replay.NewMemory(100)})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := acc.Accept(context.Background(), ap)
	if err != nil {
		t.Fatal(err)
	}
	return res.Identity
}

func signIn(t *testing.T, c *Client, u User, pw string) (*Result, *Attempt, error) {
	t.Helper()
	a, err := c.Begin(context.Background(), u)
	if err != nil {
		return nil, nil, err
	}
	res, err := a.Password(context.Background(), pw)
	return res, a, err
}

func code(err error) reason.Code {
	var re *reason.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// The password check is an armoured AS exchange (Samba 4.17's KDC offers FAST),
// then a ticket for kerbgate's own SPN that the acceptor verifies: the identity is
// the one a Negotiate sign-in of the same user gives, PAC and groups included. One
// sign-in costs two AS exchanges and one TGS exchange.
func TestPasswordGivesTheNegotiateIdentityOverFAST(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r)
	if ok, err := c.FASTOffered(context.Background()); err != nil || !ok {
		t.Fatalf("FASTOffered = %v, %v; Samba 4.17 offers FAST", ok, err)
	}
	armor := c.Stats().ArmorExchanges
	res, a, err := signIn(t, c, User{Name: "bob"}, testrealm.Password("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Armored || !res.Armored {
		t.Error("the exchange was not armoured")
	}
	got := accept(t, r, res.Credential)

	ccache := r.Kinit(t, "bob")
	r.Kvno(t, ccache, testrealm.GatewaySPN)
	cred, err := initiator.FromCCache(ccache, testrealm.GatewaySPN)
	if err != nil {
		t.Fatal(err)
	}
	want := accept(t, r, cred)
	if got.SID == "" || got.SID != want.SID || got.Principal != want.Principal || got.UPN != want.UPN ||
		!slices.Equal(got.Groups, want.Groups) {
		t.Errorf("password identity %+v\nnegotiate identity %+v", got, want)
	}
	if !slices.Contains(got.Groups, r.SID(t, "staff")) {
		t.Errorf("bob's nested group staff is missing from %v", got.Groups)
	}
	st := c.Stats()
	if st.ASExchanges != 2 || st.TGSExchanges != 1 || st.ArmorExchanges != armor {
		t.Errorf("stats %+v: want 2 AS and 1 TGS exchanges for one sign-in, and the armor TGT reused", st)
	}
}

// The KDC names the account whichever way the user typed it, so that failures are
// counted against the account and not against a spelling.
func TestAttemptNamesTheAccount(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r)
	for _, u := range []User{{Name: "alice"}, {Name: "ALICE"}, {Name: "alice@example.test", Enterprise: true}, {Name: "Alice@EXAMPLE.TEST", Enterprise: true}} {
		a, err := c.Begin(context.Background(), u)
		if err != nil {
			t.Fatalf("%+v: %v", u, err)
		}
		if a.Account != "alice@EXAMPLE.TEST" {
			t.Errorf("%+v: account %q", u, a.Account)
		}
	}
}

func fact(err error, key string) string {
	var re *reason.Error
	if errors.As(err, &re) {
		for _, f := range re.Facts {
			if f.Key == key {
				return f.Value.String()
			}
		}
	}
	return ""
}

// Each answer of the KDC has its own reason; with a wrong password, an account's
// state is not told (the KDC checks the password first), except a lockout, which
// the KDC tells before any password.
func TestKDCAnswersHaveTheirReasons(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r)
	mod := func(name, attr, val string) {
		r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n", r.DN(t, name), attr, attr, val))
	}
	for _, tc := range []struct {
		name       string
		set        func(user string)
		right, bad reason.Code
	}{
		{"disabled", func(u string) { r.SambaTool(t, "user", "disable", u) }, reason.UserDisabled, reason.PasswordWrong},
		{"locked", func(u string) { mod(u, "lockoutTime", fmt.Sprint(filetimeOf(time.Now()))) }, reason.UserLocked, reason.UserLocked},
		{"expired account", func(u string) { mod(u, "accountExpires", fmt.Sprint(filetimeOf(time.Now().Add(-time.Hour)))) }, reason.UserExpired, reason.PasswordWrong},
		{"must change", func(u string) { r.MustChangePassword(t, u) }, reason.PasswordMustChange, reason.PasswordWrong},
		{"password expired", func(u string) { r.ExpirePassword(t, u) }, reason.PasswordExpired, reason.PasswordWrong},
	} {
		u := r.TempUser(t, "pw")
		tc.set(u)
		if _, _, err := signIn(t, c, User{Name: u}, testrealm.TempUserPassword); code(err) != tc.right {
			t.Errorf("%s, right password: %v, want %s", tc.name, err, tc.right)
		}
		if _, _, err := signIn(t, c, User{Name: u}, "Wrong#Pass1"); code(err) != tc.bad {
			t.Errorf("%s, wrong password: %v, want %s", tc.name, err, tc.bad)
		}
	}
	_, _, err := signIn(t, c, User{Name: "alice"}, "Wrong#Pass1")
	if code(err) != reason.PasswordWrong || fact(err, "cause") != "wrong_password" {
		t.Errorf("wrong password: %v", err)
	}
	_, _, err = signIn(t, c, User{Name: "nosuchuser-x"}, "Wrong#Pass1")
	if code(err) != reason.PasswordWrong || fact(err, "cause") != "unknown_user" {
		t.Errorf("unknown user: %v", err)
	}
}

// kerbgate's clock an hour off: the KDC says so, and the reason names the clock.
func TestClockSkewIsNamed(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	kt, err := keytab.Load(r.GatewayAccountKeytab)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Realm: r.Realm, KDCs: []string{r.KDC}, Keytab: kt, Principal: "svc-gw", ServiceSPN: testrealm.GatewaySPN,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := signIn(t, c, User{Name: "alice"}, testrealm.Password("alice")); code(err) != reason.KDCClockSkew {
		t.Errorf("skewed clock: %v, want %s", err, reason.KDCClockSkew)
	}
}

// No KDC listening: kdc_unreachable, naming the setting.
func TestUnreachableKDC(t *testing.T) {
	kt := keytab.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(Config{Realm: "EXAMPLE.TEST", KDCs: []string{addr}, Keytab: kt, Principal: "svc-gw", ServiceSPN: testrealm.GatewaySPN, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Begin(context.Background(), User{Name: "alice"})
	if code(err) != reason.KDCUnreachable || !strings.Contains(reason.Of(err).Admin(), "password_signin.kdcs") {
		t.Errorf("unreachable KDC: %v", err)
	}
}

// filetimeOf is the AD FILETIME of t.
func filetimeOf(t time.Time) int64 { return t.UnixNano()/100 + 116444736000000000 }
