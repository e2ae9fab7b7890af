package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormatAndRoundTrip(t *testing.T) {
	for _, sec := range []string{"s3cret", "", "ünïcødé ✓", strings.Repeat("x", 500)} {
		h, err := Hash(sec)
		if err != nil {
			t.Fatal(err)
		}
		if !phc.MatchString(h) {
			t.Fatalf("Hash = %q, not the expected PHC format", h)
		}
		if err := Check(h); err != nil {
			t.Fatalf("Check(Hash) = %v", err)
		}
		ok, err := Verify(h, sec)
		if err != nil || !ok {
			t.Fatalf("Verify(Hash(%q)) = %v, %v; want true, nil", sec, ok, err)
		}
		if ok, err := Verify(h, sec+"x"); err != nil || ok {
			t.Fatalf("Verify with a wrong secret = %v, %v; want false, nil", ok, err)
		}
		if strings.Contains(h, sec) && sec != "" {
			t.Fatalf("hash contains the secret")
		}
	}
}

func TestWrongSecret(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse", "correct horse\n"} {
		if ok, err := Verify(h, wrong); err != nil || ok {
			t.Errorf("Verify(h, %q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
}

func TestDifferentSalts(t *testing.T) {
	seen := map[string]bool{}
	salts := map[string]bool{}
	for range 5 {
		h, err := Hash("same secret")
		if err != nil {
			t.Fatal(err)
		}
		if seen[h] {
			t.Fatalf("Hash produced %q twice", h)
		}
		seen[h] = true
		salts[strings.Split(h, "$")[4]] = true
	}
	if len(salts) != 5 {
		t.Fatalf("got %d distinct salts of 5", len(salts))
	}
}

// TestKnownArgon2idVector checks a hash built independently from argon2.IDKey with
// other parameters (and the example configuration's hash format).
func TestKnownArgon2idVector(t *testing.T) {
	salt := []byte("kerbgate-example")
	key := argon2.IDKey([]byte("example-secret"), salt, 3, 65536, 4, 32)
	h := fmt.Sprintf("$argon2id$v=19$m=65536,t=3,p=4$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	if ok, err := Verify(h, "example-secret"); err != nil || !ok {
		t.Fatalf("Verify = %v, %v; want true", ok, err)
	}
	if ok, err := Verify(h, "example-secreT"); err != nil || ok {
		t.Fatalf("Verify wrong = %v, %v; want false", ok, err)
	}
}

func TestBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("bcrypt secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	if !strings.HasPrefix(h, "$2a$04$") {
		t.Fatalf("unexpected bcrypt hash %q", h)
	}
	// The same hash under the other accepted prefixes ($2b$, $2y$) verifies the same.
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hh := prefix + h[4:]
		if err := Check(hh); err != nil {
			t.Fatalf("Check(%s…) = %v", prefix, err)
		}
		if ok, err := Verify(hh, "bcrypt secret"); err != nil || !ok {
			t.Fatalf("Verify(%s…) = %v, %v; want true", prefix, ok, err)
		}
		if ok, err := Verify(hh, "bcrypt secreT"); err != nil || ok {
			t.Fatalf("Verify(%s…) wrong = %v, %v; want false", prefix, ok, err)
		}
	}
	// bcrypt ignores bytes after the 72nd; Verify refuses such secrets instead.
	long := strings.Repeat("a", 72)
	b, err = bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify(string(b), long); err != nil || !ok {
		t.Fatalf("72-byte secret: %v, %v; want true", ok, err)
	}
	if ok, err := Verify(string(b), long+"extra"); err != nil || ok {
		t.Fatalf("73+-byte secret against a 72-byte prefix: %v, %v; want false", ok, err)
	}
}

