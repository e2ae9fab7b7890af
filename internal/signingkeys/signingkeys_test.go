package signingkeys

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestAddAppendsAndLoadReadsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	k1, err := Add(path, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Add(path, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Keys()
	if len(keys) != 2 || keys[0].KeyID != k1 || keys[1].KeyID != k2 || keys[1].Algorithm != "ES256" || set.Signing().KeyID != k2 {
		t.Fatalf("keys %v", keys)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestLoadRefusesPublicKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := Add(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	set, _ := Load(path)
	pub, _ := set.Keys()[0].Public().MarshalJSON()
	os.WriteFile(path, []byte(`{"keys":[`+string(pub)+`]}`), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "a public key") {
		t.Errorf("err %v", err)
	}
}

// A token signed before a rotation verifies against the published set after it;
// the new key signs from then on.
func TestSignWithNewestKeyAndOldTokensVerifyAfterRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	old, _ := Add(path, time.Now())
	set, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := set.Sign(map[string]any{"sub": "x"})
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := Add(path, time.Now())
	rotated, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) string {
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		kid := jws.Signatures[0].Header.KeyID
		pub := rotated.Public()
		keys := pub.Key(kid)
		if len(keys) != 1 || keys[0].IsPublic() != true {
			t.Fatalf("kid %s in %v", kid, pub)
		}
		b, err := jws.Verify(keys[0])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		json.Unmarshal(b, &c)
		if c["sub"] != "x" {
			t.Fatalf("claims %v", c)
		}
		return kid
	}
	if kid := verify(tok); kid != old {
		t.Errorf("old token kid %s, want %s", kid, old)
	}
	tok2, _ := rotated.Sign(map[string]any{"sub": "x"})
	if kid := verify(tok2); kid != newer {
		t.Errorf("new token kid %s, want %s", kid, newer)
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
