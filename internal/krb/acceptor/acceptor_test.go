package acceptor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/pac"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

const realm = "EXAMPLE.TEST"

var spn = []string{"HTTP", "sso.example.test"}

// fixture is a service with one key and an acceptor over it.
type fixture struct {
	key *kcrypto.Key
	acc *Acceptor
	now time.Time
}

func newFixture(t testing.TB, mutate func(*Config), keys ...keyring.Entry) *fixture {
	t.Helper()
	f := &fixture{key: krbtest.RandomKey(kcrypto.AES256SHA1), now: time.Now()}
	entries := append([]keyring.Entry{{Principal: "HTTP/sso.example.test", Realm: realm, KVNO: 2, EType: kcrypto.AES256SHA1, Key: f.key}}, keys...)
	cfg := Config{
		Keyring: keyring.New(entries...),
		SPNs:    []string{"HTTP/sso.example.test"},
		Realm:   realm,
		Replay:  replay.NewMemory(1 << 16),
		Now:     func() time.Time { return f.now },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	var err error
	if f.acc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) cred(t testing.TB, mutate func(*krbtest.TicketSpec)) *initiator.Credential {
	t.Helper()
	s := krbtest.TicketSpec{ServiceKey: f.key, KVNO: 2, SPN: spn, Realm: realm, Client: []string{"alice"}, CRealm: realm}
	if mutate != nil {
		mutate(&s)
	}
	// A PAC's PAC_CLIENT_INFO time must be the ticket's authtime: take it from there.
	if s.PAC != nil && s.AuthTime.IsZero() {
		if p, err := pac.Parse(s.PAC); err == nil && p.HasClientInfo {
			s.AuthTime = p.ClientInfoTime
		}
	}
	c, err := krbtest.Forge(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apReq(t testing.TB, c *initiator.Credential, o initiator.Options) []byte {
	t.Helper()
	b, err := c.APReq(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantRefusal asserts the error is a refusal with the code and, for each fact
// given as "key=value", that the refusal carries it.
func wantRefusal(t *testing.T, err error, code reason.Code, facts ...string) *reason.Error {
	t.Helper()
	var re *reason.Error
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want refusal %s", err, code)
	}
	if re.Code != code {
		t.Fatalf("got refusal %s (%s), want %s", re.Code, re, code)
	}
	for _, f := range facts {
		if !strings.Contains(re.Error(), " "+f) {
			t.Errorf("refusal %q lacks fact %q", re, f)
		}
	}
	return re
}

func TestAcceptsTicketAndAnswersMutualAuth(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, nil)
	res, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Principal != "alice@EXAMPLE.TEST" || res.Identity.SAMAccountName != "alice" {
		t.Errorf("identity %+v", res.Identity)
	}
	if res.SPN != "HTTP/sso.example.test" || res.KVNO != 2 || res.EType != kcrypto.AES256SHA1 {
		t.Errorf("result spn=%s kvno=%d etype=%d", res.SPN, res.KVNO, res.EType)
	}
	if res.Checksum == nil || res.Checksum.Type != initiator.ChecksumGSS {
		t.Errorf("GSS checksum not passed on: %+v", res.Checksum)
	}
	if res.APRep == nil {
		t.Fatal("mutual authentication requested but no AP-REP")
	}
	part := decryptAPRep(t, res.APRep, c.SessionKey)
	if !part.CTime.Equal(f.now.Truncate(time.Second)) || part.CUSec != int32(f.now.Nanosecond()/1000) {
		t.Errorf("AP-REP echoes ctime %v cusec %d, want %v %d", part.CTime, part.CUSec, f.now.Truncate(time.Second), f.now.Nanosecond()/1000)
	}
}

func TestNoAPRepWithoutMutual(t *testing.T) {
	f := newFixture(t, nil)
	res, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, nil), initiator.Options{Now: f.now, NoMutual: true}))
	if err != nil {
		t.Fatal(err)
	}
	if res.APRep != nil {
		t.Error("AP-REP sent though the client did not ask for mutual authentication")
	}
}

func TestReplayIsRefusedButFreshAuthenticatorIsNot(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, nil)
	req := apReq(t, c, initiator.Options{Now: f.now})
	if _, err := f.acc.Accept(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	_, err := f.acc.Accept(t.Context(), req)
	wantRefusal(t, err, reason.Replay, "client=alice@EXAMPLE.TEST")
	// Same ticket, same second, new authenticator: not a replay.
	if _, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now})); err != nil {
		t.Fatalf("fresh authenticator refused: %v", err)
	}
}

func TestReplayCacheFullFailsClosed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Replay = replay.NewMemory(32) })
	c := f.cred(t, nil)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	}
	wantRefusal(t, err, reason.ReplayCacheFull)
}

// downCache is a shared replay cache that cannot be reached.
type downCache struct{}

