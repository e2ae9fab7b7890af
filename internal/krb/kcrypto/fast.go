package kcrypto

// This file holds what a client needs besides message encryption: keyed checksums
// (get_mic), keys from passwords (string-to-key), and the pseudo-random function and
// KRB-FX-CF2 of RFC 6113, which FAST armouring derives its keys with. Only the AES
// enctypes with HMAC-SHA1 (RFC 3962, what Active Directory issues) are supported:
// they are the only ones kerbgate sends a password key in.

import (
	"crypto/aes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc3961"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc3962"
)

// Key usages of a client's AS exchange and of FAST (RFC 4120 §7.5.1, RFC 6113 §5.4).
const (
	UsagePAEncTimestamp     uint32 = 1
	UsageASRepEncPart       uint32 = 3
	UsageFASTReqChecksum    uint32 = 50
	UsageFASTEnc            uint32 = 51
	UsageFASTRep            uint32 = 52
	UsageFASTFinished       uint32 = 53
	UsageEncChallengeClient uint32 = 54
	UsageEncChallengeKDC    uint32 = 55
)

// MaxPasswordIterations bounds the PBKDF2 iterations a KDC may ask for
// (PA-ETYPE-INFO2 s2kparams): Active Directory asks 4096; a larger count from the
// network would make each sign-in a CPU sink.
const MaxPasswordIterations = 100000

// Checksum returns the keyed checksum (RFC 3961 get_mic) of data for usage:
// HMAC-SHA1-96 with the usage's checksum key for the AES enctypes.
func (k *Key) Checksum(usage uint32, data []byte) ([]byte, error) {
	if k.gok != nil {
		return k.gok.GetChecksumHash(k.value, data, usage)
	}
	uk, err := k.usage(usage)
	if err != nil {
		return nil, err
	}
	var full [sha1.Size]byte
	hmacSHA1(&full, uk.kc[:uk.n], data)
	return append([]byte(nil), full[:sha1MACSize]...), nil
}

// ChecksumType is the checksum type of Checksum for this key's enctype: 15
// (hmac-sha1-96-aes128) or 16 (hmac-sha1-96-aes256).
func (k *Key) ChecksumType() int32 {
	switch k.etype {
	case AES128SHA1:
		return 15
	case AES256SHA1:
		return 16
	}
	if k.gok != nil {
		return k.gok.GetHashID()
	}
	return 0
}

// FromPassword derives a user's long-term key of an AES enctype from the password,
// the salt and the s2kparams the KDC announced (PA-ETYPE-INFO2; nil: the default
// 4096 iterations), as RFC 3962 §4 defines string-to-key.
func FromPassword(etype int32, password, salt string, s2kparams []byte) (*Key, error) {
	if etype != AES128SHA1 && etype != AES256SHA1 {
		return nil, fmt.Errorf("%w %d for a password key (AES with SHA-1 only)", ErrUnsupported, etype)
	}
	iter := int64(4096)
	if len(s2kparams) == 4 {
		iter = int64(binary.BigEndian.Uint32(s2kparams))
		if iter == 0 {
			iter = 1 << 32 // RFC 3962: zero means 2^32
		}
	} else if len(s2kparams) != 0 {
		return nil, fmt.Errorf("kerberos: s2kparams of %d bytes, expected 4", len(s2kparams))
	}
	if iter > MaxPasswordIterations {
		return nil, fmt.Errorf("kerberos: the KDC asks %d PBKDF2 iterations, more than %d", iter, MaxPasswordIterations)
	}
	e, err := crypto.GetEtype(etype)
	if err != nil {
		return nil, err
	}
	v, err := rfc3962.StringToKeyIter(password, salt, iter, e)
	if err != nil {
		return nil, err
	}
	return NewKey(etype, v)
}

// PRF is the pseudo-random function of the AES enctypes (RFC 3962 §6): the first
// block of SHA-1(input), encrypted with the key derived for the constant "prf".
// Its output is one AES block.
func (k *Key) PRF(input []byte) ([]byte, error) {
	if k.etype != AES128SHA1 && k.etype != AES256SHA1 {
		return nil, fmt.Errorf("%w %d for PRF", ErrUnsupported, k.etype)
	}
	e, err := crypto.GetEtype(k.etype)
	if err != nil {
		return nil, err
	}
	dk, err := rfc3961.DeriveKey(k.value, []byte("prf"), e)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(input)
	out := make([]byte, aesBlock)
	b.Encrypt(out, h[:aesBlock]) // one block: CBC with a zero IV is one block cipher call
	return out, nil
}

// prfPlus is PRF+ of RFC 6113 §5.1: PRF(key, 1 || info) || PRF(key, 2 || info) ||
// ..., cut to n bytes.
func (k *Key) prfPlus(info string, n int) ([]byte, error) {
	var out []byte
	for i := byte(1); len(out) < n; i++ {
		p, err := k.PRF(append([]byte{i}, info...))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out[:n], nil
}

// CF2 is KRB-FX-CF2 of RFC 6113 §5.1: a key of k1's enctype from
// PRF+(k1, pepper1) XOR PRF+(k2, pepper2). FAST combines keys with it: the armor key
// from the armor subkey and ticket session key, the challenge keys from the armor key
// and the user's long-term key, and the strengthened reply key.
func CF2(k1, k2 *Key, pepper1, pepper2 string) (*Key, error) {
	n := keySize(k1.etype)
	a, err := k1.prfPlus(pepper1, n)
	if err != nil {
		return nil, err
	}
	b, err := k2.prfPlus(pepper2, n)
	if err != nil {
		return nil, err
	}
	for i := range a {
		a[i] ^= b[i]
	}
	return NewKey(k1.etype, a) // random-to-key is the identity for AES
}
