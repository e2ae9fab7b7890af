package s4u

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The vector was computed independently of this package, in Python, from RFC 4757
// §4 and MS-SFU 2.2.1:
//
//	key = bytes(range(32))
//	data = struct.pack('<I', 10) + b'alice@example.test' + b'EXAMPLE.TEST' + b'Kerberos'
//	ksign = hmac.new(key, b'signaturekey\x00', md5).digest()
//	hmac.new(ksign, md5(struct.pack('<I', 17) + data).digest(), md5).hexdigest()
func TestForUserChecksumVector(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	got := ForUserChecksum(10, []string{"alice@example.test"}, "EXAMPLE.TEST", key)
	if hex.EncodeToString(got) != "a6b1927a2c051630bd9e9f8186ed8508" {
		t.Fatalf("checksum %x", got)
	}
}

// Issue 13, item 2: PA-FOR-USER carries the user's own realm, and the ticket cache
// keeps a user of another realm apart from the local user of the same name.
func TestPAForUserCarriesTheUsersRealm(t *testing.T) {
	c, err := New(Config{Keytab: keytab.New(), Principal: "svc-gw", Realm: "EXAMPLE.TEST", KDCs: []string{"127.0.0.1:88"}})
	if err != nil {
		t.Fatal(err)
	}
	key := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	for _, tc := range []struct {
		user      User
		realm     string
		nameType  int32
		component string
	}{
		{User{Name: "administrator", Realm: "PARTNER.TEST"}, "PARTNER.TEST", nametype.KRB_NT_PRINCIPAL, "administrator"},
		{User{Name: "administrator@partner.test", Enterprise: true, Realm: "PARTNER.TEST"}, "PARTNER.TEST", nametype.KRB_NT_ENTERPRISE, "administrator@partner.test"},
		{User{Name: "administrator"}, "EXAMPLE.TEST", nametype.KRB_NT_PRINCIPAL, "administrator"},
	} {
		pa, err := c.paForUser(tc.user, key)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			UserName    types.PrincipalName `asn1:"explicit,tag:0"`
			UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
			Cksum       types.Checksum      `asn1:"explicit,tag:2"`
			AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
		}
		if pa.PADataType != patype.PA_FOR_USER {
			t.Fatalf("padata type %d", pa.PADataType)
		}
		if _, err := asn1.Unmarshal(pa.PADataValue, &v); err != nil {
			t.Fatal(err)
		}
		if v.UserRealm != tc.realm || v.UserName.NameType != tc.nameType || len(v.UserName.NameString) != 1 ||
			v.UserName.NameString[0] != tc.component || v.AuthPackage != "Kerberos" {
			t.Errorf("%+v: PA-FOR-USER %+v", tc.user, v)
		}
		if want := ForUserChecksum(tc.nameType, []string{tc.component}, tc.realm, key.KeyValue); !bytes.Equal(v.Cksum.Checksum, want) {
			t.Errorf("%+v: checksum does not cover realm %s", tc.user, tc.realm)
		}
	}
	spn := "HTTP/app.example.test"
	if c.cacheKey(User{Name: "administrator"}, spn) == c.cacheKey(User{Name: "administrator", Realm: "PARTNER.TEST"}, spn) {
		t.Error("the cache key does not tell the realms apart")
	}
	if c.cacheKey(User{Name: "alice"}, spn) != c.cacheKey(User{Name: "alice", Realm: "EXAMPLE.TEST"}, spn) {
		t.Error("the service's realm spelled out is another cache entry")
	}
}

