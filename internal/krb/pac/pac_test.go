package pac

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
)

func TestRoundTrip(t *testing.T) {
	for _, et := range []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1, kcrypto.RC4HMAC, kcrypto.AES128SHA256, kcrypto.AES256SHA384} {
		t.Run(fmt.Sprint(et), func(t *testing.T) {
			srv, kdc := mustKey(t, et, 1), mustKey(t, kcrypto.AES256SHA1, 99)
			o := testOptions(5)
			o.ExtraSIDs = []string{"S-1-18-1", "S-1-5-21-1-2-3-4444"}
			o.ResourceDomainSID = "S-1-5-21-7-8-9"
			o.ResourceRIDs = []uint32{1200, 1201}
			b := mustBuild(t, o, srv, kdc)
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				testDomainSID + "-513", testDomainSID + "-1101", testDomainSID + "-1102",
				testDomainSID + "-1103", testDomainSID + "-1104",
				"S-1-18-1", "S-1-5-21-1-2-3-4444",
				"S-1-5-21-7-8-9-1200", "S-1-5-21-7-8-9-1201",
			}
			if !eqStrings(p.GroupSIDs, want) {
				t.Errorf("GroupSIDs = %q\nwant %q", p.GroupSIDs, want)
			}
			check := func(name, got, want string) {
				if got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			check("UserSID", p.UserSID, testDomainSID+"-1104")
			check("PrimaryGroupSID", p.PrimaryGroupSID, testDomainSID+"-513")
			check("LogonDomainSID", p.LogonDomainSID, testDomainSID)
			check("EffectiveName", p.EffectiveName, "alice")
			check("FullName", p.FullName, "Alice Liddell")
			check("LogonDomainName", p.LogonDomainName, "EXAMPLE")
			check("LogonServer", p.LogonServer, "DC01")
			check("ClientName", p.ClientName, "alice")
			check("UPN", p.UPN, "alice@example.test")
			check("DNSDomainName", p.DNSDomainName, "EXAMPLE.TEST")
			check("SAMAccountName", p.SAMAccountName, "alice")
			if !p.HasUPNDNSInfo || p.UserAccountControl != 0x210 || p.UserFlags != 0x220 {
				t.Errorf("HasUPNDNSInfo %v UAC %#x UserFlags %#x", p.HasUPNDNSInfo, p.UserAccountControl, p.UserFlags)
			}
			if p.ServerSignature.Type != checksumTypeFor(et) || p.KDCSignature.Type != cksumSHA1AES256 {
				t.Errorf("signature types %d/%d", p.ServerSignature.Type, p.KDCSignature.Type)
			}
			if err := p.VerifyServerSignature(srv); err != nil {
				t.Fatalf("VerifyServerSignature: %v", err)
			}
			if err := p.VerifyServerSignature(mustKey(t, et, 2)); !errors.Is(err, ErrSignature) {
				t.Errorf("wrong key: %v, want ErrSignature", err)
			}
			if et != kcrypto.AES256SHA1 {
				if err := p.VerifyServerSignature(mustKey(t, kcrypto.AES256SHA1, 1)); !errors.Is(err, ErrSignature) {
					t.Errorf("key of another enctype: %v, want ErrSignature", err)
				}
			}
		})
	}
}

func TestNoServerSignature(t *testing.T) {
	srv := mustKey(t, kcrypto.AES256SHA1, 1)
	b := mustBuild(t, testOptions(2), srv, srv)
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// Retype the server signature buffer as an unknown buffer type.
	for i := 0; i < 5; i++ {
		if binary.LittleEndian.Uint32(b[8+16*i:]) == typeServerSig {
			binary.LittleEndian.PutUint32(b[8+16*i:], 0x99)
		}
	}
	if p, err = Parse(b); err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyServerSignature(srv); !errors.Is(err, ErrNoServerSignature) {
		t.Fatalf("got %v, want ErrNoServerSignature", err)
	}
}

