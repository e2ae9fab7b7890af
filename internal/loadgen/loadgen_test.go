package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
)

// gate is a tiny real HTTP server protected by a real acceptor (with its replay
// cache): 200 for a token it accepts, 401 otherwise. It records what it saw.
type gate struct {
	acc  *acceptor.Acceptor
	cred *initiator.Credential

	mu      sync.Mutex
	kinds   map[spnego.Kind]int
	bnds    map[string]int
	hosts   map[string]int
	cookies map[string]int
	refused []string
}

func newGate(t *testing.T) *gate {
	t.Helper()
	const spn = "HTTP/sso.example.test"
	key := krbtest.RandomKey(kcrypto.AES256SHA1)
	acc, err := acceptor.New(acceptor.Config{
		Keyring: keyring.New(keyring.Entry{Principal: spn, Realm: "EXAMPLE.TEST", KVNO: 2, EType: kcrypto.AES256SHA1, Key: key}),
		SPNs:    []string{spn}, Realm: "EXAMPLE.TEST", Replay: replay.NewMemory(1 << 16),
	})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := krbtest.Forge(krbtest.TicketSpec{ServiceKey: key, KVNO: 2, SPN: []string{"HTTP", "sso.example.test"},
		Realm: "EXAMPLE.TEST", Client: []string{"alice"}, CRealm: "EXAMPLE.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	return &gate{acc: acc, cred: cred, kinds: map[spnego.Kind]int{}, bnds: map[string]int{}, hosts: map[string]int{}, cookies: map[string]int{}}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.hosts[r.Host]++
	g.cookies[r.Header.Get("Cookie")]++
	g.mu.Unlock()
	h := r.Header.Get("Authorization")
	if h == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	refuse := func(why string) {
		g.mu.Lock()
		g.refused = append(g.refused, why)
		g.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}
	b64, ok := strings.CutPrefix(h, "Negotiate ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil {
		refuse("not Negotiate")
		return
	}
	tok, err := spnego.Decode(raw)
	if err != nil {
		refuse(err.Error())
		return
	}
	ap, _, err := spnego.KerberosAPReq(tok.MechToken)
	if err != nil {
		refuse(err.Error())
		return
	}
	res, err := g.acc.Accept(r.Context(), ap)
	if err != nil {
		refuse(err.Error())
		return
	}
	g.mu.Lock()
	g.kinds[tok.Kind]++
	g.bnds[string(res.Checksum.Value[4:20])]++
	g.mu.Unlock()
}

// Every request carries a fresh authenticator: the acceptor's replay cache accepts
// all of them, and the result counts each request once with ordered percentiles.
func TestRunFreshAuthenticators(t *testing.T) {
	g := newGate(t)
	srv := httptest.NewServer(g)
	defer srv.Close()
	res, err := Run(t.Context(), Options{URL: srv.URL, Credential: g.cred, Requests: 60, Connections: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 60 || res.Status[200] != 60 || res.Errors != 0 || len(g.refused) != 0 {
		t.Fatalf("result %s; refused %v", res, g.refused)
	}
	if g.kinds[spnego.KindNegTokenInit] != 60 {
		t.Errorf("token kinds %v, want 60 SPNEGO NegTokenInit", g.kinds)
	}
	if !(res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max && res.Max > 0 && res.RPS > 0 && res.Elapsed > 0) {
		t.Errorf("statistics out of order: %s", res)
	}
}

// Raw sends raw GSS Kerberos tokens; ChannelBindingHash reaches every authenticator;
// Host and Cookie are sent as given.
func TestRunOptions(t *testing.T) {
	g := newGate(t)
	srv := httptest.NewServer(g)
	defer srv.Close()
	bnd := bytes.Repeat([]byte{0xcb}, 16)
	res, err := Run(t.Context(), Options{URL: srv.URL, Credential: g.cred, Raw: true, ChannelBindingHash: bnd,
		Host: "sso.example.test", Cookie: "kg=1", Requests: 10, Connections: 2, NoKeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[200] != 10 || g.kinds[spnego.KindKerberos] != 10 || g.bnds[string(bnd)] != 10 {
		t.Errorf("result %s; kinds %v; refused %v", res, g.kinds, g.refused)
	}
	if g.hosts["sso.example.test"] != 10 || g.cookies["kg=1"] != 10 {
		t.Errorf("hosts %v, cookies %v", g.hosts, g.cookies)
	}
	// Without a credential no Authorization is sent (the HTTP floor).
	res, err = Run(t.Context(), Options{URL: srv.URL, Requests: 5, Connections: 1})
	if err != nil || res.Status[http.StatusNoContent] != 5 {
		t.Errorf("floor run: %v, %v", res, err)
	}
}

// A run by duration ends when the duration is up.
func TestRunDuration(t *testing.T) {
	g := newGate(t)
	srv := httptest.NewServer(g)
	defer srv.Close()
	start := time.Now()
	res, err := Run(t.Context(), Options{URL: srv.URL, Credential: g.cred, Duration: 300 * time.Millisecond, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 300ms run took %v", d)
	}
	if res.Requests == 0 || res.Status[200] != res.Requests {
		t.Errorf("result %s; refused %v", res, g.refused)
	}
}

// Requests that fail are counted as errors with the first one named.
func TestRunCountsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res, err := Run(t.Context(), Options{URL: "http://" + addr + "/", Requests: 3, Connections: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 3 || res.FirstError == "" || len(res.Status) != 0 {
		t.Errorf("result %s, want 3 errors", res)
	}
}

// ServerBindings returns the Bnd of the server certificate's tls-server-end-point
// binding, and a run over https verifies the server with CAFile.
func TestServerBindingsAndTLS(t *testing.T) {
	g := newGate(t)
	srv := httptest.NewTLSServer(g)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ServerBindings(srv.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := epa.ServerEndPoint(srv.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	if want := epa.BindingHash(b); !bytes.Equal(got, want[:]) {
		t.Errorf("ServerBindings = %x, want %x", got, want)
	}
	res, err := Run(t.Context(), Options{URL: srv.URL, Credential: g.cred, ChannelBindingHash: got, CAFile: ca, Requests: 4, Connections: 2})
	if err != nil || res.Status[200] != 4 || g.bnds[string(got)] != 4 {
		t.Errorf("https run: %v %v; refused %v", res, err, g.refused)
	}
	if _, err := Run(t.Context(), Options{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "missing.pem"), Requests: 1}); err == nil {
		t.Error("a missing CA file is not an error")
	}
}

// Header makes a fresh token per call, each accepted once.
func TestHeaderFresh(t *testing.T) {
	g := newGate(t)
	a, err := Header(g.cred, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Header(g.cred, false)
	if a == b || !strings.HasPrefix(a, "Negotiate ") {
		t.Fatalf("headers %q and %q", a[:20], b[:20])
	}
}

// A flow run times whole iterations and each named step: a Negotiate step the
// acceptor accepts with a fresh authenticator every time, and a plain one; an
// iteration whose flow returns an error counts as an error.
func TestRunFlowTimesEachStep(t *testing.T) {
	g := newGate(t)
	srv := httptest.NewServer(g)
	defer srv.Close()
	var n atomic.Int32
	flow := func(ctx context.Context, s *Steps) error {
		h, err := s.Negotiate()
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/sign-in", nil)
		req.Header.Set("Authorization", h)
		if resp, _, err := s.Do("sign-in", req); err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("sign-in: %v", err)
		}
		req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/plain", nil)
		if resp, _, err := s.Do("plain", req); err != nil || resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("plain: %v", err)
		}
		if n.Add(1)%5 == 0 {
			return errors.New("every fifth flow fails")
		}
		return nil
	}
	res, err := Run(t.Context(), Options{Flow: flow, Credential: g.cred, Requests: 40, Connections: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 40 || res.Errors != 8 || res.FirstError != "every fifth flow fails" || len(g.refused) != 0 {
		t.Fatalf("result %s; refused %v", res, g.refused)
	}
	si, pl := res.Steps["sign-in"], res.Steps["plain"]
	if si == nil || pl == nil || si.Requests != 40 || si.Status[200] != 40 || pl.Status[http.StatusNoContent] != 40 {
		t.Fatalf("steps %+v %+v", si, pl)
	}
	if !(si.P50 <= si.P99 && si.P99 <= si.Max && si.Max > 0 && si.Max <= res.Max) {
		t.Errorf("step statistics out of order: %+v (flow max %s)", si, res.Max)
	}
	if g.kinds[spnego.KindNegTokenInit] != 40 {
		t.Errorf("token kinds %v, want 40 fresh SPNEGO tokens", g.kinds)
	}
}
