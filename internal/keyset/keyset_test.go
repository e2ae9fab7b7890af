package keyset

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// The tag is HMAC-SHA256(key, purpose ‖ 0x00 ‖ value), first 16 bytes, base64url:
// nodes of a farm on different versions open each other's cookies.
func TestSealIsTheDocumentedMAC(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinKeyBytes)
	s, err := Parse(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("session\x00abc"))
	want := "abc." + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
	for i := 0; i < 3; i++ { // the pooled state is reset between uses
		if got := s.Seal("session", "abc"); got != want {
			t.Fatalf("Seal = %q, want %q", got, want)
		}
	}
}

func TestOpenAllocatesNothingAndIsSafeConcurrently(t *testing.T) {
	s, _ := Parse(NewKeyLine() + "\n" + NewKeyLine())
	sealed := s.Seal("session", "abc")
	if n := testing.AllocsPerRun(100, func() { s.Open("session", sealed) }); n != 0 && !raceEnabled {
		t.Errorf("Open allocates %v times", n)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v := fmt.Sprint("value-", g, "-", i)
				if got, ok := s.Open("session", s.Seal("session", v)); !ok || got != v {
					t.Errorf("%q: %q %v", v, got, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkOpen(b *testing.B) {
	s := Random()
	sealed := s.Seal("kerbgate-forward-auth-session", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := s.Open("kerbgate-forward-auth-session", sealed); !ok {
			b.Fatal("not opened")
		}
	}
}
