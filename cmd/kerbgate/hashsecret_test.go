package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/secret"
)

func runHashSecret(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = hashSecretCmd(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHashSecretFromStdin(t *testing.T) {
	for _, in := range []string{"s3cret\n", "s3cret", "s3cret\r\n", "s3cret\nsecond line ignored\n"} {
		code, out, errs := runHashSecret(t, in)
		if code != 0 || errs != "" {
			t.Fatalf("input %q: code %d, stderr %q", in, code, errs)
		}
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("input %q: output %q is not one line", in, out)
		}
		h := strings.TrimSuffix(out, "\n")
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("input %q: output %q is not an argon2id hash", in, h)
		}
		if ok, err := secret.Verify(h, "s3cret"); !ok || err != nil {
			t.Fatalf("input %q: hash does not verify s3cret: %v, %v", in, ok, err)
		}
	}
}

func TestHashSecretKeepsInnerSpaces(t *testing.T) {
	code, out, _ := runHashSecret(t, " pass phrase \n")
	if code != 0 {
		t.Fatal(code)
	}
	if ok, _ := secret.Verify(strings.TrimSpace(out), " pass phrase "); !ok {
		t.Fatal("leading/trailing spaces of the secret were not kept")
	}
}

func TestHashSecretRefusesEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "\r\n", "\nsecret on line two\n"} {
		code, out, errs := runHashSecret(t, in)
		if code != 1 || out != "" || !strings.Contains(errs, "empty secret") {
			t.Errorf("input %q: code %d, stdout %q, stderr %q; want 1 and an empty-secret message", in, code, out, errs)
		}
	}
}

func TestHashSecretRefusesLongLine(t *testing.T) {
	code, out, errs := runHashSecret(t, strings.Repeat("a", maxSecretLine+1)+"\n")
	if code != 1 || out != "" || !strings.Contains(errs, "longer than") {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, _ = runHashSecret(t, strings.Repeat("a", maxSecretLine)+"\n")
	if code != 0 {
		t.Fatalf("a secret of exactly %d bytes: code %d", maxSecretLine, code)
	}
}

func TestHashSecretGenerate(t *testing.T) {
	code, out, errs := runHashSecret(t, "ignored\n", "--generate")
	if code != 0 || errs != "" {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q: want two lines", out)
	}
	sec, ok1 := strings.CutPrefix(lines[0], "client_secret: ")
	h, ok2 := strings.CutPrefix(lines[1], "secret_hash: ")
	if !ok1 || !ok2 {
		t.Fatalf("output %q: want client_secret: and secret_hash: lines", out)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sec)
	if err != nil || len(raw) != 32 {
		t.Fatalf("client_secret %q is not 32 bytes of base64url: %v", sec, err)
	}
	if ok, err := secret.Verify(h, sec); !ok || err != nil {
		t.Fatalf("secret_hash does not verify client_secret: %v, %v", ok, err)
	}
	if ok, _ := secret.Verify(h, "ignored"); ok {
		t.Fatal("--generate hashed stdin")
	}

	_, out2, _ := runHashSecret(t, "", "-generate")
	if out2 == out {
		t.Fatal("two runs generated the same secret")
	}
}

func TestHashSecretUsage(t *testing.T) {
	code, out, errs := runHashSecret(t, "x\n", "s3cret")
	if code != 2 || out != "" || !strings.Contains(errs, "standard input") {
		t.Errorf("positional secret: code %d, stdout %q, stderr %q", code, out, errs)
	}
	if strings.Contains(errs, "s3cret") {
		t.Errorf("stderr repeats the secret: %q", errs)
	}
	code, out, _ = runHashSecret(t, "x\n", "--bogus")
	if code != 2 || out != "" {
		t.Errorf("unknown flag: code %d, stdout %q", code, out)
	}
	code, _, errs = runHashSecret(t, "", "--help")
	if code != 0 || !strings.Contains(errs, "--generate") {
		t.Errorf("--help: code %d, stderr %q", code, errs)
	}
}
