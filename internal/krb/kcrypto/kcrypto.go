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
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"

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
	buf   [32]byte    // backing store of value for the AES enctypes (one allocation per key)
	gok   etype.EType // for enctypes not implemented here

	// Derived keys of the usages an acceptor uses on every sign-in live in fixed
	// slots (no lock, no map); any other usage goes to the map.
	slots [len(slotUsages)]atomic.Pointer[usageKeys]
	mu    sync.Mutex
	other map[uint32]*usageKeys
	base  atomic.Pointer[cipher.Block]
}

// slotUsages are the key usages with a fixed slot in Key.
var slotUsages = [...]uint32{UsageTicket, UsageAPReqAuth, UsageAPRepEncPart, UsagePACServerSignat}

func slotOf(u uint32) int {
	for i, s := range slotUsages {
		if s == u {
			return i
		}
	}
	return -1
}

type usageKeys struct {
	ke     cipher.Block
	ki, kc [32]byte // HMAC keys for integrity and checksums; first len(value) bytes used
	n      int

	// Derivation buffers, here rather than on the stack because they pass through
	// cipher.Block (which makes them escape).
	scratchKe [32]byte
	block     [aesBlock]byte
}

// NewKey prepares a key of the given enctype.
func NewKey(etypeID int32, value []byte) (*Key, error) {
	k := &Key{etype: etypeID}
	switch etypeID {
	case AES128SHA1, AES256SHA1:
		if want := keySize(etypeID); len(value) != want {
			return nil, fmt.Errorf("kerberos: enctype %d key is %d bytes, expected %d", etypeID, len(value), want)
		}
		k.value = k.buf[:copy(k.buf[:], value)]
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
		k.value = append([]byte(nil), value...)
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
var nfoldCache sync.Map // [5]byte -> *[aesBlock]byte

func nfolded(usage uint32, marker byte) *[aesBlock]byte {
	c := [5]byte{byte(usage >> 24), byte(usage >> 16), byte(usage >> 8), byte(usage), marker}
	if v, ok := nfoldCache.Load(c); ok {
		return v.(*[aesBlock]byte)
	}
	var v [aesBlock]byte
	copy(v[:], rfc3961.Nfold(c[:], aesBlock*8))
	nfoldCache.Store(c, &v)
	return &v
}

// deriveAES is DK(base, constant) for AES (RFC 3961 §5.1 DR with random-to-key the
// identity): K1 = E(base, n-fold(constant)), K2 = E(base, K1), ... truncated to
// len(out).
func deriveAES(base cipher.Block, cur *[aesBlock]byte, out []byte, usage uint32, marker byte) {
	*cur = *nfolded(usage, marker)
	for i := 0; i < len(out); i += aesBlock {
		base.Encrypt(cur[:], cur[:])
		copy(out[i:], cur[:])
	}
}

func (k *Key) usage(u uint32) (*usageKeys, error) {
	i := slotOf(u)
	if i >= 0 {
		if uk := k.slots[i].Load(); uk != nil {
			return uk, nil
		}
	} else {
		k.mu.Lock()
		uk := k.other[u]
		k.mu.Unlock()
		if uk != nil {
			return uk, nil
		}
	}
	uk, err := k.deriveUsage(u)
	if err != nil {
		return nil, err
	}
	if i >= 0 {
		// Two goroutines may derive the same keys at once; either result is right.
		k.slots[i].Store(uk)
		return uk, nil
	}
	k.mu.Lock()
	if k.other == nil {
		k.other = make(map[uint32]*usageKeys, 4)
	}
	k.other[u] = uk
	k.mu.Unlock()
	return uk, nil
}

func (k *Key) deriveUsage(u uint32) (*usageKeys, error) {
	var base cipher.Block
	if p := k.base.Load(); p != nil {
		base = *p
	} else {
		b, err := aes.NewCipher(k.value)
		if err != nil {
			return nil, err
		}
		base = b
		k.base.Store(&base)
	}
	n := len(k.value)
	uk := &usageKeys{n: n}
	deriveAES(base, &uk.block, uk.scratchKe[:n], u, 0xAA)
	deriveAES(base, &uk.block, uk.ki[:n], u, 0x55)
	deriveAES(base, &uk.block, uk.kc[:n], u, 0x99)
	var err error
	if uk.ke, err = aes.NewCipher(uk.scratchKe[:n]); err != nil {
		return nil, err
	}
	uk.scratchKe = [32]byte{} // the cipher holds its own copy
	return uk, nil
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
	var sum [sha1.Size]byte
	hmacSHA1(&sum, uk.ki[:uk.n], pt)
	if subtle.ConstantTimeCompare(sum[:sha1MACSize], mac) != 1 {
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
	var sum [sha1.Size]byte
	hmacSHA1(&sum, uk.ki[:uk.n], plain)
	return append(out, sum[:sha1MACSize]...), nil
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
	var full [sha1.Size]byte
	hmacSHA1(&full, uk.kc[:uk.n], parts...)
	return len(sum) == sha1MACSize && subtle.ConstantTimeCompare(full[:sha1MACSize], sum) == 1
}

// hasher is a reusable SHA-1 state with room for its output; pooled so that an HMAC
// costs no allocation.
type hasher struct {
	h          hash.Hash
	out        [sha1.Size]byte
	ipad, opad [64]byte
}

var hasherPool = sync.Pool{New: func() any { return &hasher{h: sha1.New()} }}

// hmacSHA1 is HMAC-SHA1 (RFC 2104) of the concatenated parts. key is at most one
// SHA-1 block (Kerberos' derived keys are 16 or 32 bytes).
func hmacSHA1(out *[sha1.Size]byte, key []byte, parts ...[]byte) {
	hs := hasherPool.Get().(*hasher)
	ipad, opad := &hs.ipad, &hs.opad
	*ipad, *opad = [64]byte{}, [64]byte{}
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	hs.h.Reset()
	hs.h.Write(ipad[:])
	for _, p := range parts {
		hs.h.Write(p)
	}
	inner := hs.h.Sum(hs.out[:0])
	hs.h.Reset()
	hs.h.Write(opad[:])
	hs.h.Write(inner)
	copy(out[:], hs.h.Sum(hs.out[:0]))
	hasherPool.Put(hs)
}

// scratch holds the block buffers of one encryption or decryption. Buffers handed
// to a cipher.Block method escape to the heap, so they come from a pool instead of
// the stack.
type scratch struct {
	iv, x, prev, cbcPrev, cbcX [aesBlock]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// ctsDecrypt is AES-CBC with ciphertext stealing as Kerberos uses it (RFC 3962 §5:
// the last two blocks are always swapped), IV zero. len(src) >= 16.
func ctsDecrypt(b cipher.Block, dst, src []byte) {
	n := len(src)
	if n == aesBlock {
		b.Decrypt(dst, src)
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	iv, x, prev := &sc.iv, &sc.x, &sc.prev
	*iv = [aesBlock]byte{}
	nBlocks := (n + aesBlock - 1) / aesBlock
	lastLen := n - (nBlocks-1)*aesBlock
	head := (nBlocks - 2) * aesBlock
	if head > 0 {
		cbcDecrypt(b, sc, dst[:head], src[:head])
		copy(iv[:], src[head-aesBlock:head])
	}
	// src[head:head+16] is the CBC encryption of the final (zero padded) block;
	// src[head+16:] is the first lastLen bytes of the block before it.
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
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	iv, cPrev, last := &sc.iv, &sc.x, &sc.prev
	*iv = [aesBlock]byte{}
	nBlocks := (n + aesBlock - 1) / aesBlock
	lastLen := n - (nBlocks-1)*aesBlock
	head := (nBlocks - 2) * aesBlock
	if head > 0 {
		cbcEncrypt(b, sc, dst[:head], src[:head])
		copy(iv[:], dst[head-aesBlock:head])
	}
	*last = [aesBlock]byte{}
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

// cbcDecrypt is AES-CBC decryption with a zero IV over whole blocks. Done by hand
// because cipher.NewCBCDecrypter allocates on every call.
func cbcDecrypt(b cipher.Block, sc *scratch, dst, src []byte) {
	prev, x := &sc.cbcPrev, &sc.cbcX
	*prev = [aesBlock]byte{}
	for i := 0; i < len(src); i += aesBlock {
		b.Decrypt(x[:], src[i:i+aesBlock])
		for j := range x {
			x[j] ^= prev[j]
		}
		copy(prev[:], src[i:i+aesBlock])
		copy(dst[i:], x[:])
	}
}

// cbcEncrypt is AES-CBC encryption with a zero IV over whole blocks.
func cbcEncrypt(b cipher.Block, sc *scratch, dst, src []byte) {
	prev := &sc.cbcPrev
	*prev = [aesBlock]byte{}
	for i := 0; i < len(src); i += aesBlock {
		for j := range prev {
			prev[j] ^= src[i+j]
		}
		b.Encrypt(prev[:], prev[:])
		copy(dst[i:], prev[:])
	}
}
