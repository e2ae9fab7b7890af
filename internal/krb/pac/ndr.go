package pac

import "encoding/binary"

// KERB_VALIDATION_INFO (MS-PAC §2.5) is an NDR type serialization (version 1,
// MS-RPCE §2.2.6): an 8-byte common header, an 8-byte private header whose first
// field is the length of the serialized object, then the top-level pointer's
// referent ID and the structure. The structure's fixed part is 216 bytes; the
// referents of its pointers follow in pointer order, each aligned to 4:
//
//	RPC_UNICODE_STRING → MaxCount, Offset, ActualCount, UTF-16LE[ActualCount]
//	conformant array   → MaxCount, elements (then the referents of pointers
//	                     embedded in the elements, in element order)
//	RPC_SID            → MaxCount (= SubAuthorityCount), Revision,
//	                     SubAuthorityCount, IdentifierAuthority[6] (big-endian),
//	                     SubAuthority[n] (little-endian)
const kviFixedLen = 216

// Offsets in the fixed part of KERB_VALIDATION_INFO.
const (
	kviEffectiveName      = 48
	kviFullName           = 56
	kviLogonScript        = 64
	kviProfilePath        = 72
	kviHomeDirectory      = 80
	kviHomeDirectoryDrive = 88
	kviUserID             = 100
	kviPrimaryGroupID     = 104
	kviGroupCount         = 108
	kviGroupIDs           = 112
	kviUserFlags          = 116
	kviLogonServer        = 136
	kviLogonDomainName    = 144
	kviLogonDomainID      = 152
	kviUserAccountControl = 164
	kviSIDCount           = 196
	kviExtraSIDs          = 200
	kviResourceDomainSID  = 204
	kviResourceGroupCount = 208
	kviResourceGroupIDs   = 212
)

// ndr reads deferred referents of the NDR stream b[base:end].
type ndr struct {
	b              []byte
	base, pos, end int
	err            string // first problem, a constant so failing costs nothing
}

func (d *ndr) fail(what string) {
	if d.err == "" {
		d.err = what
	}
	d.pos = d.end
}

func (d *ndr) align4() {
	if r := (d.pos - d.base) & 3; r != 0 {
		d.pos += 4 - r
	}
	if d.pos > d.end {
		d.fail("truncated")
	}
}

func (d *ndr) u32() uint32 {
	if d.end-d.pos < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.pos:])
	d.pos += 4
	return v
}

func (d *ndr) le32(at int) uint32 { return binary.LittleEndian.Uint32(d.b[at:]) }

// str reads the referent of the RPC_UNICODE_STRING at fixed offset at.
func (d *ndr) str(at int) ustr {
	length := int(binary.LittleEndian.Uint16(d.b[at:]))
	if d.le32(at+4) == 0 {
		return ustr{}
	}
	d.align4()
	max, offset, actual := d.u32(), d.u32(), d.u32()
	if d.err != "" {
		return ustr{}
	}
	if offset != 0 || actual > max || uint64(actual)*2 != uint64(length) {
		d.fail("inconsistent RPC_UNICODE_STRING")
		return ustr{}
	}
	if uint64(actual) > uint64(d.end-d.pos)/2 {
		d.fail("RPC_UNICODE_STRING exceeds the buffer")
		return ustr{}
	}
	u := ustr{d.pos, int(actual)}
	d.pos += 2 * int(actual)
	return u
}

// sid reads a conformant RPC_SID referent.
func (d *ndr) sid() sidRef {
	d.align4()
	max := d.u32()
	if d.err != "" || d.end-d.pos < 8 {
		d.fail("truncated RPC_SID")
		return sidRef{}
	}
	cnt := d.b[d.pos+1]
	if d.b[d.pos] != 1 || uint32(cnt) != max || cnt > maxSubAuthorities {
		d.fail("invalid RPC_SID")
		return sidRef{}
	}
	n := 8 + 4*int(cnt)
	if d.end-d.pos < n {
		d.fail("truncated RPC_SID")
		return sidRef{}
	}
	s := sidRef{d.pos, true}
	d.pos += n
	return s
}

