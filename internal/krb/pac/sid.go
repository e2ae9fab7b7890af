package pac

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxSIDLen bounds the string form of a SID: "S-" revision "-" authority
// (at most 15 digits or 0x + 12 hex digits) and 15 "-" sub-authorities.
const maxSIDLen = 2 + 3 + 1 + 15 + maxSubAuthorities*11

// sidStrLen bounds the string form of the binary SID at b[off:].
func sidStrLen(b []byte, off int) int {
	return 2 + 3 + 1 + 15 + int(b[off+1])*11
}

// appendSID appends the string form (MS-DTYP §2.4.2.1) of the binary SID at
// b[off:], whose length has been checked.
func appendSID(dst, b []byte, off int) []byte {
	cnt := int(b[off+1])
	var auth uint64
	for _, c := range b[off+2 : off+8] {
		auth = auth<<8 | uint64(c)
	}
	dst = append(dst, 'S', '-')
	dst = strconv.AppendUint(dst, uint64(b[off]), 10)
	dst = append(dst, '-')
	if auth < 1<<32 {
		dst = strconv.AppendUint(dst, auth, 10)
	} else {
		const hex = "0123456789ABCDEF"
		dst = append(dst, '0', 'x')
		for i := 44; i >= 0; i -= 4 {
			dst = append(dst, hex[auth>>uint(i)&0xf])
		}
	}
	for i := 0; i < cnt; i++ {
		dst = appendRID(dst, binary.LittleEndian.Uint32(b[off+8+4*i:]))
	}
	return dst
}

// appendRID appends "-rid".
func appendRID(dst []byte, rid uint32) []byte {
	return strconv.AppendUint(append(dst, '-'), uint64(rid), 10)
}

// lastSubAuthority is the RID of a SID, 0 for a SID without sub-authorities.
func lastSubAuthority(b []byte, off int) uint32 {
	cnt := int(b[off+1])
	if cnt == 0 {
		return 0
	}
	return binary.LittleEndian.Uint32(b[off+8+4*(cnt-1):])
}

// writeUTF16 writes UTF-16LE text as UTF-8; unpaired surrogates become U+FFFD.
// It writes at most 3 bytes per code unit.
func writeUTF16(sb *strings.Builder, u []byte) {
	var buf [128]byte
	n := 0
	for i := 0; i+1 < len(u); i += 2 {
		if n > len(buf)-utf8.UTFMax {
			sb.Write(buf[:n])
			n = 0
		}
		c := rune(binary.LittleEndian.Uint16(u[i:]))
		switch {
		case c < utf8.RuneSelf:
			buf[n] = byte(c)
			n++
			continue
		case utf16.IsSurrogate(c):
			r := utf8.RuneError
			if c < 0xdc00 && i+3 < len(u) {
				if d := utf16.DecodeRune(c, rune(binary.LittleEndian.Uint16(u[i+2:]))); d != utf8.RuneError {
					r = d
					i += 2
				}
			}
			c = r
		}
		n += utf8.EncodeRune(buf[n:], c)
	}
	sb.Write(buf[:n])
}
