package store_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/store"
)

func TestNewID(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	seen := make(map[string]bool)
	for range 1000 {
		id, err := store.NewID(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 43 {
			t.Fatalf("NewID length %d, want 43: %q", len(id), id)
		}
		if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }); i >= 0 {
			t.Fatalf("NewID %q has %q outside base64url", id, id[i])
		}
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 32 {
			t.Fatalf("NewID %q does not decode to 32 bytes: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestNewIDReader(t *testing.T) {
	src := bytes.Repeat([]byte{0xfb}, 32)
	id, err := store.NewID(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(src); id != want {
		t.Fatalf("NewID = %q, want %q", id, want)
	}
	if _, err := store.NewID(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("NewID accepted a short read")
	}
}
