package kdc_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/testrealm"
)

// The configuration names the realm, its KDCs and the enctypes, and asks for TCP.
func TestClientConfig(t *testing.T) {
	c := kdc.Client{Realm: "EXAMPLE.TEST", KDCs: []string{"127.0.0.1:88", "dc2:88"}, Forwardable: true, Canonicalize: true}
	cfg, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LibDefaults.DefaultRealm != "EXAMPLE.TEST" || !cfg.LibDefaults.Forwardable || !cfg.LibDefaults.Canonicalize ||
		cfg.LibDefaults.UDPPreferenceLimit != 1 || cfg.LibDefaults.DNSLookupKDC {
		t.Errorf("libdefaults: %+v", cfg.LibDefaults)
	}
	if got := cfg.LibDefaults.DefaultTktEnctypeIDs; len(got) != 2 || got[0] != kcrypto.AES256SHA1 || got[1] != kcrypto.AES128SHA1 {
		t.Errorf("default enctypes %v, want AES256 then AES128", got)
	}
	_, kdcs, err := cfg.GetKDCs("EXAMPLE.TEST", true)
	if err != nil || len(kdcs) != 2 {
		t.Errorf("KDCs %v, %v", kdcs, err)
	}
	plain, err := kdc.Client{Realm: "EXAMPLE.TEST", Enctypes: []int32{kcrypto.RC4HMAC}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if plain.LibDefaults.Forwardable || plain.LibDefaults.Canonicalize {
		t.Errorf("options set without being asked: %+v", plain.LibDefaults)
	}
	if got := plain.LibDefaults.PermittedEnctypeIDs; len(got) != 1 || got[0] != kcrypto.RC4HMAC {
		t.Errorf("permitted %v", got)
	}
	if s := (kdc.Client{Realm: "R"}).Krb5Conf(); strings.Contains(s, "\n  kdc =") {
		t.Errorf("a KDC line without KDCs:\n%s", s)
	}
}

// A real KDC answers an AS-REQ without pre-authentication with a KRB-ERROR.
func TestExchangeRealKDC(t *testing.T) {
	r := testrealm.Require(t)
	cfg, err := kdc.Client{Realm: r.Realm, KDCs: []string{r.KDC}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	req, err := messages.NewASReqForTGT(r.Realm, cfg, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "kdc-exchange-probe"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ans, err := kdc.Exchange(context.Background(), r.KDC, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kerr messages.KRBError
	if err := kerr.Unmarshal(ans); err != nil {
		t.Fatalf("answer is not a KRB-ERROR: %v", err)
	}
	if kerr.STime.IsZero() {
		t.Error("KRB-ERROR without the KDC's time")
	}
}

// fakeKDC accepts one connection and answers with answer (framed with size) or,
// when hang, reads the request and never answers.
func fakeKDC(t *testing.T, size uint32, answer []byte, hang bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var n [4]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(n[:])))
		if hang {
			io.Copy(io.Discard, c) // until the client closes
			return
		}
		binary.BigEndian.PutUint32(n[:], size)
		c.Write(append(n[:], answer...))
	}()
	return ln.Addr().String()
}

func TestExchangeFraming(t *testing.T) {
	addr := fakeKDC(t, 3, []byte{1, 2, 3}, false)
	got, err := kdc.Exchange(context.Background(), addr, []byte("req"), time.Second)
	if err != nil || string(got) != "\x01\x02\x03" {
		t.Fatalf("Exchange = %x, %v", got, err)
	}
	for _, size := range []uint32{0, kdc.MaxAnswer + 1} {
		if _, err := kdc.Exchange(context.Background(), fakeKDC(t, size, nil, false), []byte("req"), time.Second); err == nil {
			t.Errorf("answer of %d bytes accepted", size)
		}
	}
}

// A cancelled context ends an exchange with a KDC that does not answer.
func TestExchangeCancelled(t *testing.T) {
	addr := fakeKDC(t, 0, nil, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := kdc.Exchange(ctx, addr, []byte("req"), time.Minute)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error from a cancelled exchange")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled exchange still waits for the KDC")
	}
}
