package negotiate

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gspnego "github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/refusal"
)

// service is a Negotiate-protected handler over a forged service key. Kerberos
// behaviour against the real domain is tested in internal/server; these tests are
// about the HTTP side: header parsing, token framing and refusal rendering.
type service struct {
	key  *kcrypto.Key
	h    http.Handler
	logs *bytes.Buffer
}

func newService(t testing.TB, maxToken int) *service {
	t.Helper()
	s := &service{key: krbtest.RandomKey(kcrypto.AES256SHA1), logs: &bytes.Buffer{}}
	acc, err := acceptor.New(acceptor.Config{
		Keyring: keyring.New(keyring.Entry{Principal: "HTTP/sso.example.test", Realm: "EXAMPLE.TEST", KVNO: 2, EType: kcrypto.AES256SHA1, Key: s.key}),
		SPNs:    []string{"HTTP/sso.example.test"},
		Realm:   "EXAMPLE.TEST",
		Replay:  replay.NewMemory(1 << 16),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rep, err := refusal.NewReporter(slog.New(slog.NewJSONHandler(s.logs, nil)), reg, true)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(Options{Acceptor: acc, Reporter: rep, MaxTokenBytes: maxToken, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s.h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, ok := FromContext(r.Context())
		if !ok {
			t.Error("handler reached without a sign-in")
			return
		}
		io.WriteString(w, in.Identity.Principal)
	}))
	return s
}

func (s *service) do(authorization ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/whoami", nil)
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

func (s *service) apReq(t testing.TB, o initiator.Options) (*initiator.Credential, []byte) {
	t.Helper()
	c, err := krbtest.Forge(krbtest.TicketSpec{ServiceKey: s.key, KVNO: 2, SPN: []string{"HTTP", "sso.example.test"},
		Realm: "EXAMPLE.TEST", Client: []string{"alice"}, CRealm: "EXAMPLE.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.APReq(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func krbGSS(ap []byte) []byte { return spnego.WrapKerberos(spnego.OIDKerberos, [2]byte{1, 0}, ap) }

func TestSPNEGOSignInAnswersNegTokenRespWithAPRep(t *testing.T) {
	s := newService(t, 0)
	for _, mech := range []asn1.ObjectIdentifier{spnego.OIDKerberos, spnego.OIDKerberosMS} {
		c, ap := s.apReq(t, initiator.Options{})
		init := spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{mech, spnego.OIDNTLM}, spnego.WrapKerberos(mech, [2]byte{1, 0}, ap))
		rec := s.do("Negotiate " + b64(init))
		if rec.Code != 200 || rec.Body.String() != "alice@EXAMPLE.TEST" {
			t.Fatalf("%v: %d %s %s", mech, rec.Code, rec.Header().Get("Kerbgate-Reason"), rec.Body)
		}
		hdr, ok := strings.CutPrefix(rec.Header().Get("WWW-Authenticate"), "Negotiate ")
		if !ok {
			t.Fatalf("no final token: %q", rec.Header().Get("WWW-Authenticate"))
		}
		raw, _ := base64.StdEncoding.DecodeString(hdr)
		// gokrb5 as the independent decoder of our NegTokenResp.
		var resp gspnego.NegTokenResp
		if err := resp.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if resp.NegState != 0 || !asn1.ObjectIdentifier(resp.SupportedMech).Equal(mech) {
			t.Errorf("negState %d supportedMech %v, want accept-completed %v", resp.NegState, resp.SupportedMech, mech)
		}
		rep, gotMech, err := gssInner(t, resp.ResponseToken, [2]byte{2, 0})
		if err != nil || !gotMech.Equal(mech) {
			t.Fatalf("response token: %v %v", gotMech, err)
		}
		if _, err := c.SessionKey.Decrypt(kcrypto.UsageAPRepEncPart, apRepCipher(t, rep)); err != nil {
			t.Errorf("AP-REP does not decrypt with the session key: %v", err)
		}
	}
}

func TestRawKerberosTokenGetsRawAPRep(t *testing.T) {
	s := newService(t, 0)
	_, ap := s.apReq(t, initiator.Options{})
	rec := s.do("Negotiate " + b64(krbGSS(ap)))
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Kerbgate-Reason"))
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rec.Header().Get("WWW-Authenticate"), "Negotiate "))
	if _, _, err := gssInner(t, raw, [2]byte{2, 0}); err != nil {
		t.Fatalf("answer is not a raw GSS AP-REP: %v", err)
	}
}

func TestMalformedTokensAreRefusedWith4xx(t *testing.T) {
	s := newService(t, 8192)
	_, ap := s.apReq(t, initiator.Options{})
	gss := krbGSS(ap)
	good := spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, gss)
	mut := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	cases := map[string][]string{
		"no header":                nil,
		"empty negotiate":          {"Negotiate"},
		"negotiate with spaces":    {"Negotiate    "},
		"basic scheme":             {"Basic YWxpY2U6cHc="},
		"bearer scheme":            {"Bearer abc"},
		"two headers":              {"Negotiate " + b64(good), "Negotiate " + b64(good)},
		"not base64":               {"Negotiate !!!!"},
		"base64 of nothing useful": {"Negotiate AAAA"},
		"one byte":                 {"Negotiate YQ=="},
		"ascii text":               {"Negotiate " + b64([]byte("hello world"))},
		"truncated init":           {"Negotiate " + b64(good[:len(good)/2])},
		"init header only":         {"Negotiate " + b64(good[:4])},
		"trailing garbage":         {"Negotiate " + b64(append(append([]byte(nil), good...), 0, 0))},
		"wrong outer tag":          {"Negotiate " + b64(mut(good, 0, 0x61))},
		"indefinite length":        {"Negotiate " + b64([]byte{0x60, 0x80, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0, 0})},
		"huge length":              {"Negotiate " + b64([]byte{0x60, 0x84, 0x7f, 0xff, 0xff, 0xff})},
		"empty mechTypes":          {"Negotiate " + b64([]byte{0x60, 0x0e, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0xa0, 0x04, 0x30, 0x02, 0xa0, 0x00})},
		"unknown mech only":        {"Negotiate " + b64(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{{1, 2, 3, 4}}, []byte{1}))},
		"kerberos mech no token":   {"Negotiate " + b64(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, nil))},
		"kerberos mech junk token": {"Negotiate " + b64(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, []byte("junk")))},
		"gss with KRB_ERROR tokid": {"Negotiate " + b64(spnego.WrapKerberos(spnego.OIDKerberos, [2]byte{3, 0}, ap))},
		"gss with wrong oid":       {"Negotiate " + b64(spnego.WrapKerberos(asn1.ObjectIdentifier{1, 2, 3}, [2]byte{1, 0}, ap))},
		"ap-req truncated":         {"Negotiate " + b64(krbGSS(ap[:len(ap)-10]))},
		"ap-req bit flip":          {"Negotiate " + b64(krbGSS(mut(ap, len(ap)-5, ap[len(ap)-5]^0xff)))},
		"ap-req not ap-req":        {"Negotiate " + b64(krbGSS([]byte{0x30, 0x00}))},
		"negTokenResp empty":       {"Negotiate " + b64(spnego.EncodeNegTokenResp(spnego.AcceptIncomplete, nil, nil, nil))},
		"negTokenResp junk":        {"Negotiate " + b64(spnego.EncodeNegTokenResp(spnego.AcceptIncomplete, spnego.OIDKerberos, []byte{1, 2, 3}, nil))},
		"too large":                {"Negotiate " + strings.Repeat("A", 8196)},
		"ntlm raw":                 {"Negotiate " + b64([]byte("NTLMSSP\x00\x01\x00\x00\x00"))},
		"null bytes":               {"Negotiate " + b64(make([]byte, 64))},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for name, hdrs := range cases {
		t.Run(name, func(t *testing.T) {
			rec := s.do(hdrs...)
			reason := rec.Header().Get("Kerbgate-Reason")
			if rec.Code < 400 || rec.Code >= 500 || reason == "" {
				t.Fatalf("got %d reason %q, want a 4xx with a reason", rec.Code, reason)
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Negotiate") {
				t.Errorf("401 without a Negotiate challenge")
			}
		})
	}
}

