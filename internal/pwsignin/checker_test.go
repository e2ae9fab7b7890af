package pwsignin

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/testrealm"
)

// newChecker is a Checker on the real test domain: kerbgate's account svc-gw, the
// gateway's keytab for the acceptor, a Bolt store.
func newChecker(t *testing.T, mod func(*CheckerOptions, *LockoutConfig)) *Checker {
	t.Helper()
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	kt, err := keytab.Load(r.GatewayAccountKeytab)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := logon.New(logon.Config{Realm: r.Realm, KDCs: []string{r.KDC}, Keytab: kt, Principal: "svc-gw", ServiceSPN: testrealm.GatewaySPN})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Load(r.GatewayKeytab)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := acceptor.New(acceptor.Config{Keyring: kr, SPNs: []string{testrealm.GatewaySPN}, Realm: r.Realm, Replay: replay.NewMemory(1000)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o := CheckerOptions{Logon: lg, Acceptor: acc, Names: Names{Realm: r.Realm}}
	lc := LockoutConfig{DomainThreshold: 0, Backoff: time.Millisecond, MaxBackoff: time.Second}
	if mod != nil {
		mod(&o, &lc)
	}
	o.Lockout = NewLockout(st, lc, nil, nil, nil)
	c, err := NewChecker(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A failed check is answered no sooner than MinAnswer, an unknown user (one KDC
// exchange) like a wrong password (two, and a key derivation): the answer's time
// does not tell whether the account exists. A success is not held back.
func TestFailuresAnswerNoSoonerThanTheFloor(t *testing.T) {
	const floor = 400 * time.Millisecond
	c := newChecker(t, func(o *CheckerOptions, _ *LockoutConfig) { o.MinAnswer = floor })
	src := netip.MustParseAddr("192.0.2.1")
	for _, name := range []string{"nosuchuser-zz", "alice"} {
		start := time.Now()
		_, err := c.Check(context.Background(), name, "Wrong#Pass1", src)
		if took := time.Since(start); code(err) != reason.PasswordWrong || took < floor {
			t.Errorf("%s: %v after %s, want password_wrong after at least %s", name, err, took, floor)
		}
	}
	id, err := c.Check(context.Background(), "alice", testrealm.Password("alice"), src)
	if err != nil || id.Principal != "alice@EXAMPLE.TEST" || id.AuthMethod != "pwd" {
		t.Fatalf("alice: %+v, %v", id, err)
	}
}

// The bound on checks in flight answers password_busy at once, and gives the
// attempt back to smart lockout (it never reached the KDC).
func TestBusyGivesTheAttemptBack(t *testing.T) {
	c := newChecker(t, func(o *CheckerOptions, l *LockoutConfig) { o.MaxConcurrent = 1; l.UnfamiliarThreshold = 1 })
	c.slots <- struct{}{} // the one slot taken
	src := netip.MustParseAddr("192.0.2.2")
	if _, err := c.Check(context.Background(), "alice", testrealm.Password("alice"), src); code(err) != reason.PasswordBusy {
		t.Fatalf("with no slot: %v", err)
	}
	<-c.slots
	// The account's one allowed attempt is still there.
	if _, err := c.Check(context.Background(), "alice", testrealm.Password("alice"), src); err != nil {
		t.Fatalf("after busy: %v", err)
	}
}
