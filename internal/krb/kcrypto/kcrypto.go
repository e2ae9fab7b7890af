// Package kcrypto encrypts, decrypts and checksums Kerberos messages with a key that
// is prepared once: the derived keys (RFC 3961 §5.3) for each key usage are computed
// the first time they are needed and kept with the key.
//
// It owns the per-message cryptography of the acceptor. AES-CTS-HMAC-SHA1-96
// (RFC 3962, etypes 17 and 18, what Active Directory issues) is implemented here; the
// other enctypes (RC4-HMAC, AES-SHA2 of RFC 8009) are delegated to gokrb5 after the
// length checks gokrb5 lacks. It must not parse messages, look up keytabs or decide
// which enctypes are allowed.
package kcrypto

import (
	crand "crypto/rand"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/crypto/rfc3961"
)

// Enctype numbers (RFC 3961, RFC 3962, RFC 4757, RFC 8009).
const (
	AES128SHA1   int32 = 17
	AES256SHA1   int32 = 18
	AES128SHA256 int32 = 19
	AES256SHA384 int32 = 20
	RC4HMAC      int32 = 23
)

// Key usages used by an acceptor (RFC 4120 §7.5.1, MS-PAC).
const (
	UsageTicket          uint32 = 2
	UsageAPReqAuth       uint32 = 11
	UsageAPRepEncPart    uint32 = 12
	UsagePACServerSignat uint32 = 17
)

// ErrIntegrity means the ciphertext did not authenticate under this key: a wrong key,
// a stale keytab, or tampering.
var ErrIntegrity = errors.New("kerberos: integrity check failed (wrong key or corrupted data)")

// ErrUnsupported means the enctype is not one this package knows.
var ErrUnsupported = errors.New("kerberos: unsupported enctype")

const (
	aesBlock    = 16
	sha1MACSize = 12
)

// Key is a base key with its derived keys cached per usage. It is safe for
// concurrent use.
type Key struct {
	etype int32
	value []byte
	gok   etype.EType // for enctypes not implemented here

	mu      sync.RWMutex
	derived map[uint32]*usageKeys
}

type usageKeys struct {
	ke cipher.Block
	ki []byte // HMAC key for integrity
	kc []byte // HMAC key for checksums
}

// NewKey prepares a key of the given enctype.
func NewKey(etypeID int32, value []byte) (*Key, error) {
	k := &Key{etype: etypeID, value: append([]byte(nil), value...)}
	switch etypeID {
	case AES128SHA1, AES256SHA1:
		if want := keySize(etypeID); len(value) != want {
			return nil, fmt.Errorf("kerberos: enctype %d key is %d bytes, expected %d", etypeID, len(value), want)
		}
	default:
		e, err := crypto.GetEtype(etypeID)
		if err != nil {
			return nil, fmt.Errorf("%w %d", ErrUnsupported, etypeID)
		}
		want := e.GetKeyByteSize()
		if etypeID == AES256SHA384 {
			want = 32 // gokrb5 v8.4.4 reports 24 for this enctype; RFC 8009 keys are 32 bytes
		}
		if len(value) != want {
			return nil, fmt.Errorf("kerberos: enctype %d key is %d bytes, expected %d", etypeID, len(value), want)
		}
		k.gok = e
	}
	return k, nil
}

// EType returns the key's enctype.
func (k *Key) EType() int32 { return k.etype }

// Value returns the raw key bytes (callers must not modify them).
func (k *Key) Value() []byte { return k.value }

func keySize(etypeID int32) int {
	if etypeID == AES128SHA1 {
		return 16
	}
	return 32
}

// nfoldCache holds n-fold(usage || marker) to one AES block, which depends only on
// the usage number: computed once per process.
var nfoldCache sync.Map // [5]byte -> []byte

func nfolded(usage uint32, marker byte) []byte {
	c := [5]byte{byte(usage >> 24), byte(usage >> 16), byte(usage >> 8), byte(usage), marker}
	if v, ok := nfoldCache.Load(c); ok {
		return v.([]byte)
	}
	v := rfc3961.Nfold(c[:], aesBlock*8)
	nfoldCache.Store(c, v)
	return v
}

