package pac

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
)

const testDomainSID = "S-1-5-21-3623811015-3361044348-30300820"

func mustKey(t testing.TB, etype int32, seed byte) *kcrypto.Key {
	t.Helper()
	n := 32
	switch etype {
	case kcrypto.AES128SHA1, kcrypto.AES128SHA256, kcrypto.RC4HMAC:
		n = 16
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = seed + byte(i)*7
	}
	k, err := kcrypto.NewKey(etype, v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func groupRIDs(n int) []uint32 {
	r := make([]uint32, n)
	for i := range r {
		r[i] = 1100 + uint32(i)
	}
	if n > 0 {
		r[0] = 513
	}
	return r
}

func testOptions(nGroups int) krbtest.PACOptions {
	return krbtest.PACOptions{
		UserName:  "alice",
		FullName:  "Alice Liddell",
		Domain:    "EXAMPLE",
		DNSDomain: "EXAMPLE.TEST",
		UPN:       "alice@example.test",
		DomainSID: testDomainSID,
		UserRID:   1104,
		GroupRIDs: groupRIDs(nGroups),
		AuthTime:  time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
}

func mustBuild(t testing.TB, o krbtest.PACOptions, srv, kdc *kcrypto.Key) []byte {
	t.Helper()
	b, err := krbtest.PAC(o, srv, kdc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wrapPAC puts buffers (type, data) into a PACTYPE.
func wrapPAC(bufs ...any) []byte {
	n := len(bufs) / 2
	out := binary.LittleEndian.AppendUint32(nil, uint32(n))
	out = binary.LittleEndian.AppendUint32(out, 0)
	off := 8 + 16*n
	for i := 0; i < n; i++ {
		d := bufs[2*i+1].([]byte)
		out = binary.LittleEndian.AppendUint32(out, bufs[2*i].(uint32))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(d)))
		out = binary.LittleEndian.AppendUint64(out, uint64(off))
		off += (len(d) + 7) &^ 7
	}
	for i := 0; i < n; i++ {
		out = append(out, bufs[2*i+1].([]byte)...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	return out
}

// pacFromAuthzData digs the AD-WIN2K-PAC out of AuthorizationData → AD-IF-RELEVANT.
func pacFromAuthzData(t testing.TB, b []byte) []byte {
	t.Helper()
	var outer types.AuthorizationData
	if err := outer.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	for _, e := range outer {
		if e.ADType == 128 {
			return e.ADData
		}
		if e.ADType != 1 {
			continue
		}
		var inner types.AuthorizationData
		if err := inner.Unmarshal(e.ADData); err != nil {
			t.Fatal(err)
		}
		for _, ie := range inner {
			if ie.ADType == 128 {
				return ie.ADData
			}
		}
	}
	t.Fatal("no PAC in authorization data")
	return nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sigRanges(p *PAC) [][2]int {
	var r [][2]int
	for _, s := range []Signature{p.ServerSignature, p.KDCSignature} {
		if s.Value != nil {
			r = append(r, [2]int{s.offset, s.offset + len(s.Value)})
		}
	}
	return r
}

func inRanges(i int, r [][2]int) bool {
	for _, x := range r {
		if i >= x[0] && i < x[1] {
			return true
		}
	}
	return false
}
