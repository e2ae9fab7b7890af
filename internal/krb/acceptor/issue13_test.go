package acceptor

import (
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Regression tests of issue 13 (items 2, 6, 7 and 8): each was written first and
// seen failing on the code before its fix.

// pacAt builds a PAC for user whose PAC_CLIENT_INFO is shaped by edit.
func pacAt(t *testing.T, key *kcrypto.Key, user string, authTime time.Time, edit func(*krbtest.PACOptions)) []byte {
	t.Helper()
	o := krbtest.PACOptions{UserName: user, Domain: "EXAMPLE", DNSDomain: "example.test", UPN: user + "@example.test",
		DomainSID: domainSID, UserRID: 1104, AuthTime: authTime}
	if edit != nil {
		edit(&o)
	}
	b, err := krbtest.PAC(o, key, krbtest.RandomKey(kcrypto.AES256SHA1))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Item 6: RFC 4120 §2.2: "application servers must reject tickets which have this
// flag set" (INVALID, bit 7).
func TestInvalidFlagTicketIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	const invalid = 1 << (31 - 7)
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.Flags = 0x40e10000 | invalid })
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.TicketInvalid, "client=alice@EXAMPLE.TEST")
}

// Item 7: MS-PAC §2.7: PAC_CLIENT_INFO must be there, and its ClientId must be the
// ticket's authtime.
func TestPACWithoutClientInfoIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	at := f.now.Add(-time.Minute).Truncate(time.Second)
	c := f.cred(t, func(s *krbtest.TicketSpec) {
		s.AuthTime = at
		s.PAC = pacAt(t, f.key, "alice", at, func(o *krbtest.PACOptions) { o.OmitClientInfo = true })
	})
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.PACInvalid, "ticket_client=alice")
}

func TestPACClientInfoTimeMustBeAuthTime(t *testing.T) {
	f := newFixture(t, nil)
	at := f.now.Add(-time.Minute).Truncate(time.Second)
	c := f.cred(t, func(s *krbtest.TicketSpec) {
		s.AuthTime = at
		s.PAC = pacAt(t, f.key, "alice", at, func(o *krbtest.PACOptions) { o.ClientInfoTime = at.Add(-time.Hour) })
	})
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.PACInvalid, "ticket_authtime="+at.UTC().Format(time.RFC3339),
		"pac_client_info_time="+at.Add(-time.Hour).UTC().Format(time.RFC3339))

	// The same PAC with the matching time is accepted.
	ok := f.cred(t, func(s *krbtest.TicketSpec) { s.AuthTime = at; s.PAC = pacAt(t, f.key, "alice", at, nil) })
	if _, err := f.acc.Accept(t.Context(), apReq(t, ok, initiator.Options{Now: f.now})); err != nil {
		t.Fatalf("PAC with ClientId = authtime refused: %v", err)
	}
}

// Item 8: the enctype policy applies to the session key and to the authenticator's
// subkey, not only to the ticket.
func TestRC4SessionKeyIsRefusedUnderAESPolicy(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.SessionEType = kcrypto.RC4HMAC })
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.EnctypeNotAllowed, "session_enctype=rc4-hmac", "client=alice@EXAMPLE.TEST")
}

func TestRC4SubkeyIsRefusedUnderAESPolicy(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, nil)
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now, SubKey: krbtest.RandomKey(kcrypto.RC4HMAC)}))
	wantRefusal(t, err, reason.EnctypeNotAllowed, "subkey_enctype=rc4-hmac", "client=alice@EXAMPLE.TEST")
	// An AES subkey is fine.
	if _, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now, SubKey: krbtest.RandomKey(kcrypto.AES256SHA1)})); err != nil {
		t.Fatalf("AES subkey refused: %v", err)
	}
}

// Item 2: a client of another realm (the ticket's crealm; the ticket itself is for
// our service in our realm) is refused unless that realm is trusted.
func TestClientOfUntrustedRealmIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.Client, s.CRealm = []string{"administrator"}, "PARTNER.TEST" })
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.ForeignRealm, "client=administrator@PARTNER.TEST", "client_realm=PARTNER.TEST")
}

func TestClientOfTrustedRealmIsAccepted(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TrustedRealms = []string{"PARTNER.TEST"} })
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.Client, s.CRealm = []string{"administrator"}, "PARTNER.TEST" })
	res, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Principal != "administrator@PARTNER.TEST" || res.Identity.Realm != "PARTNER.TEST" {
		t.Errorf("identity %+v", res.Identity)
	}
	// Realms compare exactly: another spelling is another realm.
	c = f.cred(t, func(s *krbtest.TicketSpec) { s.Client, s.CRealm = []string{"administrator"}, "partner.test" })
	_, err = f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.ForeignRealm, "client_realm=partner.test", "trusted_realms=PARTNER.TEST")
}
