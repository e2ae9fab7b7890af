package initiator_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

const (
	realm = "EXAMPLE.TEST"
	spn   = "HTTP/sso.example.test"
)

// setup returns an acceptor for spn with a fresh key, and a forged credential for
// alice under that key.
func setup(t *testing.T) (*acceptor.Acceptor, *initiator.Credential) {
	t.Helper()
	key := krbtest.RandomKey(kcrypto.AES256SHA1)
	acc, err := acceptor.New(acceptor.Config{
		Keyring: keyring.New(keyring.Entry{Principal: spn, Realm: realm, KVNO: 2, EType: kcrypto.AES256SHA1, Key: key}),
		SPNs:    []string{spn}, Realm: realm, Replay: replay.NewMemory(1 << 10),
	})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := krbtest.Forge(krbtest.TicketSpec{ServiceKey: key, KVNO: 2, SPN: []string{"HTTP", "sso.example.test"}, Realm: realm,
		Client: []string{"alice"}, CRealm: realm})
	if err != nil {
		t.Fatal(err)
	}
	return acc, cred
}

// gssFlags returns the flags of the GSS checksum (RFC 4121 §4.1.1), and its Bnd.
func gssFlags(t *testing.T, res *acceptor.Result) (uint32, []byte) {
	t.Helper()
	if res.Checksum == nil || res.Checksum.Type != initiator.ChecksumGSS || len(res.Checksum.Value) < 24 {
		t.Fatalf("authenticator checksum %+v, want a GSS checksum (0x8003)", res.Checksum)
	}
	v := res.Checksum.Value
	if binary.LittleEndian.Uint32(v[:4]) != 16 {
		t.Errorf("Lgth %d, want 16", binary.LittleEndian.Uint32(v[:4]))
	}
	return binary.LittleEndian.Uint32(v[20:24]), v[4:20]
}

// The zero Options make what curl --negotiate sends: mutual authentication, no
// channel bindings, the current time; the acceptor accepts it and answers an AP-REP.
func TestAPReqIsAccepted(t *testing.T) {
	acc, cred := setup(t)
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := acc.Accept(t.Context(), ap)
	if err != nil {
		t.Fatalf("the acceptor refuses the initiator's AP-REQ: %v", err)
	}
	if res.Identity.Principal != "alice@"+realm || res.SPN != spn || res.APRep == nil {
		t.Errorf("result: user %q, spn %q, AP-REP %d bytes", res.Identity.Principal, res.SPN, len(res.APRep))
	}
	flags, bnd := gssFlags(t, res)
	if want := uint32(initiator.FlagMutual | initiator.FlagReplay | initiator.FlagSequence | initiator.FlagConf | initiator.FlagInteg); flags != want {
		t.Errorf("GSS flags %#x, want %#x", flags, want)
	}
	if !bytes.Equal(bnd, make([]byte, 16)) {
		t.Errorf("Bnd %x, want zeros without channel bindings", bnd)
	}
}

// Every call makes a fresh authenticator: two AP-REQs from one ticket are both
// accepted (no replay), and a resent one is refused.
func TestAPReqIsFreshPerCall(t *testing.T) {
	acc, cred := setup(t)
	a, _ := cred.APReq(initiator.Options{})
	b, _ := cred.APReq(initiator.Options{})
	if bytes.Equal(a, b) {
		t.Fatal("two calls made the same AP-REQ")
	}
	for _, ap := range [][]byte{a, b} {
		if _, err := acc.Accept(t.Context(), ap); err != nil {
			t.Fatal(err)
		}
	}
	var re *reason.Error
	if _, err := acc.Accept(t.Context(), a); !errors.As(err, &re) || re.Code != reason.Replay {
		t.Errorf("resent AP-REQ: %v, want replay", err)
	}
}

// Options: no mutual authentication, channel bindings, a subkey, the target name
// (MS-KILE), the time, and a fixed random source.
func TestAPReqOptions(t *testing.T) {
	acc, cred := setup(t)

	ap, _ := cred.APReq(initiator.Options{NoMutual: true})
	res, err := acc.Accept(t.Context(), ap)
	if err != nil {
		t.Fatal(err)
	}
	if flags, _ := gssFlags(t, res); flags&initiator.FlagMutual != 0 || res.APRep != nil {
		t.Errorf("NoMutual: flags %#x, AP-REP %d bytes", flags, len(res.APRep))
	}

	cbt := bytes.Repeat([]byte{0xcb}, 16)
	ap, _ = cred.APReq(initiator.Options{ChannelBindingHash: cbt, SubKey: krbtest.RandomKey(kcrypto.AES256SHA1), TargetName: spn + "@" + realm})
	if res, err = acc.Accept(t.Context(), ap); err != nil {
		t.Fatal(err)
	}
	if _, bnd := gssFlags(t, res); !bytes.Equal(bnd, cbt) {
		t.Errorf("Bnd %x, want %x", bnd, cbt)
	}
	if len(res.AuthenticatorAD) == 0 || res.AuthenticatorAD[0].Type != 1 { // AD-IF-RELEVANT
		t.Errorf("authenticator authorization data %+v, want AD-IF-RELEVANT with the target name", res.AuthenticatorAD)
	}

	ap, _ = cred.APReq(initiator.Options{Now: time.Now().Add(-time.Hour)})
	var re *reason.Error
	if _, err := acc.Accept(t.Context(), ap); !errors.As(err, &re) || re.Code != reason.ClockSkew {
		t.Errorf("an hour-old authenticator: %v, want clock_skew", err)
	}

	now := time.Now()
	det := func() []byte {
		b, err := cred.APReq(initiator.Options{Now: now, Rand: rand.NewChaCha8([32]byte{7})})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(det(), det()) {
		t.Error("the same time and random source made different AP-REQs")
	}

	other := wire.PrincipalName{NameType: 1, Components: []string{"mallory"}}
	ap, _ = cred.APReq(initiator.Options{Client: &other})
	if _, err := acc.Accept(t.Context(), ap); !errors.As(err, &re) || re.Code != reason.ClientMismatch {
		t.Errorf("authenticator client differs from the ticket's: %v, want client_mismatch", err)
	}
}

func TestAPReqNeedsTicketAndKey(t *testing.T) {
	if _, err := (&initiator.Credential{}).APReq(initiator.Options{}); err == nil {
		t.Error("APReq without a ticket succeeded")
	}
}