// deriveAES is DK(base, constant) for AES (RFC 3961 §5.1 DR with random-to-key the
// identity): K1 = E(base, n-fold(constant)), K2 = E(base, K1), ... truncated.
func deriveAES(base cipher.Block, size int, usage uint32, marker byte) []byte {
	out := make([]byte, 0, 32)
	blk := nfolded(usage, marker)
	var cur [aesBlock]byte
	copy(cur[:], blk)
	for len(out) < size {
		base.Encrypt(cur[:], cur[:])
		out = append(out, cur[:]...)
	}
	return out[:size]
}

func (k *Key) usage(u uint32) (*usageKeys, error) {
	k.mu.RLock()
	uk := k.derived[u]
	k.mu.RUnlock()
	if uk != nil {
		return uk, nil
	}
	uk, err := k.deriveUsage(u)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.derived == nil {
		k.derived = make(map[uint32]*usageKeys, 4)
	}
	k.derived[u] = uk
	k.mu.Unlock()
	return uk, nil
}

func (k *Key) deriveUsage(u uint32) (*usageKeys, error) {
	base, err := aes.NewCipher(k.value)
	if err != nil {
		return nil, err
	}
	ke, err := aes.NewCipher(deriveAES(base, len(k.value), u, 0xAA))
	if err != nil {
		return nil, err
	}
	return &usageKeys{
		ke: ke,
		ki: deriveAES(base, len(k.value), u, 0x55),
		kc: deriveAES(base, len(k.value), u, 0x99),
	}, nil
}

// Decrypt decrypts and authenticates ciphertext for the given key usage, returning
// the plaintext without its confounder. The result is a fresh slice.
func (k *Key) Decrypt(usage uint32, ct []byte) ([]byte, error) {
	if k.gok != nil {
		return k.decryptOther(usage, ct)
	}
	// confounder (one block) + at least zero plaintext bytes + HMAC
	if len(ct) < aesBlock+sha1MACSize {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is too short", ErrIntegrity, len(ct))
	}
	uk, err := k.usage(usage)
	if err != nil {
		return nil, err
	}
	body, mac := ct[:len(ct)-sha1MACSize], ct[len(ct)-sha1MACSize:]
	pt := make([]byte, len(body))
	ctsDecrypt(uk.ke, pt, body)
	if !hmacSHA1Equal(uk.ki, pt, mac) {
		return nil, ErrIntegrity
	}
	return pt[aesBlock:], nil
}

func (k *Key) decryptOther(usage uint32, ct []byte) ([]byte, error) {
	// gokrb5 slices without checking lengths; refuse anything shorter than a
	// confounder plus a MAC before handing it over.
	min := k.gok.GetConfounderByteSize() + k.gok.GetHMACBitLength()/8
	if len(ct) < min || (k.etype != RC4HMAC && len(ct) < min+1) {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is too short", ErrIntegrity, len(ct))
	}
	pt, err := k.gok.DecryptMessage(k.value, ct, usage)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIntegrity, err)
	}
	return pt, nil
}

// Encrypt encrypts plaintext for the given key usage with a fresh confounder read
// from rand.
func (k *Key) Encrypt(usage uint32, pt []byte, rand io.Reader) ([]byte, error) {
	if k.gok != nil {
		_, ct, err := k.gok.EncryptMessage(k.value, pt, usage)
		return ct, err
	}
	uk, err := k.usage(usage)
	if err != nil {
		return nil, err
	}
	if rand == nil {
		rand = crand.Reader
	}
	plain := make([]byte, aesBlock+len(pt))
	if _, err := io.ReadFull(rand, plain[:aesBlock]); err != nil {
		return nil, err
	}
	copy(plain[aesBlock:], pt)
	out := make([]byte, len(plain), len(plain)+sha1MACSize)
	ctsEncrypt(uk.ke, out, plain)
	m := hmac.New(sha1.New, uk.ki)
	m.Write(plain)
	return m.Sum(out)[:len(plain)+sha1MACSize], nil
}

