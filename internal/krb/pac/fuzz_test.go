package pac

import (
	"errors"
	"testing"

	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

func FuzzParse(f *testing.F) {
	srv := mustKey(f, kcrypto.AES256SHA1, 1)
	rc4 := mustKey(f, kcrypto.RC4HMAC, 1)
	for _, n := range []int{0, 1, 30} {
		o := testOptions(n)
		f.Add(mustBuild(f, o, srv, rc4))
		o.ExtraSIDs = []string{"S-1-18-1", "S-1-5-21-1-2-3-4444"}
		o.ResourceDomainSID = "S-1-5-21-7-8-9"
		o.ResourceRIDs = []uint32{1200, 1201}
		f.Add(mustBuild(f, o, rc4, srv))
	}
	f.Add(mustHex(f, testdata.MarshaledPAC_AD_WIN2K_PAC))
	f.Add(pacFromAuthzData(f, mustHex(f, testdata.MarshaledPAC_AuthorizationData_MS)))
	for _, h := range []string{testdata.MarshaledPAC_Kerb_Validation_Info_Trust, testdata.MarshaledPAC_Kerb_Validation_Info_MS} {
		f.Add(wrapPAC(typeLogonInfo, mustHex(f, h), typeClientInfo, mustHex(f, testdata.MarshaledPAC_Client_Info),
			typeUPNDNSInfo, mustHex(f, testdata.MarshaledPAC_UPN_DNS_Info)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || p != nil {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if p.UserSID == "" || p.LogonDomainSID == "" {
			t.Fatalf("parsed PAC without SIDs: %+v", p)
		}
		for _, k := range []*kcrypto.Key{srv, rc4} {
			if err := p.VerifyServerSignature(k); err != nil && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrNoServerSignature) {
				t.Fatalf("VerifyServerSignature: %v", err)
			}
		}
	})
}