func (downCache) SeenBefore(context.Context, replay.Key, time.Time, time.Time) (bool, error) {
	return false, fmt.Errorf("store: redis 127.0.0.1:1: %w: dial tcp: connection refused", replay.ErrUnavailable)
}

func TestReplayCacheUnavailableIsStoreUnavailable(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Replay = downCache{} })
	_, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, nil), initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.StoreUnavailable, "client=alice@EXAMPLE.TEST", "op=replay_check")
}

// expiryCache records what the acceptor passes.
type expiryCache struct{ now, expires time.Time }

func (c *expiryCache) SeenBefore(_ context.Context, _ replay.Key, now, expires time.Time) (bool, error) {
	c.now, c.expires = now, expires
	return false, nil
}

// The replay entry must outlive the authenticator's acceptance window on every
// node: the acceptor asks for it to be kept until the authenticator's time plus
// the clock skew, a time that does not depend on the node's clock.
func TestReplayEntryLivesUntilCtimePlusSkew(t *testing.T) {
	rc := &expiryCache{}
	f := newFixture(t, func(c *Config) { c.Replay = rc; c.ClockSkew = 3 * time.Minute })
	ctime := f.now.Add(-time.Minute).Truncate(time.Microsecond)
	if _, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, nil), initiator.Options{Now: ctime})); err != nil {
		t.Fatal(err)
	}
	if !rc.now.Equal(f.now) || !rc.expires.Equal(ctime.Add(3*time.Minute)) {
		t.Fatalf("SeenBefore(now=%v, expires=%v), want now=%v expires=%v", rc.now, rc.expires, f.now, ctime.Add(3*time.Minute))
	}
}

func TestRefusals(t *testing.T) {
	other := krbtest.RandomKey(kcrypto.AES256SHA1)
	rc4 := krbtest.RandomKey(kcrypto.RC4HMAC)
	aes128 := krbtest.RandomKey(kcrypto.AES128SHA1)
	bob := wire.PrincipalName{NameType: 1, Components: []string{"bob"}}
	tests := []struct {
		name   string
		ticket func(*krbtest.TicketSpec)
		opts   func(*fixture, *initiator.Options)
		config func(*Config)
		code   reason.Code
		facts  []string
	}{
		{name: "spn_mismatch", ticket: func(s *krbtest.TicketSpec) { s.SPN = []string{"HTTP", "app.example.test"} },
			code: reason.SPNMismatch, facts: []string{"ticket_spn=HTTP/app.example.test", "accepted_spns=HTTP/sso.example.test"}},
		{name: "realm_mismatch", ticket: func(s *krbtest.TicketSpec) { s.Realm = "OTHER.TEST" },
			code: reason.RealmMismatch, facts: []string{"ticket_realm=OTHER.TEST"}},
		{name: "rc4 not allowed by default", ticket: func(s *krbtest.TicketSpec) { s.ServiceKey = rc4 },
			code: reason.EnctypeNotAllowed, facts: []string{"ticket_enctype=rc4-hmac"}},
		{name: "enctype allowed but not in keytab", ticket: func(s *krbtest.TicketSpec) { s.ServiceKey = aes128 },
			code: reason.EnctypeNotAllowed, facts: []string{"ticket_enctype=aes128-cts-hmac-sha1-96", "keytab_enctypes=aes256-cts-hmac-sha1-96"}},
		{name: "spn accepted but no key", ticket: func(s *krbtest.TicketSpec) { s.SPN = []string{"HTTP", "alias.example.test"} },
			config: func(c *Config) { c.SPNs = append(c.SPNs, "HTTP/alias.example.test") },
			code:   reason.SPNNotInKeytab, facts: []string{"spn=HTTP/alias.example.test"}},
		{name: "kvno_not_in_keytab", ticket: func(s *krbtest.TicketSpec) { s.KVNO = 3 },
			code: reason.KVNONotInKeytab, facts: []string{"ticket_kvno=3", "keytab_kvnos=2"}},
		{name: "key_mismatch", ticket: func(s *krbtest.TicketSpec) { s.ServiceKey = other },
			code: reason.KeyMismatch, facts: []string{"kvno=2"}},
		{name: "clock skew ahead", opts: func(f *fixture, o *initiator.Options) { o.Now = f.now.Add(6 * time.Minute) },
			code: reason.ClockSkew, facts: []string{"skew_seconds=-360", "max_skew_seconds=300"}},
		{name: "clock skew behind", opts: func(f *fixture, o *initiator.Options) { o.Now = f.now.Add(-10 * time.Minute) },
			code: reason.ClockSkew, facts: []string{"skew_seconds=600"}},
		{name: "ticket_expired", ticket: func(s *krbtest.TicketSpec) {
			s.AuthTime, s.EndTime = time.Now().Add(-11*time.Hour), time.Now().Add(-time.Hour)
		}, code: reason.TicketExpired, facts: []string{"client=alice@EXAMPLE.TEST"}},
		{name: "ticket_not_yet_valid", ticket: func(s *krbtest.TicketSpec) { s.StartTime = time.Now().Add(time.Hour) },
			code: reason.TicketNotYetValid},
		{name: "client_mismatch", opts: func(_ *fixture, o *initiator.Options) { o.Client = &bob },
			code: reason.ClientMismatch, facts: []string{"ticket_client=alice@EXAMPLE.TEST", "authenticator_client=bob@EXAMPLE.TEST"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.config)
			o := initiator.Options{Now: f.now}
			if tt.opts != nil {
				tt.opts(f, &o)
			}
			_, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, tt.ticket), o))
			wantRefusal(t, err, tt.code, tt.facts...)
		})
	}
}

