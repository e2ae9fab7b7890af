package pac

import (
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
	gpac "github.com/jcmturner/gokrb5/v8/pac"
	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// gokrb5's test vectors (github.com/jcmturner/gokrb5/v8/test/testdata): captured
// from Active Directory and from gokrb5's own test KDC.

// testKeytabKey is the sysHTTP AES256 key that signed MarshaledPAC_AD_WIN2K_PAC.
func testKeytabKey(t testing.TB) types.EncryptionKey {
	t.Helper()
	kt := keytab.New()
	if err := kt.Unmarshal(mustHex(t, testdata.KEYTAB_SYSHTTP_TEST_GOKRB5)); err != nil {
		t.Fatal(err)
	}
	pn, _ := types.ParseSPNString("sysHTTP")
	key, _, err := kt.GetEncryptionKey(pn, "TEST.GOKRB5", 2, 18)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// gokrb5Decode runs gokrb5's decoder; a signature failure is ignored when the
// vector's key is unknown (the buffers are decoded before the check).
func gokrb5Decode(t testing.TB, b []byte, key types.EncryptionKey, mustVerify bool) *gpac.PACType {
	t.Helper()
	var g gpac.PACType
	if err := g.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	err := g.ProcessPACInfoBuffers(key, log.New(io.Discard, "", 0))
	if mustVerify && err != nil {
		t.Fatalf("gokrb5: %v", err)
	}
	if g.KerbValidationInfo == nil {
		t.Fatalf("gokrb5 decoded no KerbValidationInfo: %v", err)
	}
	return &g
}

func compareKVI(t *testing.T, p *PAC, k *gpac.KerbValidationInfo) {
	t.Helper()
	dom := k.LogonDomainID.String()
	eq := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, gokrb5 says %v", name, got, want)
		}
	}
	eq("UserSID", p.UserSID, dom+"-"+strconv.FormatUint(uint64(k.UserID), 10))
	eq("PrimaryGroupSID", p.PrimaryGroupSID, dom+"-"+strconv.FormatUint(uint64(k.PrimaryGroupID), 10))
	eq("LogonDomainSID", p.LogonDomainSID, dom)
	eq("EffectiveName", p.EffectiveName, k.EffectiveName.Value)
	eq("FullName", p.FullName, k.FullName.Value)
	eq("LogonServer", p.LogonServer, k.LogonServer.Value)
	eq("LogonDomainName", p.LogonDomainName, k.LogonDomainName.Value)
	eq("UserAccountControl", p.UserAccountControl, k.UserAccountControl)
	eq("UserFlags", p.UserFlags, k.UserFlags)
	want := dedupe(k.GetGroupMembershipSIDs())
	if !eqStrings(p.GroupSIDs, want) {
		t.Errorf("GroupSIDs = %q\ngokrb5 says %q", p.GroupSIDs, want)
	}
}

func TestGokrb5FullPACVectors(t *testing.T) {
	key := testKeytabKey(t)
	vectors := map[string][]byte{
		"AD_WIN2K_PAC":             mustHex(t, testdata.MarshaledPAC_AD_WIN2K_PAC),
		"AuthorizationData_GOKRB5": pacFromAuthzData(t, mustHex(t, testdata.MarshaledPAC_AuthorizationData_GOKRB5)),
		"AuthorizationData_MS":     pacFromAuthzData(t, mustHex(t, testdata.MarshaledPAC_AuthorizationData_MS)),
	}
	for name, b := range vectors {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			g := gokrb5Decode(t, b, key, false)
			compareKVI(t, p, g.KerbValidationInfo)
			if g.ClientInfo != nil && p.ClientName != g.ClientInfo.Name {
				t.Errorf("ClientName = %q, gokrb5 says %q", p.ClientName, g.ClientInfo.Name)
			}
			if (g.UPNDNSInfo != nil) != p.HasUPNDNSInfo {
				t.Errorf("HasUPNDNSInfo = %v", p.HasUPNDNSInfo)
			} else if g.UPNDNSInfo != nil && (p.UPN != g.UPNDNSInfo.UPN || p.DNSDomainName != g.UPNDNSInfo.DNSDomain) {
				t.Errorf("UPN %q DNS %q, gokrb5 says %q %q", p.UPN, p.DNSDomainName, g.UPNDNSInfo.UPN, g.UPNDNSInfo.DNSDomain)
			}
			if int32(g.ServerChecksum.SignatureType) != p.ServerSignature.Type || string(g.ServerChecksum.Signature) != string(p.ServerSignature.Value) {
				t.Errorf("server signature %d %x, gokrb5 says %d %x", p.ServerSignature.Type, p.ServerSignature.Value, g.ServerChecksum.SignatureType, g.ServerChecksum.Signature)
			}
			if int32(g.KDCChecksum.SignatureType) != p.KDCSignature.Type || string(g.KDCChecksum.Signature) != string(p.KDCSignature.Value) {
				t.Errorf("KDC signature %d %x, gokrb5 says %d %x", p.KDCSignature.Type, p.KDCSignature.Value, g.KDCChecksum.SignatureType, g.KDCChecksum.Signature)
			}
		})
	}
}