// rids reads a conformant array of count GROUP_MEMBERSHIP if ptr is not null.
func (d *ndr) rids(count, ptr uint32) ridArray {
	if ptr == 0 {
		if count != 0 {
			d.fail("group count without group array")
		}
		return ridArray{}
	}
	d.align4()
	max := d.u32()
	if d.err != "" {
		return ridArray{}
	}
	if max != count {
		d.fail("group array size differs from its count")
		return ridArray{}
	}
	if uint64(max) > uint64(d.end-d.pos)/8 {
		d.fail("group array exceeds the buffer")
		return ridArray{}
	}
	r := ridArray{d.pos, int(max)}
	d.pos += 8 * int(max)
	return r
}

// decodeLogonInfo decodes the KERB_VALIDATION_INFO buffer at b[off:off+size].
func decodeLogonInfo(b []byte, off, size int, st *parsed) error {
	if size < 16+4+kviFixedLen {
		return malformed("KERB_VALIDATION_INFO of %d bytes", size)
	}
	h := b[off:]
	if h[0] != 1 || h[1] != 0x10 || binary.LittleEndian.Uint16(h[2:]) != 8 {
		return malformed("KERB_VALIDATION_INFO: not a little-endian NDR type serialization v1")
	}
	objLen := binary.LittleEndian.Uint32(h[8:])
	if uint64(objLen) > uint64(size-16) || objLen < 4+kviFixedLen {
		return malformed("KERB_VALIDATION_INFO: object length %d in a %d-byte buffer", objLen, size)
	}
	d := ndr{b: b, base: off + 16, pos: off + 16, end: off + 16 + int(objLen)}
	if d.u32() == 0 {
		return malformed("KERB_VALIDATION_INFO: null top-level pointer")
	}
	s := d.pos
	d.pos += kviFixedLen

	st.userID = d.le32(s + kviUserID)
	st.primaryGroupID = d.le32(s + kviPrimaryGroupID)
	st.userFlags = d.le32(s + kviUserFlags)
	st.uac = d.le32(s + kviUserAccountControl)
	st.effName = d.str(s + kviEffectiveName)
	st.fullName = d.str(s + kviFullName)
	d.str(s + kviLogonScript)
	d.str(s + kviProfilePath)
	d.str(s + kviHomeDirectory)
	d.str(s + kviHomeDirectoryDrive)
	st.groups = d.rids(d.le32(s+kviGroupCount), d.le32(s+kviGroupIDs))
	st.logonServer = d.str(s + kviLogonServer)
	st.logonDomain = d.str(s + kviLogonDomainName)
	if d.le32(s+kviLogonDomainID) == 0 {
		return malformed("KERB_VALIDATION_INFO: no LogonDomainId")
	}
	st.domainSID = d.sid()

	sidCount := d.le32(s + kviSIDCount)
	if d.le32(s+kviExtraSIDs) != 0 {
		d.align4()
		max := d.u32()
		switch {
		case d.err != "":
		case max != sidCount:
			d.fail("ExtraSids size differs from SidCount")
		case uint64(max) > uint64(d.end-d.pos)/8:
			d.fail("ExtraSids exceeds the buffer")
		default:
			st.extra = ridArray{d.pos, int(max)}
			d.pos += 8 * int(max)
			for i := 0; i < int(max) && d.err == ""; i++ {
				if d.le32(st.extra.off+8*i) != 0 {
					if st.nExtra == 0 {
						d.align4()
						st.extraAt = d.pos
					}
					d.sid()
					st.nExtra++
				}
			}
		}
	} else if sidCount != 0 {
		d.fail("SidCount without ExtraSids")
	}

	resCount := d.le32(s + kviResourceGroupCount)
	if d.le32(s+kviResourceDomainSID) != 0 {
		st.resDomainSID = d.sid()
	} else if resCount != 0 {
		d.fail("resource groups without ResourceGroupDomainSid")
	}
	st.resGroups = d.rids(resCount, d.le32(s+kviResourceGroupIDs))
	if d.err != "" {
		return malformed("KERB_VALIDATION_INFO: %s", d.err)
	}
	return nil
}