func TestClockSkewBoundaryAndConfiguredSkew(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, nil), initiator.Options{Now: f.now.Add(-4 * time.Minute)})); err != nil {
		t.Fatalf("4 minutes of skew refused under the 5 minute default: %v", err)
	}
	g := newFixture(t, func(c *Config) { c.ClockSkew = time.Minute })
	_, err := g.acc.Accept(t.Context(), apReq(t, g.cred(t, nil), initiator.Options{Now: g.now.Add(-90 * time.Second)}))
	wantRefusal(t, err, reason.ClockSkew, "skew_seconds=90", "max_skew_seconds=60")
}

func TestRC4AcceptedWhenConfigured(t *testing.T) {
	rc4 := krbtest.RandomKey(kcrypto.RC4HMAC)
	f := newFixture(t, func(c *Config) { c.Enctypes = []int32{kcrypto.AES256SHA1, kcrypto.RC4HMAC} },
		keyring.Entry{Principal: "HTTP/sso.example.test", Realm: realm, KVNO: 2, EType: kcrypto.RC4HMAC, Key: rc4})
	res, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, func(s *krbtest.TicketSpec) { s.ServiceKey = rc4 }), initiator.Options{Now: f.now}))
	if err != nil {
		t.Fatal(err)
	}
	if res.EType != kcrypto.RC4HMAC || res.APRep == nil {
		t.Errorf("etype %d, AP-REP %v", res.EType, res.APRep != nil)
	}
}

func TestTwoKeyVersionsBothAccepted(t *testing.T) {
	newKey := krbtest.RandomKey(kcrypto.AES256SHA1)
	f := newFixture(t, nil, keyring.Entry{Principal: "HTTP/sso.example.test", Realm: realm, KVNO: 3, EType: kcrypto.AES256SHA1, Key: newKey})
	for _, kv := range []struct {
		kvno uint32
		key  *kcrypto.Key
	}{{2, f.key}, {3, newKey}} {
		res, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, func(s *krbtest.TicketSpec) { s.KVNO, s.ServiceKey = kv.kvno, kv.key }), initiator.Options{Now: f.now}))
		if err != nil {
			t.Fatalf("kvno %d: %v", kv.kvno, err)
		}
		if res.KVNO != kv.kvno {
			t.Errorf("kvno %d accepted as %d", kv.kvno, res.KVNO)
		}
	}
}

func TestSPNComparisonIgnoresCase(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.acc.Accept(t.Context(), apReq(t, f.cred(t, func(s *krbtest.TicketSpec) { s.SPN = []string{"http", "SSO.example.test"} }), initiator.Options{Now: f.now})); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedAPReqIsRefusedNotPanicking(t *testing.T) {
	f := newFixture(t, nil)
	good := apReq(t, f.cred(t, nil), initiator.Options{Now: f.now})
	for n := 0; n < len(good); n += 7 {
		_, err := f.acc.Accept(t.Context(), good[:n])
		wantRefusal(t, err, reason.MalformedToken)
	}
	// A flipped bit in the authenticator's ciphertext is caught by its MAC.
	bad := append([]byte(nil), good...)
	bad[len(bad)-20] ^= 1
	_, err := f.acc.Accept(t.Context(), bad)
	wantRefusal(t, err, reason.MalformedToken)
}

func decryptAPRep(t *testing.T, apRep []byte, sessionKey *kcrypto.Key) *encAPRepPart {
	t.Helper()
	p, err := parseAPRepForTest(apRep, sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type encAPRepPart struct {
	CTime time.Time
	CUSec int32
}

// parseAPRepForTest decodes the AP-REP with gokrb5, an independent implementation.
func parseAPRepForTest(b []byte, key *kcrypto.Key) (*encAPRepPart, error) {
	var rep messages.APRep
	if err := rep.Unmarshal(b); err != nil {
		return nil, err
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, types.EncryptionKey{KeyType: key.EType(), KeyValue: key.Value()}, kcrypto.UsageAPRepEncPart)
	if err != nil {
		return nil, err
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return nil, err
	}
	return &encAPRepPart{CTime: part.CTime, CUSec: int32(part.Cusec)}, nil
}
