package wire

import (
	"bytes"
	"testing"
)

// KERB_AUTH_DATA_CLIENT_TARGET (MS-KILE §3.2.5.8) read from inside AD-IF-RELEVANT, as
// UTF-16LE; malformed or contradictory elements are errors, never "absent".
func TestClientTarget(t *testing.T) {
	wrap := func(elems ...AuthorizationData) []AuthorizationData {
		inner, err := MarshalAuthorizationData(elems)
		if err != nil {
			t.Fatal(err)
		}
		return []AuthorizationData{{Type: ADIfRelevant, Data: inner}}
	}
	enc := EncodeClientTarget("HTTP/sso.example.test@EXAMPLE.TEST")
	if want := []byte{'H', 0, 'T', 0, 'T', 0, 'P', 0, '/', 0}; !bytes.HasPrefix(enc, want) || len(enc) != 2*len("HTTP/sso.example.test@EXAMPLE.TEST") {
		t.Fatalf("encoding % x", enc)
	}
	cases := []struct {
		name    string
		ads     []AuthorizationData
		want    string
		present bool
		err     bool
	}{
		{"none", nil, "", false, false},
		{"only ap options", wrap(AuthorizationData{Type: ADAuthDataAPOptions, Data: []byte{0, 0x40, 0, 0}}), "", false, false},
		{"outside AD-IF-RELEVANT is ignored", []AuthorizationData{{Type: ADClientTarget, Data: enc}}, "", false, false},
		{"present", wrap(AuthorizationData{Type: ADAuthDataAPOptions, Data: []byte{0, 0x40, 0, 0}}, AuthorizationData{Type: ADClientTarget, Data: enc}), "HTTP/sso.example.test@EXAMPLE.TEST", true, false},
		{"NUL-terminated", wrap(AuthorizationData{Type: ADClientTarget, Data: append(append([]byte{}, enc...), 0, 0)}), "HTTP/sso.example.test@EXAMPLE.TEST", true, false},
		{"odd length", wrap(AuthorizationData{Type: ADClientTarget, Data: enc[:5]}), "", true, true},
		{"empty", wrap(AuthorizationData{Type: ADClientTarget}), "", true, true},
		{"lone surrogate", wrap(AuthorizationData{Type: ADClientTarget, Data: []byte{0x00, 0xd8}}), "", true, true},
		{"two that disagree", wrap(AuthorizationData{Type: ADClientTarget, Data: enc}, AuthorizationData{Type: ADClientTarget, Data: EncodeClientTarget("HTTP/x.example.test")}), "", true, true},
	}
	for _, c := range cases {
		got, present, err := ClientTarget(c.ads)
		if got != c.want || present != c.present || (err != nil) != c.err {
			t.Errorf("%s: %q %v %v", c.name, got, present, err)
		}
	}
	if !TargetNames("http/SSO.example.test@example.test", "HTTP/sso.example.test", "EXAMPLE.TEST") ||
		!TargetNames("HTTP/sso.example.test", "HTTP/sso.example.test", "EXAMPLE.TEST") ||
		TargetNames("HTTP/sso.example.test@OTHER.TEST", "HTTP/sso.example.test", "EXAMPLE.TEST") ||
		TargetNames("HTTP/other.example.test@EXAMPLE.TEST", "HTTP/sso.example.test", "EXAMPLE.TEST") {
		t.Error("TargetNames")
	}
}

// The target name comes from the network (inside an authenticator that decrypted):
// decoding never panics, and a name it returns round-trips.
func FuzzClientTarget(f *testing.F) {
	f.Add(EncodeClientTarget("HTTP/sso.example.test@EXAMPLE.TEST"))
	f.Add([]byte{0x00, 0xd8})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		inner, err := MarshalAuthorizationData([]AuthorizationData{{Type: ADClientTarget, Data: data}})
		if err != nil {
			return
		}
		name, present, err := ClientTarget([]AuthorizationData{{Type: ADIfRelevant, Data: inner}})
		if !present {
			t.Fatal("element present but reported absent")
		}
		trimmed := data
		for len(trimmed) >= 2 && trimmed[len(trimmed)-1] == 0 && trimmed[len(trimmed)-2] == 0 {
			trimmed = trimmed[:len(trimmed)-2] // terminating NULs are tolerated
		}
		if err == nil && string(EncodeClientTarget(name)) != string(trimmed) {
			t.Fatalf("%q does not round-trip to % x", name, data)
		}
	})
}
