package acceptor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/reason"
)

const domainSID = "S-1-5-21-1111111111-2222222222-3333333333"

func buildPAC(t testing.TB, serverKey *kcrypto.Key, user string, groups int) []byte {
	t.Helper()
	rids := make([]uint32, groups)
	for i := range rids {
		rids[i] = uint32(2000 + i)
	}
	b, err := krbtest.PAC(krbtest.PACOptions{
		UserName: user, FullName: "Alice Example", Domain: "EXAMPLE", DNSDomain: "example.test",
		UPN: user + "@example.test", DomainSID: domainSID, UserRID: 1104, GroupRIDs: rids,
		ExtraSIDs: []string{"S-1-18-1"}, AuthTime: time.Now().Add(-time.Minute).Truncate(time.Second),
	}, serverKey, krbtest.RandomKey(kcrypto.AES256SHA1))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPACGivesSIDGroupsUPNAndSAMName(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.PAC = buildPAC(t, f.key, "alice", 30) })
	res, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Identity
	if !res.HasPAC || id.SID != domainSID+"-1104" || id.UPN != "alice@example.test" || id.SAMAccountName != "alice" ||
		id.DNSDomain != "example.test" || id.DisplayName != "Alice Example" {
		t.Errorf("identity %+v", id)
	}
	if len(id.Groups) != 31 || id.Groups[0] != domainSID+"-2000" || id.Groups[30] != "S-1-18-1" {
		t.Errorf("groups (%d) %v", len(id.Groups), id.Groups)
	}
}

func TestPACSignedWithAnotherKeyIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, func(s *krbtest.TicketSpec) {
		s.PAC = buildPAC(t, krbtest.RandomKey(kcrypto.AES256SHA1), "alice", 3)
	})
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.PACInvalid)
}

func TestPACOfAnotherClientIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.PAC = buildPAC(t, f.key, "mallory", 3) })
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.PACInvalid, "pac_client=mallory", "ticket_client=alice")
}

func TestCorruptPACIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	p := buildPAC(t, f.key, "alice", 3)
	p[0] = 0xff // cBuffers
	c := f.cred(t, func(s *krbtest.TicketSpec) { s.PAC = p })
	_, err := f.acc.Accept(t.Context(), apReq(t, c, initiator.Options{Now: f.now}))
	wantRefusal(t, err, reason.PACInvalid)
}

// BenchmarkAccept measures the whole accept path for one fresh AP-REQ: AES256 ticket
// with a 30-group PAC, mutual authentication (AP-REP), replay cache insert. The
// AP-REQs are made outside the timer (each must be new, or it is a replay).
func BenchmarkAccept(b *testing.B) {
	for _, groups := range []int{1, 30, 300} {
		b.Run(fmt.Sprintf("aes256-%dgroups", groups), func(b *testing.B) {
			benchAccept(b, groups, initiator.Options{}, nil)
		})
	}
}

// BenchmarkAcceptEPA is the accept path with and without the Extended Protection
// check (channel binding under Require, bindings present and matching), one run, so
// the difference is the cost of EPA.
func BenchmarkAcceptEPA(b *testing.B) {
	served := epa.Binding("tls-server-end-point:" + strings.Repeat("\x42", 32))
	bnd := epa.BindingHash(served)
	policy := epa.Policy{TokenChecking: epa.Require, SPNs: []string{"HTTP/sso.example.test"}}
	ch := epa.Channel{Served: []epa.Binding{served}}
	for _, on := range []bool{false, true} {
		name := "cbt-off"
		if on {
			name = "cbt-require"
		}
		b.Run(name, func(b *testing.B) {
			var check func(*Result)
			if on {
				check = func(res *Result) {
					tok := epa.Token{SPN: res.SPN, Client: res.Identity.Principal, Checksum: res.Checksum, AuthenticatorAD: res.AuthenticatorAD}
					if _, err := policy.Check(&tok, ch); err != nil {
						b.Fatal(err)
					}
				}
			}
			benchAccept(b, 30, initiator.Options{ChannelBindingHash: bnd[:]}, check)
		})
	}
}

// benchAccept measures Accept of fresh AP-REQs (made outside the timer, in batches)
// for a ticket with a PAC of groups groups, then runs check on each result.
func benchAccept(b *testing.B, groups int, o initiator.Options, check func(*Result)) {
	f := newFixture(b, nil)
	c := f.cred(b, func(s *krbtest.TicketSpec) { s.PAC = buildPAC(b, f.key, "alice", groups) })
	o.Now = f.now
	const batch = 2048
	reqs := make([][]byte, batch)
	fill := func() {
		for i := range reqs {
			reqs[i] = apReq(b, c, o)
		}
	}
	fill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%batch == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		res, err := f.acc.Accept(b.Context(), reqs[i%batch])
		if err != nil {
			b.Fatal(err)
		}
		if check != nil {
			check(res)
		}
	}
}
