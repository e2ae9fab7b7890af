package oidcprovider

import (
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Codes and access tokens open with the key that sealed them, and only unchanged;
// the library's JWEs of before an upgrade still open.
func TestTokenCryptoSealsAndOpens(t *testing.T) {
	key := [32]byte{1, 2, 3}
	c := newTokenCrypto(key)
	const plain = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI:subject-of-alice"
	s1, err := c.Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := c.Encrypt(plain)
	if s1 == s2 || strings.Contains(s1, "alice") || strings.ContainsAny(s1, ".+/=") {
		t.Fatalf("sealed %q and %q: want two different opaque base64url strings", s1, s2)
	}
	if got, err := c.Decrypt(s1); err != nil || got != plain {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	// Any change to any byte is refused.
	for i := range s1 {
		b := []byte(s1)
		b[i] ^= 1
		if got, err := c.Decrypt(string(b)); err == nil {
			t.Fatalf("changed byte %d opened as %q", i, got)
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 40), strings.Repeat("A", maxSealed+1), s1[:len(s1)-2]} {
		if _, err := c.Decrypt(bad); err == nil {
			t.Errorf("Decrypt(%.20q…) succeeded", bad)
		}
	}
	// Another provider's key (another farm, or a rotated signing key set) opens nothing.
	if _, err := newTokenCrypto([32]byte{9}).Decrypt(s1); err == nil {
		t.Error("opened with another key")
	}
	// A JWE of the library's own crypto, as issued before this one, still opens.
	jwe, err := op.NewAES256GCMCrypto(key, "").Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(jwe); err != nil || got != plain {
		t.Fatalf("legacy JWE: %q, %v", got, err)
	}
}

func BenchmarkTokenCrypto(b *testing.B) {
	const plain = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI:c3ViamVjdC1vZi1hbGljZS1zdWJqZWN0LW9mLWFsaWNl"
	for _, c := range []struct {
		name string
		c    op.Crypto
	}{{"xchacha20poly1305", newTokenCrypto([32]byte{1})}, {"library-jwe", op.NewAES256GCMCrypto([32]byte{1}, "")}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				s, _ := c.c.Encrypt(plain)
				if _, err := c.c.Decrypt(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
