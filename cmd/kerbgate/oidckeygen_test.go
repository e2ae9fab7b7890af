package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/oidcprovider"
)

func TestOIDCKeygenAddsAKeyTheProviderLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidc-keys.json")
	for i := 0; i < 2; i++ {
		var out, errb bytes.Buffer
		if code := run([]string{"oidc-keygen", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "added signing key") {
			t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
		}
	}
	keys, err := oidcprovider.LoadSigningKeys(path)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"oidc-keygen"}, &out, &errb); code != 2 {
		t.Errorf("without a file: exit %d", code)
	}
}