// Every bit outside the two Signature fields is covered by the server signature.
func TestBitFlips(t *testing.T) {
	srv, kdc := mustKey(t, kcrypto.AES256SHA1, 1), mustKey(t, kcrypto.RC4HMAC, 5)
	o := testOptions(3)
	o.ExtraSIDs = []string{"S-1-18-1"}
	o.ResourceDomainSID = "S-1-5-21-7-8-9"
	o.ResourceRIDs = []uint32{1200}
	orig := mustBuild(t, o, srv, kdc)
	p, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	sigs := sigRanges(p)
	b := make([]byte, len(orig))
	parsed := 0
	for i := 0; i < len(orig); i++ {
		if inRanges(i, sigs) {
			continue
		}
		for bit := 0; bit < 8; bit++ {
			copy(b, orig)
			b[i] ^= 1 << bit
			p, err := Parse(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("byte %d bit %d: %v does not wrap ErrMalformed", i, bit, err)
				}
				continue
			}
			parsed++
			if err := p.VerifyServerSignature(srv); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrNoServerSignature) {
				t.Fatalf("byte %d bit %d: verify gave %v", i, bit, err)
			}
		}
	}
	if parsed == 0 {
		t.Fatal("no flipped PAC parsed; the test checks nothing")
	}
	// Flips inside the KDC signature are not the server's business.
	copy(b, orig)
	b[p.KDCSignature.offset] ^= 1
	p2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.VerifyServerSignature(srv); err != nil {
		t.Fatalf("KDC signature change broke the server signature: %v", err)
	}
}

func TestTruncations(t *testing.T) {
	srv := mustKey(t, kcrypto.AES256SHA1, 1)
	o := testOptions(4)
	o.ExtraSIDs = []string{"S-1-18-1"}
	o.ResourceDomainSID = "S-1-5-21-7-8-9"
	o.ResourceRIDs = []uint32{1200}
	b := mustBuild(t, o, srv, srv)
	// End of the last buffer's data (the rest is alignment padding).
	end := 0
	n := int(binary.LittleEndian.Uint32(b))
	for i := 0; i < n; i++ {
		e := b[8+16*i:]
		if x := int(binary.LittleEndian.Uint64(e[8:])) + int(binary.LittleEndian.Uint32(e[4:])); x > end {
			end = x
		}
	}
	for l := 0; l < len(b); l++ {
		p, err := Parse(append([]byte(nil), b[:l]...))
		if l < end {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated to %d: err %v", l, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("truncated padding to %d: %v", l, err)
		}
		if err := p.VerifyServerSignature(srv); !errors.Is(err, ErrSignature) {
			t.Fatalf("truncated padding to %d: verify %v", l, err)
		}
	}
}

// Truncating the KERB_VALIDATION_INFO buffer (its size and object length) at every
// length must fail cleanly too.
func TestTruncatedLogonInfo(t *testing.T) {
	o := testOptions(4)
	o.ExtraSIDs = []string{"S-1-18-1", "S-1-5-32-544"}
	o.ResourceDomainSID = "S-1-5-21-7-8-9"
	o.ResourceRIDs = []uint32{1200}
	srv := mustKey(t, kcrypto.AES256SHA1, 1)
	kvi := buffer(t, mustBuild(t, o, srv, srv), typeLogonInfo)
	if _, err := Parse(wrapPAC(typeLogonInfo, kvi)); err != nil {
		t.Fatal(err)
	}
	full := int(binary.LittleEndian.Uint32(kvi[8:]))
	for l := 0; l < full; l++ {
		k := append([]byte(nil), kvi[:16+l]...)
		if len(k) >= 12 {
			binary.LittleEndian.PutUint32(k[8:], uint32(l))
		}
		_, err := Parse(wrapPAC(typeLogonInfo, k))
		if err == nil && bytes.Count(kvi[16+l:16+full], []byte{0}) == full-l {
			continue // only NDR alignment padding was cut
		}
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("object length %d of %d: %v", l, full, err)
		}
	}
}

// buffer returns the PAC buffer of the type (MS-PAC §2.3 PAC_INFO_BUFFER).
func buffer(t *testing.T, p []byte, typ uint32) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(p))
	for i := 0; i < n; i++ {
		e := p[8+16*i:]
		if binary.LittleEndian.Uint32(e) == typ {
			size, off := binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint64(e[8:])
			return append([]byte(nil), p[off:off+uint64(size)]...)
		}
	}
	t.Fatalf("no PAC buffer of type %d", typ)
	return nil
}

