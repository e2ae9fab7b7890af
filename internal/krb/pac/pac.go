package pac

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors. Every decoding failure wraps ErrMalformed.
var (
	// ErrMalformed means the bytes are not a well-formed PAC.
	ErrMalformed = errors.New("pac: malformed")
	// ErrNoServerSignature means the PAC has no server signature buffer.
	ErrNoServerSignature = errors.New("pac: no server signature")
	// ErrSignature means the server signature did not verify (wrong key, tampering)
	// or its checksum type does not belong to the key's enctype.
	ErrSignature = errors.New("pac: server signature does not verify")
)

// PAC_INFO_BUFFER types (MS-PAC §2.4).
const (
	typeLogonInfo  uint32 = 0x01
	typeServerSig  uint32 = 0x06
	typeKDCSig     uint32 = 0x07
	typeClientInfo uint32 = 0x0a
	typeUPNDNSInfo uint32 = 0x0c
)

// Checksum types used in PAC_SIGNATURE_DATA (MS-PAC §2.8, RFC 3961, RFC 8009).
const (
	cksumHMACMD5      int32 = -138 // KERB_CHECKSUM_HMAC_MD5
	cksumSHA1AES128   int32 = 15   // HMAC_SHA1_96_AES128
	cksumSHA1AES256   int32 = 16   // HMAC_SHA1_96_AES256
	cksumSHA256AES128 int32 = 19   // HMAC_SHA256_128_AES128
	cksumSHA384AES256 int32 = 20   // HMAC_SHA384_192_AES256
	maxSignatureLen         = 24
	maxBuffers              = 64 // real PACs carry about a dozen buffers
	maxSubAuthorities       = 15 // SID_MAX_SUB_AUTHORITIES
)

// PAC is the decoded content of a PAC. All strings are UTF-8.
type PAC struct {
	// UserSID is LogonDomainSID with the user's RID appended.
	UserSID string
	// GroupSIDs are, in this order and without duplicates: the logon domain's
	// groups (GroupIds), every ExtraSids entry, then the resource groups
	// (ResourceGroupDomainSid + ResourceGroupIds).
	GroupSIDs []string
	// PrimaryGroupSID is LogonDomainSID with PrimaryGroupId appended.
	PrimaryGroupSID string

	EffectiveName   string // KERB_VALIDATION_INFO.EffectiveName (sAMAccountName)
	FullName        string // display name
	LogonDomainName string // NetBIOS domain name
	LogonDomainSID  string
	LogonServer     string

	UserAccountControl uint32
	UserFlags          uint32

	// ClientName is PAC_CLIENT_INFO.Name: the ticket's client name without realm.
	// Empty when the PAC has no PAC_CLIENT_INFO buffer.
	ClientName string
	// HasClientInfo reports whether the PAC has a PAC_CLIENT_INFO buffer;
	// ClientInfoTime is its ClientId, the ticket's authtime (MS-PAC §2.7), in UTC
	// (zero when the FILETIME is 0).
	HasClientInfo  bool
	ClientInfoTime time.Time

	// From UPN_DNS_INFO. SAMAccountName falls back to EffectiveName when the
	// buffer has no SAM name (no S flag).
	UPN, DNSDomainName, SAMAccountName string
	HasUPNDNSInfo                      bool

	ServerSignature, KDCSignature Signature

	raw []byte
}

// Signature is a PAC_SIGNATURE_DATA buffer. Value aliases the bytes given to Parse.
type Signature struct {
	Type  int32
	Value []byte

	offset int // of Value within the PAC
}

