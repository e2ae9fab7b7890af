package epa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// The vector was computed independently of this package, in Python:
//
//	ad = b"tls-server-end-point:" + bytes(range(32))
//	hashlib.md5(struct.pack("<IIIII", 0, 0, 0, 0, len(ad)) + ad).hexdigest()
//
// which is the layout REALM.md records as verified against python3-gssapi's tokens.
func TestBindingHashVector(t *testing.T) {
	app := []byte("tls-server-end-point:")
	for i := 0; i < 32; i++ {
		app = append(app, byte(i))
	}
	got := BindingHash(Binding(app))
	if hex.EncodeToString(got[:]) != "8f1214c9c9cab8dc3bf866da9aba57a7" {
		t.Fatalf("BindingHash = %x", got)
	}
}

func selfSigned(t *testing.T, alg x509.SignatureAlgorithm, pub, priv any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), SignatureAlgorithm: alg}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("%v: %v", alg, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RFC 5929 §4.1: the certificate's signature hash, but SHA-256 for MD5 and SHA-1.
func TestServerEndPointHashFollowsTheSignature(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, c := range []struct {
		alg  x509.SignatureAlgorithm
		pub  any
		priv crypto.Signer
		sum  func([]byte) []byte
	}{
		{x509.SHA256WithRSA, &rk.PublicKey, rk, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{x509.SHA1WithRSA, &rk.PublicKey, rk, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{x509.SHA512WithRSA, &rk.PublicKey, rk, func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
		{x509.ECDSAWithSHA384, &ek.PublicKey, ek, func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }},
	} {
		cert := selfSigned(t, c.alg, c.pub, c.priv)
		b, err := ServerEndPoint(cert)
		if err != nil {
			t.Fatalf("%v: %v", c.alg, err)
		}
		want := append([]byte("tls-server-end-point:"), c.sum(cert.Raw)...)
		if string(b) != string(want) {
			t.Errorf("%v: got %x", c.alg, b)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := ServerEndPoint(selfSigned(t, x509.PureEd25519, pub, priv)); err == nil {
		t.Error("Ed25519 certificate has a binding")
	}
}

// result fakes an accepted sign-in with the given Bnd (nil: zeros), CBT signal and SPN.
func result(bnd []byte, aware bool, spn string) *Token {
	sum := make([]byte, 24)
	binary.LittleEndian.PutUint32(sum, 16)
	copy(sum[4:20], bnd)
	r := &Token{SPN: spn, Client: "alice@EXAMPLE.TEST", Checksum: &wire.Checksum{Type: 0x8003, Value: sum}}
	if aware {
		var opts [4]byte
		binary.LittleEndian.PutUint32(opts[:], apOptionsCBT)
		inner, _ := wire.MarshalAuthorizationData([]wire.AuthorizationData{{Type: adAuthDataAPOpts, Data: opts[:]}})
		r.AuthenticatorAD = []wire.AuthorizationData{{Type: adIfRelevant, Data: inner}}
	}
	return r
}

func TestPolicy(t *testing.T) {
	ours := Binding("tls-server-end-point:ours")
	lb := Binding("tls-server-end-point:balancer")
	other := Binding("tls-server-end-point:attacker")
	h := func(b Binding) []byte { x := BindingHash(b); return x[:] }
	tlsConn := Channel{Served: []Binding{ours}}
	plain := Channel{}
	sso, otherSPN, dotless := "HTTP/sso.example.test", "HTTP/other.example.test", "HTTP/sso"
	spns := []string{sso}

	cases := []struct {
		name   string
		policy Policy
		ch     Channel
		res    *Token
		want   reason.Code // "" passes
		out    Outcome
	}{
		{"None checks nothing", Policy{TokenChecking: None}, tlsConn, result(h(other), true, otherSPN), "", NotChecked},

		{"Allow, TLS, bound right", Policy{TokenChecking: Allow, SPNs: spns}, tlsConn, result(h(ours), false, sso), "", ChannelBound},
		{"Allow, TLS, bound to another cert", Policy{TokenChecking: Allow, SPNs: spns}, tlsConn, result(h(other), false, sso), reason.CBTMismatch, Refused},
		{"Allow, TLS, unbound client", Policy{TokenChecking: Allow, SPNs: spns}, tlsConn, result(nil, false, sso), "", UnboundAllowed},
		{"Allow, TLS, CBT-aware client unbound", Policy{TokenChecking: Allow, SPNs: spns}, tlsConn, result(nil, true, sso), reason.CBTMissing, Refused},
		{"Allow, TLS, other SPN but bound", Policy{TokenChecking: Allow, SPNs: spns}, tlsConn, result(h(ours), true, otherSPN), "", ChannelBound},
		{"Allow, resumed session, any own cert", Policy{TokenChecking: Allow, SPNs: spns}, Channel{Served: []Binding{other, ours}}, result(h(ours), false, sso), "", ChannelBound},

		{"Require, TLS, bound right", Policy{TokenChecking: Require, SPNs: spns}, tlsConn, result(h(ours), true, sso), "", ChannelBound},
		{"Require, TLS, unbound", Policy{TokenChecking: Require, SPNs: spns}, tlsConn, result(nil, false, sso), reason.CBTMissing, Refused},
		{"Require, TLS, no GSS checksum", Policy{TokenChecking: Require, SPNs: spns}, tlsConn, &Token{SPN: sso}, reason.CBTMissing, Refused},

		{"Allow, plain HTTP, service binding", Policy{TokenChecking: Allow, SPNs: spns}, plain, result(nil, false, sso), "", ServiceBound},
		{"Allow, plain HTTP, other SPN", Policy{TokenChecking: Allow, SPNs: spns}, plain, result(nil, false, otherSPN), reason.SPNMismatch, Refused},
		{"Allow, plain HTTP, token bound to some TLS", Policy{TokenChecking: Allow, SPNs: spns}, plain, result(h(other), true, sso), reason.CBTMismatch, Refused},
		{"Allow, plain HTTP, dotless", Policy{TokenChecking: Allow, SPNs: spns}, plain, result(nil, false, dotless), reason.SPNDotless, Refused},
		{"Allow, plain HTTP, dotless allowed", Policy{TokenChecking: Allow, Flags: AllowDotlessSpn, SPNs: []string{sso, dotless}}, plain, result(nil, false, dotless), "", ServiceBound},
		{"Allow, plain HTTP, NoServiceNameCheck", Policy{TokenChecking: Allow, Flags: NoServiceNameCheck, SPNs: spns}, plain, result(nil, false, otherSPN), "", ServiceBound},
		{"Require, plain HTTP, no channel", Policy{TokenChecking: Require, SPNs: spns}, plain, result(nil, false, sso), reason.CBTMissing, Refused},

		{"Proxy, bound (to the proxy's cert)", Policy{TokenChecking: Require, Flags: Proxy, SPNs: spns}, plain, result(h(lb), true, sso), "", ServiceBound},
		{"Proxy, bound, other SPN", Policy{TokenChecking: Require, Flags: Proxy, SPNs: spns}, plain, result(h(lb), true, otherSPN), reason.SPNMismatch, Refused},
		{"Proxy Require, unbound", Policy{TokenChecking: Require, Flags: Proxy, SPNs: spns}, plain, result(nil, false, sso), reason.CBTMissing, Refused},
		{"Proxy Allow, unbound unaware client", Policy{TokenChecking: Allow, Flags: Proxy, SPNs: spns}, plain, result(nil, false, sso), "", ServiceBound},
		{"Proxy Allow, unbound aware client", Policy{TokenChecking: Allow, Flags: Proxy, SPNs: spns}, plain, result(nil, true, sso), reason.CBTMissing, Refused},
		{"Proxy over kerbgate's TLS: no exact match", Policy{TokenChecking: Require, Flags: Proxy, SPNs: spns}, tlsConn, result(h(lb), true, sso), "", ServiceBound},
		{"ProxyCohosting, unbound aware client", Policy{TokenChecking: Require, Flags: Proxy | ProxyCohosting, SPNs: spns}, plain, result(nil, true, sso), "", ServiceBound},
		{"ProxyCohosting Require, unbound unaware client", Policy{TokenChecking: Require, Flags: Proxy | ProxyCohosting, SPNs: spns}, plain, result(nil, false, sso), reason.CBTMissing, Refused},
		{"ProxyCohosting Allow, unbound unaware client", Policy{TokenChecking: Allow, Flags: Proxy | ProxyCohosting, SPNs: spns}, plain, result(nil, false, sso), "", ServiceBound},
		{"ProxyCohosting, other SPN", Policy{TokenChecking: Allow, Flags: Proxy | ProxyCohosting, SPNs: spns}, plain, result(nil, false, otherSPN), reason.SPNMismatch, Refused},

		{"balancer certificate, bound to it", Policy{TokenChecking: Require, SPNs: spns, ProxyBindings: []Binding{lb}}, plain, result(h(lb), false, sso), "", ChannelBound},
		{"balancer certificate, bound elsewhere", Policy{TokenChecking: Require, SPNs: spns, ProxyBindings: []Binding{lb}}, plain, result(h(other), false, sso), reason.CBTMismatch, Refused},
		{"balancer certificate, unbound", Policy{TokenChecking: Require, SPNs: spns, ProxyBindings: []Binding{lb}}, plain, result(nil, false, sso), reason.CBTMissing, Refused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.policy.Validate(); err != nil {
				t.Fatalf("policy does not validate: %v", err)
			}
			out, err := c.policy.Check(c.res, c.ch)
			var got reason.Code
			if err != nil {
				e := reason.Of(err)
				if e == nil {
					t.Fatalf("not a reason: %v", err)
				}
				got = e.Code
			}
			if got != c.want || out != c.out {
				t.Fatalf("got %q/%s, want %q/%s (err %v)", got, out, c.want, c.out, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"cohosting without proxy", Policy{TokenChecking: Allow, Flags: ProxyCohosting}, false},
		{"cohosting without proxy, even under None", Policy{Flags: ProxyCohosting}, false},
		{"proxy without name check", Policy{TokenChecking: Allow, Flags: Proxy | NoServiceNameCheck}, false},
		{"proxy with balancer certificates", Policy{TokenChecking: Allow, Flags: Proxy, ProxyBindings: []Binding{Binding("tls-server-end-point:x")}}, false},
		{"dotless name without the flag", Policy{TokenChecking: Allow, SPNs: []string{"HTTP/sso"}}, false},
		{"dotless name with the flag", Policy{TokenChecking: Allow, Flags: AllowDotlessSpn, SPNs: []string{"HTTP/sso"}}, true},
		{"proxy cohosting", Policy{TokenChecking: Require, Flags: Proxy | ProxyCohosting, SPNs: []string{"HTTP/a.b"}}, true},
	} {
		if err := c.p.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", c.name, err)
		}
	}
}

func TestIsDotless(t *testing.T) {
	for spn, want := range map[string]bool{"HTTP/sso": true, "HTTP/sso:8443": true, "HTTP/sso.example.test": false, "HTTP/sso.example.test:443": false} {
		if IsDotless(spn) != want {
			t.Errorf("IsDotless(%q) = %v", spn, !want)
		}
	}
}

// The cost of the check on top of the accept path: read the bindings and compare.
func BenchmarkCheck(b *testing.B) {
	ours := Binding("tls-server-end-point:" + string(make([]byte, 32)))
	x := BindingHash(ours)
	res := result(x[:], true, "HTTP/sso.example.test")
	p := Policy{TokenChecking: Require, SPNs: []string{"HTTP/sso.example.test"}}
	ch := Channel{Served: []Binding{ours}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Check(res, ch); err != nil {
			b.Fatal(err)
		}
	}
}

func targetAD(t *testing.T, name []byte) []wire.AuthorizationData {
	t.Helper()
	inner, err := wire.MarshalAuthorizationData([]wire.AuthorizationData{{Type: wire.ADClientTarget, Data: name}})
	if err != nil {
		t.Fatal(err)
	}
	return []wire.AuthorizationData{{Type: wire.ADIfRelevant, Data: inner}}
}

// Service binding judges the name the client put in its authenticator
// (KERB_AUTH_DATA_CLIENT_TARGET, MS-KILE §3.2.5.8) when there is one, and refuses a
// ticket whose clear-text name differs from it; each spn_mismatch names its setting.
func TestServiceNameFromAuthenticatorTarget(t *testing.T) {
	p := &Policy{TokenChecking: Allow, Flags: Proxy | ProxyCohosting, SPNs: []string{"HTTP/sso.example.test"}}
	check := func(spn string, ad []wire.AuthorizationData) *reason.Error {
		_, err := p.Check(&Token{SPN: spn, Client: "alice@EXAMPLE.TEST", AuthenticatorAD: ad}, Channel{})
		if err == nil {
			return nil
		}
		return reason.Of(err)
	}
	fact := func(e *reason.Error, k string) string {
		for _, f := range e.Facts {
			if f.Key == k {
				return f.Value.String()
			}
		}
		return ""
	}
	if e := check("HTTP/sso.example.test", targetAD(t, wire.EncodeClientTarget("HTTP/SSO.example.test@EXAMPLE.TEST"))); e != nil {
		t.Fatalf("matching target: %v", e)
	}
	e := check("HTTP/sso.example.test", targetAD(t, wire.EncodeClientTarget("HTTP/other.example.test@EXAMPLE.TEST")))
	if e == nil || e.Code != reason.SPNMismatch || fact(e, "authenticator_target") != "HTTP/other.example.test@EXAMPLE.TEST" || e.Fix != reason.FixSPNRewritten {
		t.Fatalf("rewritten name: %v", e)
	}
	e = check("HTTP/sso.example.test", targetAD(t, []byte{0x48, 0x00, 0x54})) // odd length
	if e == nil || e.Code != reason.MalformedToken {
		t.Fatalf("malformed target: %v", e)
	}
	e = check("HTTP/other.example.test", nil)
	if e == nil || e.Code != reason.SPNMismatch || fact(e, "setting") != "epa.spns" || e.Admin() != reason.FixEPASPNs {
		t.Fatalf("epa.spns refusal: %v (%s)", e, e.Admin())
	}
	e = check("HTTP/sso", targetAD(t, wire.EncodeClientTarget("HTTP/sso@EXAMPLE.TEST")))
	if e == nil || e.Code != reason.SPNDotless || fact(e, "name_source") != "authenticator target name" {
		t.Fatalf("dotless target: %v", e)
	}
}
