package kcrypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
)

// gokrb5 is the oracle: what it encrypts we must decrypt, and the reverse.
func TestAESAgreesWithGokrb5(t *testing.T) {
	for _, et := range []int32{AES128SHA1, AES256SHA1} {
		e, _ := crypto.GetEtype(et)
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1024, 1500} {
			key := make([]byte, e.GetKeyByteSize())
			rand.Read(key)
			msg := make([]byte, n)
			rand.Read(msg)
			_, ct, err := e.EncryptMessage(key, msg, UsageTicket)
			if err != nil {
				t.Fatal(err)
			}
			k, err := NewKey(et, key)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := k.Decrypt(UsageTicket, ct)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("etype %d len %d: decrypt of gokrb5 ciphertext: %v", et, n, err)
			}
			ours, err := k.Encrypt(UsageAPRepEncPart, msg, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			back, err := e.DecryptMessage(key, ours, UsageAPRepEncPart)
			if err != nil || !bytes.Equal(back, msg) {
				t.Fatalf("etype %d len %d: gokrb5 cannot decrypt ours: %v", et, n, err)
			}
			sum, _ := e.GetChecksumHash(key, msg, UsagePACServerSignat)
			if !k.VerifyChecksum(UsagePACServerSignat, sum[:12], msg[:n/2], msg[n/2:]) {
				t.Fatalf("etype %d len %d: checksum disagrees with gokrb5", et, n)
			}
		}
	}
}

func TestDecryptRefusesTamperingWrongKeyAndShortInput(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	k, _ := NewKey(AES256SHA1, key)
	ct, _ := k.Encrypt(UsageTicket, []byte("hello kerberos"), rand.Reader)
	for i := range ct {
		bad := append([]byte(nil), ct...)
		bad[i] ^= 1
		if _, err := k.Decrypt(UsageTicket, bad); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("flipping byte %d: got %v, want ErrIntegrity", i, err)
		}
	}
	if _, err := k.Decrypt(UsageAPReqAuth, ct); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("wrong usage accepted: %v", err)
	}
	other, _ := NewKey(AES256SHA1, make([]byte, 32))
	if _, err := other.Decrypt(UsageTicket, ct); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("wrong key accepted: %v", err)
	}
	for et, size := range map[int32]int{AES256SHA1: 32, RC4HMAC: 16, AES256SHA384: 32} {
		kk, err := NewKey(et, make([]byte, size))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 40; n++ {
			_, _ = kk.Decrypt(UsageTicket, make([]byte, n)) // must not panic
		}
	}
}

func TestOtherEnctypesDelegateToGokrb5(t *testing.T) {
	for _, et := range []int32{RC4HMAC, AES128SHA256, AES256SHA384} {
		size := map[int32]int{RC4HMAC: 16, AES128SHA256: 16, AES256SHA384: 32}[et]
		key := make([]byte, size)
		rand.Read(key)
		k, err := NewKey(et, key)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := k.Encrypt(UsageTicket, []byte("payload"), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := k.Decrypt(UsageTicket, ct)
		if err != nil || string(pt) != "payload" {
			t.Fatalf("etype %d: %q %v", et, pt, err)
		}
	}
	if _, err := NewKey(1, make([]byte, 8)); err == nil {
		t.Fatal("DES accepted")
	}
}

func BenchmarkDecryptAES256(b *testing.B) {
	key := make([]byte, 32)
	k, _ := NewKey(AES256SHA1, key)
	ct, _ := k.Encrypt(UsageTicket, make([]byte, 1200), rand.Reader)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := k.Decrypt(UsageTicket, ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptFreshSessionKey(b *testing.B) {
	key := make([]byte, 32)
	k0, _ := NewKey(AES256SHA1, key)
	ct, _ := k0.Encrypt(UsageAPReqAuth, make([]byte, 150), rand.Reader)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k, _ := NewKey(AES256SHA1, key)
		if _, err := k.Decrypt(UsageAPReqAuth, ct); err != nil {
			b.Fatal(err)
		}
	}
}
