package pac

import (
	"errors"
	"fmt"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// checksumTypeFor is the PAC signature checksum type that a key of the given
// enctype produces (MS-PAC §2.8), 0 if none.
func checksumTypeFor(etype int32) int32 {
	switch etype {
	case kcrypto.AES128SHA1:
		return cksumSHA1AES128
	case kcrypto.AES256SHA1:
		return cksumSHA1AES256
	case kcrypto.RC4HMAC:
		return cksumHMACMD5
	case kcrypto.AES128SHA256:
		return cksumSHA256AES128
	case kcrypto.AES256SHA384:
		return cksumSHA384AES256
	}
	return 0
}

// usagePACSignature is KERB_NON_KERB_CKSUM_SALT (MS-KILE §3.1.5.9).
const usagePACSignature = kcrypto.UsagePACServerSignat

var zeros [maxSignatureLen]byte

// VerifyServerSignature checks the server signature (MS-PAC §2.8.1) with the
// service's long-term key, the key that decrypted the ticket: a keyed checksum,
// key usage 17 (KERB_NON_KERB_CKSUM_SALT), over the whole PAC with the Signature
// fields of the server and KDC signatures zeroed. The signature's checksum type
// must be the one of the key's enctype. It returns ErrNoServerSignature when the
// PAC has none and an error wrapping ErrSignature when it does not verify.
func (p *PAC) VerifyServerSignature(key *kcrypto.Key) error {
	s := p.ServerSignature
	if s.Value == nil {
		return ErrNoServerSignature
	}
	if key == nil {
		return errors.New("pac: no key to verify the server signature")
	}
	if want := checksumTypeFor(key.EType()); want != s.Type {
		return fmt.Errorf("%w: checksum type %d does not match key enctype %d", ErrSignature, s.Type, key.EType())
	}
	// The PAC with both Signature fields zeroed, as slices of the original.
	a, b := s, p.KDCSignature
	if b.Value != nil && b.offset < a.offset {
		a, b = b, a
	}
	raw := p.raw
	var parts [5][]byte
	parts[0] = raw[:a.offset]
	parts[1] = zeros[:len(a.Value)]
	n := 2
	rest := a.offset + len(a.Value)
	if b.Value != nil {
		parts[2] = raw[rest:b.offset]
		parts[3] = zeros[:len(b.Value)]
		n = 4
		rest = b.offset + len(b.Value)
	}
	parts[n] = raw[rest:]
	if !key.VerifyChecksum(usagePACSignature, s.Value, parts[:n+1]...) {
		return ErrSignature
	}
	return nil
}
