package oidcprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// BenchmarkIDTokenSigning is the cost of signing one ID token as the token endpoint
// does (the library's signer and claims), with each algorithm a signing_keys_file
// may hold: ES256 (what `kerbgate oidc-keygen` makes) and RS256 with a 2048-bit
// and a 3072-bit key. docs/PERFORMANCE.md quotes it.
//
//	go test -run '^$' -bench IDTokenSigning ./internal/oidcprovider
func BenchmarkIDTokenSigning(b *testing.B) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	claims := oidc.NewIDTokenClaims("https://sso.example.test/oidc", "n0Ctaw0KpWbRoVd7IoRm0I5K2gNxD3IuSNfI4ZkUN3U",
		[]string{"rp"}, time.Now().Add(5*time.Minute), time.Now(), "nonce-1", "", []string{"kerberos"}, "rp", 0)
	claims.PreferredUsername = "alice@example.test"
	claims.Name = "Alice"
	claims.Email = "alice@example.test"
	for _, k := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  func() any
	}{
		{"ES256", jose.ES256, func() any { return ec }},
		{"RS256-2048", jose.RS256, func() any { return rsaKey(b, 2048) }},
		{"RS256-3072", jose.RS256, func() any { return rsaKey(b, 3072) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			key := signingKey{jose.JSONWebKey{Key: k.key(), KeyID: "k1", Algorithm: string(k.alg)}}
			for b.Loop() {
				s, err := op.SignerFromKey(key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crypto.Sign(claims, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func rsaKey(b *testing.B, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		b.Fatal(err)
	}
	return k
}
