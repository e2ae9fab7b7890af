package oidcprovider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAddSigningKeyAppendsAndLoadSigningKeysReadsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	k1, err := AddSigningKey(path, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := AddSigningKey(path, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadSigningKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].KeyID != k1 || keys[1].KeyID != k2 || keys[1].Algorithm != "ES256" {
		t.Fatalf("keys %v", keys)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestLoadSigningKeysRefusesPublicKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := AddSigningKey(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, _ := LoadSigningKeys(path)
	pub, _ := keys[0].Public().MarshalJSON()
	os.WriteFile(path, []byte(`{"keys":[`+string(pub)+`]}`), 0o600)
	if _, err := LoadSigningKeys(path); err == nil || !strings.Contains(err.Error(), "a public key") {
		t.Errorf("err %v", err)
	}
}

func TestSubjectIsStablePerIssuerAndNotTheName(t *testing.T) {
	a := Subject("https://sso.example.com/oidc", "S-1-5-21-1-2-3-1105")
	if a != Subject("https://sso.example.com/oidc", "S-1-5-21-1-2-3-1105") || len(a) != 43 {
		t.Errorf("sub %q", a)
	}
	if a == Subject("https://other.example.com/oidc", "S-1-5-21-1-2-3-1105") {
		t.Error("same sub at two issuers")
	}
}
