package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

func TestOIDCKeygenAddsAKeyTheProviderLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oidc-keys.json")
	for i := 0; i < 2; i++ {
		var out, errb bytes.Buffer
		if code := run([]string{"oidc-keygen", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "added signing key") {
			t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
		}
	}
	set, err := signingkeys.Load(path)
	if err != nil || len(set.Keys()) != 2 {
		t.Fatalf("keys %v, %v", set, err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"oidc-keygen"}, &out, &errb); code != 2 {
		t.Errorf("without a file: exit %d", code)
	}
}