// sigLen is the signature size of a checksum type, 0 if unknown.
func sigLen(t int32) int {
	switch t {
	case cksumSHA1AES128, cksumSHA1AES256:
		return 12
	case cksumHMACMD5, cksumSHA256AES128:
		return 16
	case cksumSHA384AES256:
		return 24
	}
	return 0
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ustr is a UTF-16LE string in the PAC: n code units at off.
type ustr struct{ off, n int }

// sidRef is a binary SID (Revision, SubAuthorityCount, IdentifierAuthority[6],
// SubAuthority[n]) at off; NDR's RPC_SID after its conformance has the same layout.
type sidRef struct {
	off int
	ok  bool
}

// ridArray is n GROUP_MEMBERSHIP {RelativeId, Attributes} elements at off.
type ridArray struct{ off, n int }

// parsed holds references into the PAC collected before any string is built, so
// that all strings can share one allocation.
type parsed struct {
	effName, fullName, logonServer, logonDomain ustr
	clientName, upn, dnsDomain, samName         ustr
	userID, primaryGroupID, uac, userFlags      uint32
	groups, resGroups                           ridArray
	domainSID, resDomainSID, upnSID             sidRef
	// ExtraSids: the KERB_SID_AND_ATTRIBUTES array, and where its SID referents
	// start (each is MaxCount + SID, a multiple of 4 bytes, so they are contiguous).
	extra           ridArray
	extraAt, nExtra int
}

// Parse decodes a PAC (the ad-data of an AD-WIN2K-PAC element). The result keeps
// references to b, which must not be modified while the PAC is in use. Errors wrap
// ErrMalformed. Parse does not verify signatures: call VerifyServerSignature.
func Parse(b []byte) (*PAC, error) {
	if len(b) < 8 {
		return nil, malformed("%d bytes is shorter than the PACTYPE header", len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if v := binary.LittleEndian.Uint32(b[4:]); v != 0 {
		return nil, malformed("version %d, expected 0", v)
	}
	if n == 0 || n > maxBuffers {
		return nil, malformed("%d buffers", n)
	}
	hdrEnd := 8 + 16*int(n)
	if hdrEnd > len(b) {
		return nil, malformed("buffer table of %d entries exceeds the %d bytes", n, len(b))
	}
	p := &PAC{raw: b}
	var st parsed
	var seen uint32 // bit per known type seen
	for i := 0; i < int(n); i++ {
		e := b[8+16*i:]
		typ := binary.LittleEndian.Uint32(e)
		size := uint64(binary.LittleEndian.Uint32(e[4:]))
		off := binary.LittleEndian.Uint64(e[8:])
		if off%8 != 0 {
			return nil, malformed("buffer %d (type %#x) offset %d is not a multiple of 8", i, typ, off)
		}
		if off < uint64(hdrEnd) || off > uint64(len(b)) || size > uint64(len(b))-off {
			return nil, malformed("buffer %d (type %#x) [%d,+%d) is outside the PAC", i, typ, off, size)
		}
		// Buffers must not overlap: otherwise zeroing a signature could alter
		// other content, and the same bytes could be read two ways.
		for j := 0; j < i && size > 0; j++ {
			f := b[8+16*j:]
			s2 := uint64(binary.LittleEndian.Uint32(f[4:]))
			o2 := binary.LittleEndian.Uint64(f[8:])
			if s2 > 0 && off < o2+s2 && o2 < off+size {
				return nil, malformed("buffers %d and %d overlap", j, i)
			}
		}
		buf := b[off : off+size : off+size]
		o := int(off)
		switch typ {
		case typeLogonInfo, typeServerSig, typeKDCSig, typeClientInfo, typeUPNDNSInfo:
			if seen&(1<<typ) != 0 {
				return nil, malformed("more than one buffer of type %#x", typ)
			}
			seen |= 1 << typ
		}
		var err error
		switch typ {
		case typeLogonInfo:
			err = decodeLogonInfo(b, o, len(buf), &st)
		case typeServerSig:
			p.ServerSignature, err = decodeSignature(buf, o)
		case typeKDCSig:
			p.KDCSignature, err = decodeSignature(buf, o)
		case typeClientInfo:
			p.HasClientInfo = true
			err = decodeClientInfo(buf, o, &st)
			if err == nil {
				p.ClientInfoTime = fromFiletime(binary.LittleEndian.Uint64(buf))
			}
		case typeUPNDNSInfo:
			p.HasUPNDNSInfo = true
			err = decodeUPNDNSInfo(buf, o, &st)
		}
		// Other types are skipped. The ticket signature (0x10) and the extended
		// KDC signature (0x13) are KDC checksums made before the server
		// signature, which covers them as they are: only the server and KDC
		// Signature fields are zeroed for it (MS-PAC §2.8.1), so nothing needs
		// recording for them.
		if err != nil {
			return nil, err
		}
	}
	if seen&(1<<typeLogonInfo) == 0 {
		return nil, malformed("no KERB_VALIDATION_INFO buffer")
	}
	if p.ServerSignature.Value != nil && p.KDCSignature.Value != nil {
		s, k := p.ServerSignature, p.KDCSignature
		if s.offset < k.offset+len(k.Value) && k.offset < s.offset+len(s.Value) {
			return nil, malformed("server and KDC signatures overlap")
		}
	}
	p.fill(&st)
	return p, nil
}

func decodeSignature(buf []byte, off int) (Signature, error) {
	if len(buf) < 4 {
		return Signature{}, malformed("signature buffer of %d bytes", len(buf))
	}
	t := int32(binary.LittleEndian.Uint32(buf))
	n := sigLen(t)
	if n == 0 {
		return Signature{}, malformed("unknown signature type %d", t)
	}
	// An RODC adds a 2-byte RODCIdentifier after the signature.
	if len(buf) < 4+n {
		return Signature{}, malformed("signature type %d needs %d bytes, buffer has %d", t, n, len(buf)-4)
	}
	return Signature{Type: t, Value: buf[4 : 4+n : 4+n], offset: off + 4}, nil
}

// decodeClientInfo reads PAC_CLIENT_INFO (MS-PAC §2.7): ClientId FILETIME,
// NameLength uint16, Name in UTF-16LE.
func decodeClientInfo(buf []byte, off int, st *parsed) error {
	if len(buf) < 10 {
		return malformed("PAC_CLIENT_INFO of %d bytes", len(buf))
	}
	l := int(binary.LittleEndian.Uint16(buf[8:]))
	if l%2 != 0 || l > len(buf)-10 {
		return malformed("PAC_CLIENT_INFO name length %d in %d bytes", l, len(buf))
	}
	st.clientName = ustr{off + 10, l / 2}
	return nil
}

// fromFiletime converts a FILETIME (100 ns since 1601-01-01 UTC); zero for 0.
func fromFiletime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601 → 1970 in 100 ns
	secs := (int64(ft/10_000_000) - epochDiff/10_000_000)
	return time.Unix(secs, int64(ft%10_000_000)*100).UTC()
}

// decodeUPNDNSInfo reads UPN_DNS_INFO (MS-PAC §2.10). Offsets are relative to the
// start of the buffer.
func decodeUPNDNSInfo(buf []byte, off int, st *parsed) error {
	if len(buf) < 12 {
		return malformed("UPN_DNS_INFO of %d bytes", len(buf))
	}
	field := func(at int) (ustr, error) {
		l := int(binary.LittleEndian.Uint16(buf[at:]))
		o := int(binary.LittleEndian.Uint16(buf[at+2:]))
		if l%2 != 0 || o > len(buf) || l > len(buf)-o {
			return ustr{}, malformed("UPN_DNS_INFO field [%d,+%d) outside %d bytes", o, l, len(buf))
		}
		return ustr{off + o, l / 2}, nil
	}
	var err error
	if st.upn, err = field(0); err != nil {
		return err
	}
	if st.dnsDomain, err = field(4); err != nil {
		return err
	}
	flags := binary.LittleEndian.Uint32(buf[8:])
	if flags&2 == 0 {
		return nil
	}
	// S flag: SamNameLength/Offset and SidLength/Offset follow.
	if len(buf) < 20 {
		return malformed("UPN_DNS_INFO with S flag of %d bytes", len(buf))
	}
	if st.samName, err = field(12); err != nil {
		return err
	}
	l := int(binary.LittleEndian.Uint16(buf[16:]))
	o := int(binary.LittleEndian.Uint16(buf[18:]))
	if l == 0 {
		return nil
	}
	if o > len(buf) || l > len(buf)-o || l < 8 {
		return malformed("UPN_DNS_INFO SID [%d,+%d) outside %d bytes", o, l, len(buf))
	}
	cnt := int(buf[o+1])
	if buf[o] != 1 || cnt > maxSubAuthorities || l != 8+4*cnt {
		return malformed("UPN_DNS_INFO SID is not a valid SID")
	}
	st.upnSID = sidRef{off + o, true}
	return nil
}

// forExtra calls f with the offset of each ExtraSids SID, in order.
func (st *parsed) forExtra(b []byte, f func(off int)) {
	pos := st.extraAt
	for i := 0; i < st.extra.n; i++ {
		if binary.LittleEndian.Uint32(b[st.extra.off+8*i:]) != 0 {
			f(pos + 4)
			pos += 4 + 8 + 4*int(b[pos+5])
		}
	}
}

// fill builds every string of the PAC into one buffer.
func (p *PAC) fill(st *parsed) {
	b := p.raw
	// The domain SID and the resource domain SID followed by "-".
	var dom, res [maxSIDLen + 11]byte
	domain := append(appendSID(dom[:0], b, st.domainSID.off), '-')
	var resource []byte
	if st.resDomainSID.ok {
		resource = append(appendSID(res[:0], b, st.resDomainSID.off), '-')
	}
	size := (3+st.groups.n)*(len(domain)+10) + st.resGroups.n*(len(resource)+10)
	st.forExtra(b, func(off int) { size += sidStrLen(b, off) })
	for _, u := range [...]ustr{st.effName, st.fullName, st.logonServer, st.logonDomain,
		st.clientName, st.upn, st.dnsDomain, st.samName} {
		size += 3 * u.n
	}
	var sb strings.Builder
	sb.Grow(size)
	str := func(u ustr) string {
		if u.n == 0 {
			return ""
		}
		start := sb.Len()
		writeUTF16(&sb, b[u.off:u.off+2*u.n])
		return sb.String()[start:]
	}
	p.UserAccountControl, p.UserFlags = st.uac, st.userFlags
	p.EffectiveName = str(st.effName)
	p.FullName = str(st.fullName)
	p.LogonServer = str(st.logonServer)
	p.LogonDomainName = str(st.logonDomain)
	p.ClientName = str(st.clientName)
	p.UPN = str(st.upn)
	p.DNSDomainName = str(st.dnsDomain)
	p.SAMAccountName = str(st.samName)
	if p.SAMAccountName == "" {
		p.SAMAccountName = p.EffectiveName
	}

	start := sb.Len()
	sb.Write(domain[:len(domain)-1])
	p.LogonDomainSID = sb.String()[start:]
	p.UserSID = writeRIDSID(&sb, domain, st.userID)
	p.PrimaryGroupSID = writeRIDSID(&sb, domain, st.primaryGroupID)

	total := st.groups.n + st.nExtra + st.resGroups.n
	if total == 0 {
		return
	}
	groups := make([]string, 0, total)
	var small [128]uint64
	set := newSIDSet(total, small[:])
	for i := 0; i < st.groups.n; i++ {
		rid := binary.LittleEndian.Uint32(b[st.groups.off+8*i:])
		if s := writeRIDSID(&sb, domain, rid); set.add(groups, s, rid) {
			groups = append(groups, s)
		}
	}
	st.forExtra(b, func(off int) {
		start := sb.Len()
		var tmp [maxSIDLen]byte
		sb.Write(appendSID(tmp[:0], b, off))
		if s := sb.String()[start:]; set.add(groups, s, lastSubAuthority(b, off)) {
			groups = append(groups, s)
		}
	})
	for i := 0; i < st.resGroups.n; i++ {
		rid := binary.LittleEndian.Uint32(b[st.resGroups.off+8*i:])
		if s := writeRIDSID(&sb, resource, rid); set.add(groups, s, rid) {
			groups = append(groups, s)
		}
	}
	p.GroupSIDs = groups
}

// writeRIDSID writes prefix (which ends with "-") and rid to sb and returns them.
// prefix must have room for 10 more bytes.
func writeRIDSID(sb *strings.Builder, prefix []byte, rid uint32) string {
	start := sb.Len()
	sb.Write(strconv.AppendUint(prefix, uint64(rid), 10))
	return sb.String()[start:]
}

// sidSet is an open-addressing set of the SIDs already in a group list: a slot
// holds rid<<32 | index+1, and the string is compared only when the RIDs match.
// It needs no allocation up to 64 SIDs.
type sidSet struct {
	slots []uint64
	mask  uint32
}

// newSIDSet makes a set for n SIDs, in small if it is large enough.
func newSIDSet(n int, small []uint64) sidSet {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if size > len(small) {
		small = make([]uint64, size)
	}
	return sidSet{small[:size], uint32(size - 1)}
}

// add reports whether sid is new, and records it as groups[len(groups)].
func (s *sidSet) add(groups []string, sid string, rid uint32) bool {
	h := rid * 0x9e3779b1
	for i := (h ^ h>>15) & s.mask; ; i = (i + 1) & s.mask {
		v := s.slots[i]
		if v == 0 {
			s.slots[i] = uint64(rid)<<32 | uint64(len(groups)+1)
			return true
		}
		if uint32(v>>32) == rid && groups[uint32(v)-1] == sid {
			return false
		}
	}
}
