package spnego

import (
	"fmt"
)

// DER/BER tag bytes used by this package (X.690 §8.1.2).
const (
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagOID         = 0x06
	tagEnumerated  = 0x0a
	tagSequence    = 0x30 // UNIVERSAL 16, constructed
	tagGSSToken    = 0x60 // [APPLICATION 0], constructed (RFC 2743 §3.1)
	tagAPReq       = 0x6e // [APPLICATION 14], constructed (RFC 4120 §5.5.1)

	classContextConstructed = 0xa0 // context-specific class with the constructed bit
	tagNegTokenInit         = classContextConstructed | 0
	tagNegTokenResp         = classContextConstructed | 1
)

// maxLengthBytes is the most length octets a long-form length may use. Four octets
// already describe 4 GiB, far beyond any token that fits in an HTTP header.
const maxLengthBytes = 4

// tlv is one decoded element: its tag byte and the absolute offsets of its header
// and contents within the reader's input.
type tlv struct {
	tag   byte
	start int // offset of the tag byte
	body  int // offset of the first content octet
	end   int // offset just past the last content octet
}

// reader walks a window [pos, end) of an input slice. Offsets are absolute so that
// error messages point at the right byte of the original token.
type reader struct {
	in  []byte
	pos int
	end int
}

func newReader(in []byte) reader { return reader{in: in, end: len(in)} }

// sub returns a reader over the contents of t.
func (r *reader) sub(t tlv) reader { return reader{in: r.in, pos: t.body, end: t.end} }

func (r *reader) empty() bool { return r.pos >= r.end }

// next reads one definite-length element and advances past it. It never reads
// outside the reader's window.
func (r *reader) next() (tlv, error) {
	p := r.pos
	if p >= r.end {
		return tlv{}, malformed("truncated: missing tag at offset %d", p)
	}
	tag := r.in[p]
	if tag&0x1f == 0x1f {
		return tlv{}, malformed("high-tag-number form (0x%02x) at offset %d", tag, p)
	}
	p++
	if p >= r.end {
		return tlv{}, malformed("truncated length at offset %d", p)
	}
	l := r.in[p]
	p++
	var n uint64
	switch {
	case l < 0x80:
		n = uint64(l)
	case l == 0x80:
		return tlv{}, malformed("indefinite length at offset %d", p-1)
	default:
		k := int(l & 0x7f)
		if k > maxLengthBytes {
			return tlv{}, malformed("%d-byte length at offset %d exceeds limit of %d", k, p-1, maxLengthBytes)
		}
		if r.end-p < k {
			return tlv{}, malformed("truncated length at offset %d", p)
		}
		for _, c := range r.in[p : p+k] {
			n = n<<8 | uint64(c)
		}
		p += k
	}
	if n > uint64(r.end-p) {
		return tlv{}, malformed("length %d at offset %d exceeds the %d remaining bytes", n, r.pos, r.end-p)
	}
	t := tlv{tag: tag, start: r.pos, body: p, end: p + int(n)}
	r.pos = t.end
	return t, nil
}

// expect reads one element and checks its tag.
func (r *reader) expect(tag byte, what string) (tlv, error) {
	t, err := r.next()
	if err != nil {
		return t, err
	}
	if t.tag != tag {
		return t, malformed("%s: expected tag 0x%02x, got 0x%02x at offset %d", what, tag, t.tag, t.start)
	}
	return t, nil
}

// only reads exactly one element with the given tag that must fill the whole window.
func (r *reader) only(tag byte, what string) (tlv, error) {
	t, err := r.expect(tag, what)
	if err != nil {
		return t, err
	}
	if !r.empty() {
		return t, malformed("%s: %d bytes of trailing data at offset %d", what, r.end-r.pos, r.pos)
	}
	return t, nil
}

// bytes returns the contents of t as a sub-slice of the input whose capacity ends
// at its length, so appending to it can never overwrite the rest of the input.
func (r *reader) bytes(t tlv) []byte { return r.in[t.body:t.end:t.end] }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// derLen is the number of octets a DER length header needs for n content octets.
func derLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	default:
		return 5
	}
}

// tlvLen is the encoded size of an element with n content octets.
func tlvLen(n int) int { return 1 + derLen(n) + n }

// appendHeader appends a tag and a minimal DER length.
func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch derLen(n) {
	case 1:
		return append(b, byte(n))
	case 2:
		return append(b, 0x81, byte(n))
	case 3:
		return append(b, 0x82, byte(n>>8), byte(n))
	case 4:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