// The gokrb5 KDC's PAC is signed with the sysHTTP key of the keytab vector.
func TestGokrb5SignedVector(t *testing.T) {
	gk := testKeytabKey(t)
	key, err := kcrypto.NewKey(gk.KeyType, gk.KeyValue)
	if err != nil {
		t.Fatal(err)
	}
	b := mustHex(t, testdata.MarshaledPAC_AD_WIN2K_PAC)
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyServerSignature(key); err != nil {
		t.Fatalf("VerifyServerSignature: %v", err)
	}
	if p.UserSID != "S-1-5-21-3167651404-3865080224-2280184895-1105" || p.ClientName != "testuser1" ||
		p.UPN != "testuser1@test.gokrb5" || p.DNSDomainName != "TEST.GOKRB5" || p.SAMAccountName != "testuser1" {
		t.Errorf("unexpected identity %+v", p)
	}
	b[len(b)-40] ^= 1 // inside the UPN_DNS_INFO padding/content, covered by the signature
	if p, err = Parse(b); err == nil {
		if err := p.VerifyServerSignature(key); !errors.Is(err, ErrSignature) {
			t.Fatalf("tampered vector: %v", err)
		}
	}
}

func TestGokrb5LogonInfoVectors(t *testing.T) {
	for name, h := range map[string]string{
		"Kerb_Validation_Info_MS":    testdata.MarshaledPAC_Kerb_Validation_Info_MS,
		"Kerb_Validation_Info":       testdata.MarshaledPAC_Kerb_Validation_Info,
		"Kerb_Validation_Info_Trust": testdata.MarshaledPAC_Kerb_Validation_Info_Trust,
	} {
		t.Run(name, func(t *testing.T) {
			kvi := mustHex(t, h)
			p, err := Parse(wrapPAC(typeLogonInfo, kvi))
			if err != nil {
				t.Fatal(err)
			}
			var k gpac.KerbValidationInfo
			if err := k.Unmarshal(kvi); err != nil {
				t.Fatal(err)
			}
			compareKVI(t, p, &k)
			if p.SAMAccountName != p.EffectiveName {
				t.Errorf("SAMAccountName %q without UPN_DNS_INFO should be EffectiveName %q", p.SAMAccountName, p.EffectiveName)
			}
		})
	}
	// The trust vector has an extra SID and resource groups.
	p, err := Parse(wrapPAC(typeLogonInfo, mustHex(t, testdata.MarshaledPAC_Kerb_Validation_Info_Trust)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"S-1-5-21-2284869408-3503417140-1141177250-1110",
		"S-1-5-21-2284869408-3503417140-1141177250-513",
		"S-1-5-21-2284869408-3503417140-1141177250-1109",
		"S-1-18-1",
		"S-1-5-21-3062750306-1230139592-1973306805-1107",
		"S-1-5-21-3062750306-1230139592-1973306805-1108",
	}
	if !eqStrings(p.GroupSIDs, want) {
		t.Errorf("trust GroupSIDs = %q", p.GroupSIDs)
	}
}

func TestGokrb5ClientInfoAndUPNVectors(t *testing.T) {
	kvi := mustHex(t, testdata.MarshaledPAC_Kerb_Validation_Info)
	ci := mustHex(t, testdata.MarshaledPAC_Client_Info)
	upn := mustHex(t, testdata.MarshaledPAC_UPN_DNS_Info)
	p, err := Parse(wrapPAC(typeLogonInfo, kvi, typeClientInfo, ci, typeUPNDNSInfo, upn))
	if err != nil {
		t.Fatal(err)
	}
	var gci gpac.ClientInfo
	if err := gci.Unmarshal(ci); err != nil {
		t.Fatal(err)
	}
	var gu gpac.UPNDNSInfo
	if err := gu.Unmarshal(upn); err != nil {
		t.Fatal(err)
	}
	if p.ClientName != gci.Name || p.UPN != gu.UPN || p.DNSDomainName != gu.DNSDomain {
		t.Errorf("got %q %q %q, gokrb5 says %q %q %q", p.ClientName, p.UPN, p.DNSDomainName, gci.Name, gu.UPN, gu.DNSDomain)
	}
}

// gokrb5 decodes and verifies what krbtest.PAC makes, and agrees with Parse.
func TestGokrb5DecodesBuild(t *testing.T) {
	type cfg struct {
		et      int32
		groups  int
		extra   []string
		resDom  string
		resRIDs []uint32
	}
	for _, c := range []cfg{
		{kcrypto.AES256SHA1, 0, nil, "", nil},
		{kcrypto.AES256SHA1, 30, nil, "", nil},
		{kcrypto.AES128SHA1, 300, []string{"S-1-18-1", "S-1-5-21-1-2-3-4444"}, "S-1-5-21-7-8-9", []uint32{1200, 1201}},
		{kcrypto.RC4HMAC, 7, []string{"S-1-5-32-544"}, "S-1-5-21-7-8-9", nil},
	} {
		t.Run(fmt.Sprintf("%d-%d-%d", c.et, c.groups, len(c.extra)), func(t *testing.T) {
			srv, kdc := mustKey(t, c.et, 3), mustKey(t, kcrypto.RC4HMAC, 4)
			o := testOptions(c.groups)
			o.ExtraSIDs, o.ResourceDomainSID, o.ResourceRIDs = c.extra, c.resDom, c.resRIDs
			b := mustBuild(t, o, srv, kdc)
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			g := gokrb5Decode(t, b, types.EncryptionKey{KeyType: c.et, KeyValue: srv.Value()}, true)
			compareKVI(t, p, g.KerbValidationInfo)
			if g.ClientInfo.Name != p.ClientName || g.UPNDNSInfo.UPN != p.UPN || g.UPNDNSInfo.DNSDomain != p.DNSDomainName {
				t.Errorf("client/UPN differ: %q %q %q", g.ClientInfo.Name, g.UPNDNSInfo.UPN, g.UPNDNSInfo.DNSDomain)
			}
			if len(p.GroupSIDs) != c.groups+len(c.extra)+len(c.resRIDs) {
				t.Errorf("%d group SIDs", len(p.GroupSIDs))
			}
		})
	}
}