// VerifyChecksum checks a keyed checksum (RFC 3961 get_mic) over the data, which is
// given in parts so callers can skip fields without copying. Comparison is constant
// time.
func (k *Key) VerifyChecksum(usage uint32, sum []byte, parts ...[]byte) bool {
	if k.gok != nil {
		var data []byte
		for _, p := range parts {
			data = append(data, p...)
		}
		return k.gok.VerifyChecksum(k.value, data, sum, usage)
	}
	uk, err := k.usage(usage)
	if err != nil {
		return false
	}
	m := hmac.New(sha1.New, uk.kc)
	for _, p := range parts {
		m.Write(p)
	}
	var buf [sha1.Size]byte
	full := m.Sum(buf[:0])
	return len(sum) == sha1MACSize && subtle.ConstantTimeCompare(full[:sha1MACSize], sum) == 1
}

func hmacSHA1Equal(key, data, mac []byte) bool {
	var m hash.Hash = hmac.New(sha1.New, key)
	m.Write(data)
	var buf [sha1.Size]byte
	return subtle.ConstantTimeCompare(m.Sum(buf[:0])[:sha1MACSize], mac) == 1
}

// ctsDecrypt is AES-CBC with ciphertext stealing as Kerberos uses it (RFC 3962 §5:
// the last two blocks are always swapped), IV zero. len(src) >= 16.
func ctsDecrypt(b cipher.Block, dst, src []byte) {
	n := len(src)
	if n == aesBlock {
		b.Decrypt(dst, src)
		return
	}
	nBlocks := (n + aesBlock - 1) / aesBlock
	lastLen := n - (nBlocks-1)*aesBlock
	head := (nBlocks - 2) * aesBlock
	var iv [aesBlock]byte
	if head > 0 {
		cipher.NewCBCDecrypter(b, iv[:]).CryptBlocks(dst[:head], src[:head])
		copy(iv[:], src[head-aesBlock:head])
	}
	// src[head:head+16] is the CBC encryption of the final (zero padded) block;
	// src[head+16:] is the first lastLen bytes of the block before it.
	var x, prev [aesBlock]byte
	b.Decrypt(x[:], src[head:head+aesBlock])
	tail := src[head+aesBlock:]
	copy(prev[:], tail)
	copy(prev[lastLen:], x[lastLen:])
	for i := 0; i < lastLen; i++ {
		dst[head+aesBlock+i] = x[i] ^ tail[i]
	}
	b.Decrypt(x[:], prev[:])
	for i := 0; i < aesBlock; i++ {
		dst[head+i] = x[i] ^ iv[i]
	}
}

// ctsEncrypt is the inverse of ctsDecrypt. len(src) >= 16.
func ctsEncrypt(b cipher.Block, dst, src []byte) {
	n := len(src)
	if n == aesBlock {
		b.Encrypt(dst, src)
		return
	}
	nBlocks := (n + aesBlock - 1) / aesBlock
	lastLen := n - (nBlocks-1)*aesBlock
	head := (nBlocks - 2) * aesBlock
	var iv [aesBlock]byte
	if head > 0 {
		cipher.NewCBCEncrypter(b, iv[:]).CryptBlocks(dst[:head], src[:head])
		copy(iv[:], dst[head-aesBlock:head])
	}
	var cPrev, last [aesBlock]byte
	for i := 0; i < aesBlock; i++ {
		cPrev[i] = src[head+i] ^ iv[i]
	}
	b.Encrypt(cPrev[:], cPrev[:])
	copy(last[:], src[head+aesBlock:])
	for i := range last {
		last[i] ^= cPrev[i]
	}
	b.Encrypt(dst[head:head+aesBlock], last[:])
	copy(dst[head+aesBlock:], cPrev[:lastLen])
}