func newClient(t *testing.T, r *testrealm.Realm, principal, keytabPath string, kdcs ...string) *Client {
	t.Helper()
	kt, err := Keytab(keytabPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(kdcs) == 0 {
		kdcs = []string{"127.0.0.1:88"}
	}
	c, err := New(Config{Keytab: kt, Principal: principal, Realm: "EXAMPLE.TEST", KDCs: kdcs})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accept verifies a delegated token as the upstream would, with the upstream's keytab.
func accept(t *testing.T, keytabPath, spn string, token []byte) *acceptor.Result {
	t.Helper()
	kr, err := keyring.Load(keytabPath)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := acceptor.New(acceptor.Config{Keyring: kr, SPNs: []string{spn}, Realm: "EXAMPLE.TEST", Replay: replay.NewMemory(1000)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := spnego.Decode(token)
	if err != nil {
		t.Fatal(err)
	}
	gss := tok.MechToken
	ap, _, err := spnego.KerberosAPReq(gss)
	if err != nil {
		t.Fatal(err)
	}
	res, err := acc.Accept(t.Context(), ap)
	if err != nil {
		t.Fatalf("upstream refuses the delegated ticket: %v", err)
	}
	return res
}

func wantCode(t *testing.T, err error, code reason.Code) {
	t.Helper()
	var re *reason.Error
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func TestClassicConstrainedDelegation(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r, "svc-gw", r.GatewayAccountKeytab)
	aliceSID := r.SID(t, "alice")
	for _, u := range []User{{Name: "alice@example.test", Enterprise: true}, {Name: "alice"}} {
		for _, f := range []Format{SPNEGO, RawKerberos} {
			tok, err := c.Token(context.Background(), u, "HTTP/app.example.test", f)
			if err != nil {
				t.Fatalf("%+v: %v", u, err)
			}
			if f == RawKerberos && tok[0] != 0x60 {
				t.Fatalf("raw token starts with %#x", tok[0])
			}
			res := accept(t, r.AppKeytab, "HTTP/app.example.test", tok)
			// Samba's KDC keeps an enterprise name as the ticket's client name
			// (alice@example.test@EXAMPLE.TEST); the PAC names the account.
			want := "alice@EXAMPLE.TEST"
			if u.Enterprise {
				want = "alice@example.test@EXAMPLE.TEST"
			}
			if res.Identity.Principal != want || res.Identity.SAMAccountName != "alice" || res.Identity.SID != aliceSID || len(res.Identity.Groups) == 0 {
				t.Fatalf("%+v: upstream sees %+v", u, res.Identity)
			}
		}
	}
	// Each token is a fresh authenticator from the cached ticket.
	a, _ := c.Token(context.Background(), User{Name: "alice"}, "HTTP/app.example.test", RawKerberos)
	b, _ := c.Token(context.Background(), User{Name: "alice"}, "HTTP/app.example.test", RawKerberos)
	if string(a) == string(b) {
		t.Fatal("two tokens are identical")
	}
	if s := c.Stats(); s.ASRequests != 1 || s.S4U2SelfRequests != 2 || s.S4U2ProxyRequests != 2 {
		t.Fatalf("KDC requests: %+v (one TGT, one exchange per name form)", s)
	}
}

// Resource-based constrained delegation: svc-rbcd grants svc-gw in
// msDS-AllowedToActOnBehalfOfOtherIdentity, with no classic delegation to its SPN.
// kerbgate sends PA-PAC-OPTIONS with the resource-based flag, as MS-KILE asks. The
// outcome must be the one MIT's own S4U client (kvno -U -P) gets from the same KDC:
// Samba 4.17's KDC (Debian 12) refuses both with KDC_ERR_BADOPTION, so here the test
// pins that parity and that the refusal is named delegation_not_allowed; against a
// KDC that honours RBCD, both succeed and the upstream must see the user.
func TestResourceBasedConstrainedDelegation(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r, "svc-gw", r.GatewayAccountKeytab)
	tok, err := c.Token(context.Background(), User{Name: "bob"}, "HTTP/rbcd.example.test", SPNEGO)

	cc := filepath.Join(t.TempDir(), "svc-gw.cc")
	env := r.Env("FILE:" + cc)
	kinit := exec.Command("kinit", "-f", "-k", "-t", r.GatewayAccountKeytab, "svc-gw")
	kinit.Env = env
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit svc-gw: %v\n%s", err, out)
	}
	kvno := exec.Command("kvno", "-U", "bob", "-P", "HTTP/rbcd.example.test")
	kvno.Env = env
	mitOut, mitErr := kvno.CombinedOutput()
	t.Logf("MIT kvno -U bob -P HTTP/rbcd.example.test: err=%v %s; kerbgate: %v", mitErr, mitOut, err)

	switch {
	case err == nil && mitErr == nil:
		if res := accept(t, r.RBCDKeytab, "HTTP/rbcd.example.test", tok); res.Identity.Principal != "bob@EXAMPLE.TEST" {
			t.Fatalf("upstream sees %+v", res.Identity)
		}
	case err != nil && mitErr != nil:
		wantCode(t, err, reason.DelegationNotAllowed)
		if !strings.Contains(string(mitOut), "KDC can't fulfill requested option") {
			t.Fatalf("MIT's refusal is another: %s", mitOut)
		}
	default:
		t.Fatalf("kerbgate and MIT disagree on RBCD: kerbgate %v; MIT %v %s", err, mitErr, mitOut)
	}
}

// The S4U2Proxy request carries PA-PAC-OPTIONS with the resource-based flag, and
// the S4U2Self request PA-FOR-USER after PA-TGS-REQ.
func TestPAPACOptionsEncoding(t *testing.T) {
	pa := paPACOptionsRBCD()
	// SEQUENCE { [0] BIT STRING (32 bits, bit 3 set) }
	const want = "3009a00703050010000000"
	if pa.PADataType != 167 || hex.EncodeToString(pa.PADataValue) != want {
		t.Fatalf("PA-PAC-OPTIONS %d %x", pa.PADataType, pa.PADataValue)
	}
}

func TestKDCRefusalsAreNamed(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	c := newClient(t, r, "svc-gw", r.GatewayAccountKeytab)
	ctx := context.Background()

	_, err := c.Token(ctx, User{Name: "nobody-here@example.test", Enterprise: true}, "HTTP/app.example.test", SPNEGO)
	wantCode(t, err, reason.UserUnknown)
	_, err = c.Token(ctx, User{Name: "alice"}, "HTTP/nowhere.example.test", SPNEGO)
	wantCode(t, err, reason.UpstreamSPNUnknown)
	target := r.TempUser(t, "svctgt") // an upstream svc-gw may not delegate to
	spn := "HTTP/" + target + ".example.test"
	r.SambaTool(t, "spn", "add", spn, target)
	r.SetEnctypes(t, target, 24)
	_, err = c.Token(ctx, User{Name: "alice"}, spn, SPNEGO)
	wantCode(t, err, reason.DelegationNotAllowed)
	if s := c.Stats(); s.Failures[reason.DelegationNotAllowed] != 1 || s.Failures[reason.UserUnknown] != 1 {
		t.Errorf("failure counters %+v", s.Failures)
	}

	// A service account without protocol transition: its S4U2Self tickets are not
	// forwardable, and S4U2Proxy is refused.
	svc := r.TempUser(t, "svcnopt")
	// A service account needs an SPN of its own, or the KDC does not know it as a
	// service (S4U2Self then fails with KDC_ERR_S_PRINCIPAL_UNKNOWN).
	r.SambaTool(t, "spn", "add", "HTTP/"+svc+".example.test", svc)
	r.SetEnctypes(t, svc, 24)
	r.SambaTool(t, "delegation", "add-service", svc, "HTTP/app.example.test")
	kt := filepath.Join(t.TempDir(), svc+".keytab")
	r.ExportKeytab(t, svc, kt)
	nopt := newClient(t, r, svc, kt)
	_, err = nopt.Token(ctx, User{Name: "alice"}, "HTTP/app.example.test", SPNEGO)
	wantCode(t, err, reason.ProtocolTransitionNotAllowed)
	// With protocol transition on, the same account works.
	r.SambaTool(t, "delegation", "for-any-protocol", svc, "on")
	if _, err := newClient(t, r, svc, kt).Token(ctx, User{Name: "alice"}, "HTTP/app.example.test", SPNEGO); err != nil {
		t.Fatalf("after for-any-protocol on: %v", err)
	}
	// And without the SPN in msDS-AllowedToDelegateTo: delegation_not_allowed.
	r.SambaTool(t, "delegation", "del-service", svc, "HTTP/app.example.test")
	_, err = newClient(t, r, svc, kt).Token(ctx, User{Name: "alice"}, "HTTP/app.example.test", SPNEGO)
	wantCode(t, err, reason.DelegationNotAllowed)
}

// A burst for one user makes one exchange; when the KDC goes away, users with
// cached tickets keep working and others get kdc_unreachable.
func TestCacheSingleFlightAndKDCOutage(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	kdc := newTCPProxy(t, "127.0.0.1:88")
	c := newClient(t, r, "svc-gw", r.GatewayAccountKeytab, kdc.addr())
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Token(ctx, User{Name: "bob"}, "HTTP/app.example.test", SPNEGO)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.ASRequests != 1 || s.S4U2SelfRequests != 1 || s.S4U2ProxyRequests != 1 || s.CacheHits+s.CacheMisses != 50 {
		t.Fatalf("50 concurrent tokens: %+v", s)
	}

	kdc.close()
	tok, err := c.Token(ctx, User{Name: "bob"}, "HTTP/app.example.test", SPNEGO)
	if err != nil {
		t.Fatalf("cached user during the outage: %v", err)
	}
	accept(t, r.AppKeytab, "HTTP/app.example.test", tok)
	_, err = c.Token(ctx, User{Name: "alice"}, "HTTP/app.example.test", SPNEGO)
	wantCode(t, err, reason.KDCUnreachable)

	dead := newClient(t, r, "svc-gw", r.GatewayAccountKeytab, "127.0.0.1:1")
	_, err = dead.Token(ctx, User{Name: "alice"}, "HTTP/app.example.test", SPNEGO)
	wantCode(t, err, reason.KDCUnreachable)
}

func TestLRUEvicts(t *testing.T) {
	c := newLRU(2)
	now := time.Now()
	for _, k := range []string{"a", "b", "c"} {
		c.do(k, func() (*initiator.Credential, time.Time, error) {
			return &initiator.Credential{}, now.Add(time.Hour), nil
		})
	}
	if c.len() != 2 {
		t.Fatalf("len %d", c.len())
	}
	if _, ok := c.get("a", now); ok {
		t.Fatal("least recently used entry kept")
	}
	if _, ok := c.get("c", now.Add(2*time.Hour)); ok {
		t.Fatal("entry past its refresh time returned")
	}
}

// tcpProxy forwards to a KDC until closed, then refuses connections (a KDC outage).
type tcpProxy struct {
	ln     net.Listener
	target string
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }
func (p *tcpProxy) close()       { p.ln.Close() }
