package kcrypto

import "testing"

func TestEnctypeName(t *testing.T) {
	for e, want := range map[int32]string{
		18: "aes256-cts-hmac-sha1-96",
		17: "aes128-cts-hmac-sha1-96",
		20: "aes256-cts-hmac-sha384-192",
		19: "aes128-cts-hmac-sha256-128",
		23: "rc4-hmac",
		3:  "des-cbc-md5",
		99: "etype 99",
	} {
		if got := EnctypeName(e); got != want {
			t.Errorf("EnctypeName(%d) = %q, want %q", e, got, want)
		}
	}
	// Every supported name round-trips.
	for _, n := range enctypeNames {
		if e, ok := LookupEnctype(EnctypeName(n.etype)); !ok || e != n.etype {
			t.Errorf("LookupEnctype(EnctypeName(%d)) = %d, %v", n.etype, e, ok)
		}
	}
	for _, a := range EnctypeAliases() {
		if _, ok := LookupEnctype(a); !ok {
			t.Errorf("alias %q does not look up", a)
		}
	}
	if e, ok := LookupEnctype("AES256-CTS"); !ok || e != AES256SHA1 {
		t.Errorf("LookupEnctype is case-sensitive: %d %v", e, ok)
	}
	if got := EnctypeNameList([]int32{18, 23}); got != "aes256-cts-hmac-sha1-96,rc4-hmac" {
		t.Errorf("EnctypeNameList = %q", got)
	}
}
