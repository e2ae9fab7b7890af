// Package signingkeys owns the farm's token signing keys: the JWK set file that
// `kerbgate oidc-keygen` writes and every node reads, the signing of a JWT with its
// newest key, the public JWK set that verifiers fetch, and the `sub` every token
// kerbgate signs carries for an account. The OpenID Provider signs its ID tokens with
// these keys and the forward-auth identity assertion is signed with the same ones,
// so that one JWKS verifies both and an account has one subject at one issuer.
//
// It must not know HTTP, configuration files or who calls it: it is given a path,
// and claims to sign.
package signingkeys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Set is a loaded JWK set of private keys, oldest first: the last signs, all are
// published (so tokens signed before a rotation verify until they expire).
type Set struct {
	keys   []jose.JSONWebKey
	signer jose.Signer
}

// Load reads the farm's signing keys: a JWK set of private keys (RS256 or ES256, each
// with a kid), oldest first.
func Load(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JWK set: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	seen := map[string]bool{}
	for i, k := range set.Keys {
		switch {
		case k.KeyID == "" || seen[k.KeyID]:
			return nil, fmt.Errorf("%s: key %d: missing or repeated kid", path, i)
		case k.IsPublic():
			return nil, fmt.Errorf("%s: key %s: a public key; expected the private key", path, k.KeyID)
		case k.Algorithm != string(jose.RS256) && k.Algorithm != string(jose.ES256):
			return nil, fmt.Errorf("%s: key %s: alg %q; expected RS256 or ES256", path, k.KeyID, k.Algorithm)
		case !k.Valid():
			return nil, fmt.Errorf("%s: key %s: not a valid key", path, k.KeyID)
		}
		seen[k.KeyID] = true
	}
	return New(set.Keys)
}

// New returns the set of keys (private JWKs, oldest first).
func New(keys []jose.JSONWebKey) (*Set, error) {
	if len(keys) == 0 {
		return nil, errors.New("signingkeys: no keys")
	}
	last := keys[len(keys)-1]
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(last.Algorithm), Key: last},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signingkeys: key %s: %w", last.KeyID, err)
	}
	return &Set{keys: append([]jose.JSONWebKey(nil), keys...), signer: signer}, nil
}

// Keys returns the private keys, oldest first.
func (s *Set) Keys() []jose.JSONWebKey { return append([]jose.JSONWebKey(nil), s.keys...) }

// Signing returns the key that signs: the newest.
func (s *Set) Signing() jose.JSONWebKey { return s.keys[len(s.keys)-1] }

// Public returns the published JWK set: every key's public half.
func (s *Set) Public() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range s.keys {
		set.Keys = append(set.Keys, k.Public())
	}
	return set
}

// Sign returns claims (marshalled to JSON) as a compact JWS signed with the newest
// key, its kid in the header.
func (s *Set) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Subject is the sub claim of the account with SID sid at issuer:
// base64url(SHA-256(issuer ‖ 0x00 ‖ SID)). It is stable for the account (a rename
// keeps it), different at each issuer, and not the name. Every token kerbgate signs
// (ID tokens, forward-auth assertions) carries this one.
func Subject(issuer, sid string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + sid))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Add appends a new ES256 key to the JWK set at path (made when absent): deploy the
// file to every node, and the new key signs; remove the oldest once the tokens it
// signed have expired.
func Add(path string, now time.Time) (string, error) {
	var set jose.JSONWebKeySet
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &set); err != nil {
			return "", fmt.Errorf("%s: not a JWK set: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	// The date orders keys for an operator; the random part keeps two keys made in
	// the same second apart.
	rnd := make([]byte, 4)
	if _, err := rand.Read(rnd); err != nil {
		return "", err
	}
	kid := now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd)
	set.Keys = append(set.Keys, jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return kid, os.Rename(tmp, path)
}