func TestMalformed(t *testing.T) {
	srv := mustKey(t, kcrypto.AES256SHA1, 1)
	good := mustBuild(t, testOptions(3), srv, srv)
	n := int(binary.LittleEndian.Uint32(good))
	entry := func(typ uint32) int {
		for i := 0; i < n; i++ {
			if binary.LittleEndian.Uint32(good[8+16*i:]) == typ {
				return 8 + 16*i
			}
		}
		t.Fatalf("no buffer %#x", typ)
		return 0
	}
	kviOff := int(binary.LittleEndian.Uint64(good[entry(typeLogonInfo)+8:]))
	structAt := kviOff + 20
	upnOff := int(binary.LittleEndian.Uint64(good[entry(typeUPNDNSInfo)+8:]))
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	put32 := func(at int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[at:], v) }
	}
	put64 := func(at int, v uint64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[at:], v) }
	}
	cases := map[string][]byte{
		"empty":                nil,
		"short header":         good[:7],
		"version 1":            mod(put32(4, 1)),
		"zero buffers":         mod(put32(0, 0)),
		"huge cBuffers":        mod(put32(0, 0xffffffff)),
		"65 buffers":           mod(put32(0, 65)),
		"table past end":       mod(put32(0, 60)),
		"offset misaligned":    mod(put64(entry(typeClientInfo)+8, uint64(binary.LittleEndian.Uint64(good[entry(typeClientInfo)+8:])+4))),
		"offset past end":      mod(put64(entry(typeClientInfo)+8, uint64(len(good)+8))),
		"offset huge":          mod(put64(entry(typeClientInfo)+8, 1<<63)),
		"offset in table":      mod(put64(entry(typeClientInfo)+8, 8)),
		"size past end":        mod(put32(entry(typeKDCSig)+4, 0xffffffff)),
		"overlap":              mod(put64(entry(typeClientInfo)+8, uint64(kviOff))),
		"duplicate type":       mod(put32(entry(typeClientInfo), typeLogonInfo)),
		"no logon info":        mod(put32(entry(typeLogonInfo), 0x99)),
		"big-endian NDR":       mod(func(b []byte) { b[kviOff+1] = 0 }),
		"ndr version":          mod(func(b []byte) { b[kviOff] = 2 }),
		"object length huge":   mod(put32(kviOff+8, 0xfffffff0)),
		"null top pointer":     mod(put32(kviOff+16, 0)),
		"group count absurd":   mod(put32(structAt+kviGroupCount, 0x7fffffff)),
		"group count mismatch": mod(put32(structAt+kviGroupCount, 2)),
		"null domain SID":      mod(put32(structAt+kviLogonDomainID, 0)),
		"sid count absurd":     mod(put32(structAt+kviSIDCount, 0x40000000)),
		"res count, no SID":    mod(put32(structAt+kviResourceGroupCount, 1)),
		"name length absurd":   mod(func(b []byte) { binary.LittleEndian.PutUint16(b[structAt+kviEffectiveName:], 0xfffe) }),
		"client name odd":      mod(func(b []byte) { b[int(binary.LittleEndian.Uint64(good[entry(typeClientInfo)+8:]))+8] = 9 }),
		"upn offset past end":  mod(func(b []byte) { binary.LittleEndian.PutUint16(b[upnOff+2:], 0xfff0) }),
		"upn sid bad":          mod(func(b []byte) { binary.LittleEndian.PutUint16(b[upnOff+16:], 7) }),
	}
	sigOff := int(binary.LittleEndian.Uint64(good[entry(typeServerSig)+8:]))
	cases["unknown sig type"] = mod(put32(sigOff, 12345))
	cases["sig buffer short"] = mod(put32(entry(typeServerSig)+4, 8))
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", p, err)
			}
		})
	}
}

