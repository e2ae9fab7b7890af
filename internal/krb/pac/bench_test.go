package pac

import (
	"io"
	"log"
	"testing"

	gpac "github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

func benchPAC(b *testing.B, groups int) ([]byte, *kcrypto.Key) {
	srv := mustKey(b, kcrypto.AES256SHA1, 1)
	o := testOptions(groups)
	o.ExtraSIDs = []string{"S-1-18-1"}
	return mustBuild(b, o, srv, mustKey(b, kcrypto.AES256SHA1, 9)), srv
}

func benchParse(b *testing.B, groups int) {
	pac, _ := benchPAC(b, groups)
	b.ReportAllocs()
	b.SetBytes(int64(len(pac)))
	for b.Loop() {
		p, err := Parse(pac)
		if err != nil || len(p.GroupSIDs) != groups+1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse30Groups(b *testing.B)  { benchParse(b, 30) }
func BenchmarkParse300Groups(b *testing.B) { benchParse(b, 300) }

func BenchmarkVerifyServerSignature(b *testing.B) {
	pac, key := benchPAC(b, 30)
	p, err := Parse(pac)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.VerifyServerSignature(key); err != nil { // derive the usage key once
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(pac)))
	for b.Loop() {
		if err := p.VerifyServerSignature(key); err != nil {
			b.Fatal(err)
		}
	}
}

// gokrb5's reflection-based decoder on the same PAC (decode and verify, the only
// way its API offers), for comparison.
func benchGokrb5(b *testing.B, groups int) {
	pac, key := benchPAC(b, groups)
	ek := types.EncryptionKey{KeyType: key.EType(), KeyValue: key.Value()}
	l := log.New(io.Discard, "", 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(pac)))
	for b.Loop() {
		var g gpac.PACType
		if err := g.Unmarshal(pac); err != nil {
			b.Fatal(err)
		}
		if err := g.ProcessPACInfoBuffers(ek, l); err != nil {
			b.Fatal(err)
		}
		_ = g.KerbValidationInfo.GetGroupMembershipSIDs()
	}
}

func BenchmarkGokrb5Unmarshal30Groups(b *testing.B)  { benchGokrb5(b, 30) }
func BenchmarkGokrb5Unmarshal300Groups(b *testing.B) { benchGokrb5(b, 300) }

// Parse + verify, what the acceptor does per ticket.
func BenchmarkParseAndVerify30Groups(b *testing.B) {
	pac, key := benchPAC(b, 30)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Parse(pac)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.VerifyServerSignature(key); err != nil {
			b.Fatal(err)
		}
	}
}
