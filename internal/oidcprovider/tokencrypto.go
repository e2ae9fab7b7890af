package oidcprovider

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/crypto/chacha20poly1305"
)

// tokenCrypto seals what the protocol library hands clients as opaque strings: the
// authorization code (the key of its store record) and the access token (its
// claims and the subject: accesstoken.go). It is XChaCha20-Poly1305 under a key derived from
// the provider's crypto key, a random 24-byte nonce per token, base64url(nonce ||
// ciphertext || tag): authenticated encryption as the library's own, whose JWE
// (A256GCMKW key wrapping, a JSON header to build and parse) costs several times
// more on every token and userinfo request. The 192-bit random nonce never needs a
// counter, however many tokens a farm issues under one key.
//
// Decrypt still opens the library's JWEs, so that codes and access tokens issued
// before an upgrade stay valid until they expire (a minute, and the access token
// lifetime).
type tokenCrypto struct {
	aead   cipher.AEAD
	legacy op.Crypto
}

// maxSealed bounds what Decrypt looks at: a code is ~120 characters, a legacy JWE
// ~250, an access token ~400 (its claims, each at most maxClaimLen, keep it under
// ~3 KiB).
const maxSealed = 8 << 10

var errSealed = errors.New("oidcprovider: invalid token")

func newTokenCrypto(key [32]byte) *tokenCrypto {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("kerbgate-oidc-token-xchacha20poly1305"))
	aead, err := chacha20poly1305.NewX(m.Sum(nil))
	if err != nil {
		panic(err) // the key is 32 bytes by construction
	}
	return &tokenCrypto{aead: aead, legacy: op.NewAES256GCMCrypto(key, "")}
}

func (c *tokenCrypto) Encrypt(s string) (string, error) {
	buf := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(s)+chacha20poly1305.Overhead)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(buf, buf, []byte(s), nil)), nil
}

func (c *tokenCrypto) Decrypt(s string) (string, error) {
	if len(s) > maxSealed {
		return "", errSealed
	}
	if strings.Count(s, ".") == 4 { // a JWE compact serialisation: the library's
		return c.legacy.Decrypt(s)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return "", errSealed
	}
	n := chacha20poly1305.NonceSizeX
	p, err := c.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", errSealed
	}
	return string(p), nil
}
