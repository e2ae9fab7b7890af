package kcrypto

import (
	"encoding/hex"
	"testing"
)

// The expected values were computed with MIT krb5 1.20's libkrb5 (krb5_c_prf,
// krb5_c_fx_cf2_simple, krb5_c_string_to_key_with_params) through Python ctypes: an
// independent implementation of RFC 3962's PRF and RFC 6113's KRB-FX-CF2.
var (
	key32  = mustHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	key32r = mustHex("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustKey(t *testing.T, et int32, v []byte) *Key {
	t.Helper()
	k, err := NewKey(et, v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPRFMatchesMIT(t *testing.T) {
	for _, c := range []struct {
		et    int32
		key   []byte
		input string
		want  string
	}{
		{AES256SHA1, key32, "\x01test", "7f81e0cf566bc77cd638fe804a7c1526"},
		{AES128SHA1, key32[:16], "\x02abc", "a90fe33f9610782505814f03f56aaa50"},
	} {
		got, err := mustKey(t, c.et, c.key).PRF([]byte(c.input))
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != c.want {
			t.Errorf("PRF enctype %d = %x, MIT says %s", c.et, got, c.want)
		}
	}
}

func TestCF2MatchesMIT(t *testing.T) {
	for _, c := range []struct {
		et1, et2 int32
		k1, k2   []byte
		p1, p2   string
		want     string
	}{
		{AES256SHA1, AES256SHA1, key32, key32r, "subkeyarmor", "ticketarmor", "7750d21fba5b8b7cb70f8b6d983b7822658c3ac89c9307f5cb6e00b149207c9b"},
		{AES128SHA1, AES128SHA1, key32[:16], key32r[:16], "a", "b", "3a548bbd6140ebdd5f1963fd9b759c83"},
		{AES256SHA1, AES128SHA1, key32, key32r[:16], "clientchallengearmor", "challengelongterm", "6769977e4216d971992865bf7d0785304413dde34adb6c4597a6dd0f189bc7fa"},
	} {
		got, err := CF2(mustKey(t, c.et1, c.k1), mustKey(t, c.et2, c.k2), c.p1, c.p2)
		if err != nil {
			t.Fatal(err)
		}
		if got.EType() != c.et1 || hex.EncodeToString(got.Value()) != c.want {
			t.Errorf("CF2(%d, %d, %s, %s) = %d/%x, MIT says %s", c.et1, c.et2, c.p1, c.p2, got.EType(), got.Value(), c.want)
		}
	}
}

func TestFromPasswordMatchesMIT(t *testing.T) {
	k, err := FromPassword(AES256SHA1, "Alice#Pass1", "EXAMPLE.TESTalice", []byte{0, 0, 0x10, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.Value()); got != "6364a3612ef87ca205f8a9eff03b34fc725bd34ad03b11bbd5e7482562140794" {
		t.Errorf("string-to-key = %s", got)
	}
}

// A KDC (or someone between kerbgate and it) cannot make a sign-in cost billions of
// PBKDF2 rounds: s2kparams 0 means 2^32 iterations.
func TestFromPasswordBoundsIterations(t *testing.T) {
	for _, p := range [][]byte{{0, 0, 0, 0}, {0, 0x10, 0, 0}} {
		if _, err := FromPassword(AES256SHA1, "x", "y", p); err == nil {
			t.Errorf("s2kparams %x accepted", p)
		}
	}
	if _, err := FromPassword(RC4HMAC, "x", "y", nil); err == nil {
		t.Error("an RC4 password key was made")
	}
}

// Checksum and VerifyChecksum agree, for both AES enctypes.
func TestChecksumRoundTrip(t *testing.T) {
	for _, et := range []int32{AES128SHA1, AES256SHA1} {
		k := mustKey(t, et, key32[:keySize(et)])
		sum, err := k.Checksum(UsageFASTReqChecksum, []byte("body"))
		if err != nil {
			t.Fatal(err)
		}
		if !k.VerifyChecksum(UsageFASTReqChecksum, sum, []byte("body")) || k.VerifyChecksum(UsageFASTReqChecksum, sum, []byte("bodz")) {
			t.Errorf("enctype %d: checksum does not verify as it should", et)
		}
	}
}