func TestDedupe(t *testing.T) {
	srv := mustKey(t, kcrypto.AES256SHA1, 1)
	o := testOptions(0)
	o.GroupRIDs = []uint32{513, 1100, 513}
	o.ExtraSIDs = []string{testDomainSID + "-1100", "S-1-18-1", "S-1-18-1"}
	o.ResourceDomainSID = testDomainSID
	o.ResourceRIDs = []uint32{513, 1300}
	p, err := Parse(mustBuild(t, o, srv, srv))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{testDomainSID + "-513", testDomainSID + "-1100", "S-1-18-1", testDomainSID + "-1300"}
	if !eqStrings(p.GroupSIDs, want) {
		t.Fatalf("GroupSIDs = %q, want %q", p.GroupSIDs, want)
	}
	// The map-based path for large sets gives the same answer.
	o.GroupRIDs = append(groupRIDs(100), 513, 1150)
	p, err = Parse(mustBuild(t, o, srv, srv))
	if err != nil {
		t.Fatal(err)
	}
	var naive []string
	for _, r := range o.GroupRIDs {
		naive = append(naive, fmt.Sprintf("%s-%d", testDomainSID, r))
	}
	naive = append(naive, o.ExtraSIDs...)
	for _, r := range o.ResourceRIDs {
		naive = append(naive, fmt.Sprintf("%s-%d", testDomainSID, r))
	}
	if want := dedupe(naive); !eqStrings(p.GroupSIDs, want) || len(want) != 103 {
		t.Fatalf("large dedupe: %d groups %q\nwant %d %q", len(p.GroupSIDs), p.GroupSIDs, len(want), want)
	}
}

func TestSIDString(t *testing.T) {
	for _, c := range []struct {
		bin  []byte
		want string
	}{
		{[]byte{1, 0, 0, 0, 0, 0, 0, 1}, "S-1-1"},
		{[]byte{1, 1, 0, 0, 0, 0, 0, 18, 1, 0, 0, 0}, "S-1-18-1"},
		{[]byte{1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0}, "S-1-5-32-544"},
		{[]byte{1, 1, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xff, 0xff, 0xff, 0xff}, "S-1-0x123456789ABC-4294967295"},
	} {
		got := string(appendSID(nil, c.bin, 0))
		if got != c.want {
			t.Errorf("got %q want %q", got, c.want)
		}
		if len(got) > sidStrLen(c.bin, 0) {
			t.Errorf("%q longer than the bound %d", got, sidStrLen(c.bin, 0))
		}
		if c.bin[2] == 0 && c.bin[3] == 0 {
			if b, ok := krbtest.SIDBytes(c.want); !ok || !bytes.Equal(b, c.bin) {
				t.Errorf("krbtest.SIDBytes(%q) = %x %v", c.want, b, ok)
			}
		}
	}
}

func TestUTF16(t *testing.T) {
	for _, s := range []string{"", "plain", "Zoë Ünïcödé", "日本語", "𝄞 clef", "a\u0000b"} {
		o := testOptions(1)
		o.FullName = s
		srv := mustKey(t, kcrypto.AES256SHA1, 1)
		p, err := Parse(mustBuild(t, o, srv, srv))
		if err != nil {
			t.Fatal(err)
		}
		if p.FullName != s {
			t.Errorf("FullName = %q, want %q", p.FullName, s)
		}
	}
	// Unpaired surrogates decode to U+FFFD.
	var sb strings.Builder
	writeUTF16(&sb, []byte{0x00, 0xd8, 0x41, 0x00, 0x00, 0xdc})
	if got := sb.String(); got != "\uFFFDA\uFFFD" {
		t.Errorf("unpaired surrogates: %q", got)
	}
}

func TestClientInfoTimeAndPresence(t *testing.T) {
	srv, kdc := mustKey(t, kcrypto.AES256SHA1, 1), mustKey(t, kcrypto.AES256SHA1, 2)
	at := time.Date(2026, 12, 2, 5, 30, 7, 0, time.UTC)
	o := krbtest.PACOptions{UserName: "alice", DomainSID: "S-1-5-21-1-2-3", UserRID: 1104, AuthTime: at}
	b, err := krbtest.PAC(o, srv, kdc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasClientInfo || !p.ClientInfoTime.Equal(at) || p.ClientName != "alice" {
		t.Errorf("client info %v %v %q, want %v", p.HasClientInfo, p.ClientInfoTime, p.ClientName, at)
	}
	o.OmitClientInfo = true
	if b, err = krbtest.PAC(o, srv, kdc); err != nil {
		t.Fatal(err)
	}
	if p, err = Parse(b); err != nil || p.HasClientInfo || !p.ClientInfoTime.IsZero() {
		t.Errorf("without PAC_CLIENT_INFO: %v %v %v", err, p.HasClientInfo, p.ClientInfoTime)
	}
}
