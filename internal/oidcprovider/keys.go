package oidcprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// LoadSigningKeys reads the farm's signing keys: a JWK set of private keys (RS256 or
// ES256, each with a kid), oldest first. The last signs; all are published.
func LoadSigningKeys(path string) ([]jose.JSONWebKey, error) {
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
	return set.Keys, nil
}

// AddSigningKey appends a new ES256 key to the JWK set at path (made when absent):
// deploy the file to every node, and the new key signs; remove the oldest once the
// tokens it signed have expired.
func AddSigningKey(path string, now time.Time) (string, error) {
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
