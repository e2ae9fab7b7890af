package keyset

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRotation(t *testing.T) {
	old, next := NewKeyLine(), NewKeyLine()
	before, err := Parse("# farm cookie keys\n" + old + "\n")
	if err != nil {
		t.Fatal(err)
	}
	sealed := before.Seal("session", "abc")
	// Rotation: the new key signs, the old one still verifies.
	during, err := Parse(next + "\n" + old + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := during.Open("session", sealed); !ok || v != "abc" {
		t.Fatalf("old value during rotation: %q %v", v, ok)
	}
	fresh := during.Seal("session", "def")
	if _, ok := before.Open("session", fresh); ok {
		t.Fatal("a node without the new key verified its value")
	}
	after, _ := Parse(next)
	if _, ok := after.Open("session", sealed); ok {
		t.Fatal("a retired key still verifies")
	}
	if v, ok := after.Open("session", fresh); !ok || v != "def" {
		t.Fatalf("new value: %q %v", v, ok)
	}
}

func TestOpenRefuses(t *testing.T) {
	s := Random()
	sealed := s.Seal("session", "abc")
	for name, v := range map[string]string{
		"other purpose": "", "no tag": "abc", "empty": "", "bad base64": "abc.!!!",
		"short tag": "abc.AAAA", "changed value": "abd" + sealed[3:], "changed tag": flip(sealed, len(sealed)-8), "non-canonical tag": nonCanonical(sealed),
	} {
		purpose := "session"
		if name == "other purpose" {
			purpose, v = "oidc-state", sealed
		}
		if _, ok := s.Open(purpose, v); ok {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestParseErrorsNameTheLineNotTheKey(t *testing.T) {
	short := "c2hvcnQ=" // "short"
	_, err := Parse("# c\n" + short + "\n")
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), short) {
		t.Fatalf("got %v", err)
	}
	if _, err := Parse("\n# only comments\n"); err == nil {
		t.Fatal("empty set accepted")
	}
}

func FuzzOpen(f *testing.F) {
	s := Random()
	f.Add(s.Seal("p", "value"))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, v string) { s.Open("p", v) })
}

// flip changes the character at i to another base64url character.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// nonCanonical sets the unused low bits of the tag's last character (22 characters
// carry 16 bytes: the last holds 2 bits of data and 4 of padding).
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

// LoadOrCreate makes a missing key file once (mode 0600, one key) and then reads it
// unchanged, so a restart keeps the sessions it signed.
func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kerbgate-cookie.keys")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	first, err := LoadOrCreate(path, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.IDs()) != 1 || !strings.Contains(logs.String(), "made the cookie key file") {
		t.Fatalf("keys %v, log %q", first.IDs(), logs.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	logs.Reset()
	again, err := LoadOrCreate(path, log)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.IDs(), first.IDs()) || logs.Len() != 0 {
		t.Errorf("second start: keys %v (first %v), log %q", again.IDs(), first.IDs(), logs.String())
	}
	if v, ok := again.Open("session", first.Seal("session", "abc")); !ok || v != "abc" {
		t.Error("a value sealed before the restart does not open")
	}
	if _, err := LoadOrCreate(filepath.Join(t.TempDir(), "missing-dir", "k"), nil); err == nil {
		t.Error("no error for a directory that does not exist")
	}
}
