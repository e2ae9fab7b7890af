// These tests use gokrb5 v8.4.4's spnego package as an oracle: an independent
// implementation must decode what we encode and the other way round.

package spnego

import (
	"bytes"
	"encoding/asn1"
	"testing"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	gspnego "github.com/jcmturner/gokrb5/v8/spnego"
)

// ---- Oracle: gokrb5 v8.4.4's spnego package ----

// forkOIDs appends our OIDs to a slice of gokrb5's (gofork) OID type without
// naming that type.
func forkOIDs[S ~[]E, E ~[]int](s S, oids ...asn1.ObjectIdentifier) S {
	for _, o := range oids {
		s = append(s, E(o))
	}
	return s
}

func setInt[E ~int](dst *E, v int) { *dst = E(v) }

func forkOID[E ~[]int](dst *E, o asn1.ObjectIdentifier) { *dst = E(o) }

func fromFork[S ~[]E, E ~[]int](s S) []asn1.ObjectIdentifier {
	out := make([]asn1.ObjectIdentifier, len(s))
	for i, o := range s {
		out[i] = asn1.ObjectIdentifier(o)
	}
	return out
}

func TestOracleTheirInitDecodesWithOurs(t *testing.T) {
	cases := []struct {
		mechs []asn1.ObjectIdentifier
		tok   []byte
		mic   []byte
		flags bool
	}{
		{[]asn1.ObjectIdentifier{OIDKerberos}, curlGSS, nil, false},
		{[]asn1.ObjectIdentifier{OIDKerberosMS, OIDKerberos, OIDNegoEx, OIDNTLM}, winGSS, nil, false},
		{[]asn1.ObjectIdentifier{OIDNTLM}, ntlmType1, nil, false},
		{[]asn1.ObjectIdentifier{OIDKerberos, {1, 2, 3, 4, 5}}, []byte{1}, []byte("mic"), true},
		{[]asn1.ObjectIdentifier{OIDKerberos}, nil, nil, false},
	}
	for i, c := range cases {
		var st gspnego.SPNEGOToken
		st.Init = true
		st.NegTokenInit.MechTypes = forkOIDs(st.NegTokenInit.MechTypes, c.mechs...)
		st.NegTokenInit.MechTokenBytes = c.tok
		st.NegTokenInit.MechListMIC = c.mic
		if c.flags {
			st.NegTokenInit.ReqFlags.Bytes = []byte{0x60}
			st.NegTokenInit.ReqFlags.BitLength = 3
		}
		b, err := st.Marshal()
		if err != nil {
			t.Fatalf("case %d: gokrb5 Marshal: %v", i, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("case %d: Decode(gokrb5 output %x): %v", i, b, err)
		}
		want := Token{Kind: KindNegTokenInit, MechTypes: c.mechs, MechToken: c.tok, MechListMIC: c.mic, NegState: NegStateAbsent}
		if c.flags {
			want.ReqFlags = asn1.BitString{Bytes: []byte{0x60}, BitLength: 3}
		}
		if err := tokensEqual(got, want); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
		if c.mic == nil && !c.flags {
			if ours := EncodeNegTokenInit(c.mechs, c.tok); !bytes.Equal(ours, b) {
				t.Errorf("case %d: encodings differ\nours   %x\ngokrb5 %x", i, ours, b)
			}
		}
	}
}

func TestOracleTheirRespDecodesWithOurs(t *testing.T) {
	for _, st := range []NegState{AcceptCompleted, AcceptIncomplete, Reject, RequestMIC} {
		for _, mech := range []asn1.ObjectIdentifier{nil, OIDKerberos, OIDKerberosMS, {1, 2, 3, 999999}} {
			for _, rt := range [][]byte{nil, curlGSS} {
				for _, mic := range [][]byte{nil, {5, 6}} {
					var r gspnego.NegTokenResp
					setInt(&r.NegState, int(st))
					if mech != nil {
						forkOID(&r.SupportedMech, mech)
					}
					r.ResponseToken = rt
					r.MechListMIC = mic
					b, err := r.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					got, err := Decode(b)
					if err != nil {
						t.Fatalf("Decode(gokrb5 %x): %v", b, err)
					}
					want := Token{Kind: KindNegTokenResp, NegState: st, SupportedMech: mech, ResponseToken: rt, MechListMIC: mic}
					if err := tokensEqual(got, want); err != nil {
						t.Error(err)
					}
					if ours := EncodeNegTokenResp(st, mech, rt, mic); !bytes.Equal(ours, b) {
						t.Errorf("encodings differ\nours   %x\ngokrb5 %x", ours, b)
					}
				}
			}
		}
	}
}

func TestOracleOurRespDecodesWithTheirs(t *testing.T) {
	apRepGSS := WrapKerberos(OIDKerberos, TokIDAPRep, d(0x6f, d(0x30)))
	for _, st := range []NegState{AcceptCompleted, AcceptIncomplete, Reject, RequestMIC} {
		for _, mech := range []asn1.ObjectIdentifier{nil, OIDKerberos, OIDNTLM} {
			for _, rt := range [][]byte{nil, apRepGSS} {
				for _, mic := range [][]byte{nil, {5, 6}} {
					b := EncodeNegTokenResp(st, mech, rt, mic)
					var r gspnego.NegTokenResp
					if err := r.Unmarshal(b); err != nil {
						t.Fatalf("gokrb5 Unmarshal(%x): %v", b, err)
					}
					var tok gspnego.SPNEGOToken
					if err := tok.Unmarshal(b); err != nil || !tok.Resp {
						t.Fatalf("gokrb5 SPNEGOToken.Unmarshal(%x): %v", b, err)
					}
					if NegState(r.State()) != st || !asn1.ObjectIdentifier(r.SupportedMech).Equal(mech) ||
						!bytes.Equal(r.ResponseToken, rt) || !bytes.Equal(r.MechListMIC, mic) {
						t.Errorf("gokrb5 read %+v from %x", r, b)
					}
				}
			}
		}
	}
}

func TestOracleOurInitDecodesWithTheirs(t *testing.T) {
	for _, mechs := range [][]asn1.ObjectIdentifier{
		{OIDKerberos}, {OIDKerberosMS, OIDKerberos, OIDNegoEx, OIDNTLM}, {OIDNTLM}, {{2, 5, 4, 3}},
	} {
		for _, mt := range [][]byte{nil, curlGSS} {
			b := EncodeNegTokenInit(mechs, mt)
			var st gspnego.SPNEGOToken
			if err := st.Unmarshal(b); err != nil || !st.Init {
				t.Fatalf("gokrb5 Unmarshal(%x): %v", b, err)
			}
			if got := fromFork(st.NegTokenInit.MechTypes); !oidsEqual(got, mechs) {
				t.Errorf("gokrb5 read mechTypes %v, want %v", got, mechs)
			}
			if !bytes.Equal(st.NegTokenInit.MechTokenBytes, mt) {
				t.Error("gokrb5 read a different mechToken")
			}
		}
	}
}

func TestOracleKerberosFraming(t *testing.T) {
	ap := realAPReq(t)
	gss := WrapKerberos(OIDKerberos, [2]byte{0x01, 0x00}, ap)
	var k gspnego.KRB5Token
	if err := k.Unmarshal(gss); err != nil {
		t.Fatalf("gokrb5 KRB5Token.Unmarshal: %v", err)
	}
	if k.APReq.Ticket.Realm != "CORP.EXAMPLE.COM" || k.APReq.Ticket.SName.NameString[1] != "sso.corp.example.com" {
		t.Errorf("gokrb5 read %+v", k.APReq.Ticket)
	}
	if !asn1.ObjectIdentifier(k.OID).Equal(asn1.ObjectIdentifier(gssapi.OIDKRB5.OID())) {
		t.Errorf("gokrb5 OID %v", k.OID)
	}
	got, mech, err := KerberosAPReq(gss)
	if err != nil || !bytes.Equal(got, ap) || !mech.Equal(OIDKerberos) {
		t.Fatalf("KerberosAPReq: %v", err)
	}
	// The whole SPNEGO path, as gokrb5 would build a client token.
	var st gspnego.SPNEGOToken
	st.Init = true
	st.NegTokenInit.MechTypes = forkOIDs(st.NegTokenInit.MechTypes, OIDKerberos)
	st.NegTokenInit.MechTokenBytes = gss
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := KerberosAPReq(tok.MechToken); err != nil || !bytes.Equal(got, ap) {
		t.Fatalf("KerberosAPReq(decoded mechToken): %v", err)
	}
}

func BenchmarkGokrb5UnmarshalNegTokenInit(b *testing.B) {
	tok := benchToken(b)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		var st gspnego.SPNEGOToken
		if err := st.Unmarshal(tok); err != nil {
			b.Fatal(err)
		}
	}
}