func TestMalformed(t *testing.T) {
	good, err := Hash("x")
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, "$")
	salt, key := p[4], p[5]
	bc, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := string(bc)
	argon := func(v, params, s, k string) string { return "$argon2id$" + v + "$" + params + "$" + s + "$" + k }
	cases := []struct {
		name, hash, want string
	}{
		{"empty", "", "not an argon2id or bcrypt hash; generate one with kerbgate hash-secret"},
		{"plain text", "s3cret", "not an argon2id or bcrypt hash"},
		{"sha256 hex", strings.Repeat("ab", 32), "not an argon2id or bcrypt hash"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), "only argon2id"},
		{"argon2d", strings.Replace(good, "argon2id", "argon2d", 1), "only argon2id"},
		{"uppercase", strings.Replace(good, "argon2id", "ARGON2ID", 1), "not an argon2id or bcrypt hash"},
		{"leading space", " " + good, "not an argon2id or bcrypt hash"},
		{"too few fields", "$argon2id$v=19$m=19456,t=2,p=1$" + salt, "fields"},
		{"too many fields", good + "$x", "fields"},
		{"trailing newline", good + "\n", "control or non-ASCII character at position 97"},
		{"inner CR", strings.Replace(good, key, key[:10]+"\r"+key[10:], 1), "control or non-ASCII"},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key, "fields"},
		{"version field missing v=", argon("19", "m=19456,t=2,p=1", salt, key), "version"},
		{"version 16", argon("v=16", "m=19456,t=2,p=1", salt, key), "only v=19"},
		{"params order", argon("v=19", "t=2,m=19456,p=1", salt, key), "in that order"},
		{"params missing", argon("v=19", "m=19456,t=2", salt, key), "in that order"},
		{"params spaces", argon("v=19", "m=19456, t=2,p=1", salt, key), "a space"},
		{"param not number", argon("v=19", "m=lots,t=2,p=1", salt, key), "not a decimal"},
		{"param negative", argon("v=19", "m=19456,t=-2,p=1", salt, key), "not a decimal"},
		{"param leading zero", argon("v=19", "m=019456,t=2,p=1", salt, key), "not a decimal"},
		{"param overflow", argon("v=19", "m=99999999999,t=2,p=1", salt, key), "not a decimal"},
		{"salt padded", argon("v=19", "m=19456,t=2,p=1", salt+"==", key), "salt is not unpadded"},
		{"salt bad char", argon("v=19", "m=19456,t=2,p=1", "!"+salt[1:], key), "salt is not unpadded"},
		{"salt url alphabet", argon("v=19", "m=19456,t=2,p=1", "-_"+salt[2:], key), "salt is not unpadded"},
		{"salt empty", argon("v=19", "m=19456,t=2,p=1", "", key), "salt is 0 bytes"},
		{"salt short", argon("v=19", "m=19456,t=2,p=1", "YWJj", key), "salt is 3 bytes"},
		{"key empty", argon("v=19", "m=19456,t=2,p=1", salt, ""), "hash value is 0 bytes"},
		{"key short", argon("v=19", "m=19456,t=2,p=1", salt, key[:8]), "hash value is 6 bytes"},
		{"key bad", argon("v=19", "m=19456,t=2,p=1", salt, key[:40]+"***"), "not unpadded"},
		{"bcrypt short", b[:59], "60 characters"},
		{"bcrypt long", b + "x", "60 characters"},
		{"bcrypt no cost", "$2b$" + b[7:] + "xxx", "two-digit cost"},
		{"bcrypt bad cost", "$2b$1x" + b[6:], "not a two-digit number"},
		{"bcrypt cost 3", "$2b$03" + b[6:], "outside 4..16"},
		{"bcrypt cost 31", "$2b$31" + b[6:], "outside 4..16"},
		{"bcrypt bad alphabet", b[:20] + "+" + b[21:], "outside its base64 alphabet"},
		{"bcrypt $2x$", "$2x$" + b[4:], "only $2a$, $2b$ and $2y$"},
		{"bcrypt $2$", "$2$" + b[4:], "only $2a$, $2b$ and $2y$"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.hash)
			if err == nil {
				t.Fatalf("Check accepted %q", c.hash)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if len(c.hash) > 12 && strings.Contains(err.Error(), c.hash) {
				t.Errorf("error %q repeats the hash", err)
			}
			ok, verr := Verify(c.hash, "x")
			if ok || verr == nil || verr.Error() != err.Error() {
				t.Errorf("Verify = %v, %v; want false and Check's error", ok, verr)
			}
		})
	}
}

func TestParameterCaps(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	h := func(m, t, p int) string {
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, salt, key)
	}
	accept := []string{
		h(MaxMemory, 1, 1),
		h(19456, MaxTime, 1),
		h(19456, 2, MaxThreads),
		h(8, 1, 1),
		h(65536, 3, 4),
	}
	for _, s := range accept {
		if err := Check(s); err != nil {
			t.Errorf("Check(%s) = %v; want nil", s, err)
		}
	}
	reject := map[string]string{
		h(MaxMemory+1, 2, 1):      "memory m=262145 KiB is outside",
		h(1<<30, 2, 1):            "memory",
		h(19456, MaxTime+1, 1):    "time cost t=11 is outside 1..10",
		h(19456, 0, 1):            "time cost t=0",
		h(19456, 2, MaxThreads+1): "parallelism p=17 is outside 1..16",
		h(19456, 2, 0):            "parallelism p=0",
		h(7, 1, 1):                "memory m=7 KiB",
		h(63, 1, 8):               "memory m=63 KiB is outside 64..",
	}
	for s, want := range reject {
		err := Check(s)
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v; want an ErrMalformed mentioning %q", s, err, want)
		}
		// Verify refuses before spending any memory or time.
		if ok, err := Verify(s, "x"); ok || err == nil {
			t.Errorf("Verify(%s) = %v, %v; want an error", s, ok, err)
		}
	}
}

func BenchmarkVerifyArgon2id(b *testing.B) {
	h, err := Hash("benchmark secret")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := Verify(h, "benchmark secret"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkVerifyBcrypt10(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("benchmark secret"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := Verify(string(h), "benchmark secret"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("benchmark secret"); err != nil {
			b.Fatal(err)
		}
	}
}