func TestUnpaddedBase64IsAccepted(t *testing.T) {
	s := newService(t, 0)
	_, ap := s.apReq(t, initiator.Options{})
	tok := base64.RawStdEncoding.EncodeToString(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, krbGSS(ap)))
	if rec := s.do("negotiate " + tok); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Kerbgate-Reason"))
	}
}

func TestPreferredNonKerberosMechGetsKerberosSelected(t *testing.T) {
	s := newService(t, 0)
	negoex := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 30}
	rec := s.do("Negotiate " + b64(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{negoex, spnego.OIDKerberos}, []byte("negoex"))))
	if rec.Code != 401 || rec.Header().Get("Kerbgate-Reason") != "unsupported_mech" {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Kerbgate-Reason"))
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rec.Header().Get("WWW-Authenticate"), "Negotiate "))
	tok, err := spnego.Decode(raw)
	if err != nil || tok.Kind != spnego.KindNegTokenResp || tok.NegState != spnego.AcceptIncomplete || !tok.SupportedMech.Equal(spnego.OIDKerberos) {
		t.Fatalf("answer %+v %v", tok, err)
	}
}

// FuzzNegotiateHeader drives the whole middleware with arbitrary Authorization
// values: any outcome but a 5xx or a panic is acceptable.
func FuzzNegotiateHeader(f *testing.F) {
	s := newService(f, 0)
	_, ap := s.apReq(f, initiator.Options{Now: time.Now()})
	f.Add([]byte(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, krbGSS(ap))))
	f.Add(krbGSS(ap))
	f.Add([]byte("NTLMSSP\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		rec := s.do("Negotiate " + b64(tok))
		if rec.Code >= 500 {
			t.Fatalf("status %d for %x", rec.Code, tok)
		}
	})
}

func apRepCipher(t *testing.T, rep []byte) []byte {
	t.Helper()
	var r struct {
		PVNO    int           `asn1:"explicit,tag:0"`
		MsgType int           `asn1:"explicit,tag:1"`
		EncPart encryptedData `asn1:"explicit,tag:2"`
	}
	if _, err := asn1.UnmarshalWithParams(rep, &r, "application,explicit,tag:15"); err != nil {
		t.Fatalf("AP-REP: %v", err)
	}
	return r.EncPart.Cipher
}

type encryptedData struct {
	EType  int    `asn1:"explicit,tag:0"`
	Cipher []byte `asn1:"explicit,tag:2"`
}

// gssInner unwraps RFC 2743 framing: [APPLICATION 0] { mech OID, token id, inner }.
func gssInner(t *testing.T, b []byte, tokID [2]byte) ([]byte, asn1.ObjectIdentifier, error) {
	t.Helper()
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &raw); err != nil || len(rest) != 0 || raw.Class != asn1.ClassApplication || raw.Tag != 0 {
		return nil, nil, fmt.Errorf("not a GSS token: %v", err)
	}
	var mech asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(raw.Bytes, &mech)
	if err != nil || len(rest) < 2 || rest[0] != tokID[0] || rest[1] != tokID[1] {
		return nil, nil, fmt.Errorf("bad mech or token id: %v % x", err, rest[:min(2, len(rest))])
	}
	return rest[2:], mech, nil
}
