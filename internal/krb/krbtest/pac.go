package krbtest

// This file forges signed PACs the way an AD KDC lays one out, so that tests of the
// acceptor, the PAC decoder and the gateway can put them in forged tickets. MS-PAC
// numbers are spelled here again rather than exported from package pac: pac decodes
// and verifies, and must not carry a builder the product never uses.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/jcmturner/gokrb5/v8/crypto"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// PAC buffer types (MS-PAC §2.4).
const (
	typeLogonInfo  uint32 = 0x01
	typeServerSig  uint32 = 0x06
	typeKDCSig     uint32 = 0x07
	typeClientInfo uint32 = 0x0a
	typeUPNDNSInfo uint32 = 0x0c
)

// PAC signature checksum types (MS-PAC §2.8).
const (
	cksumHMACMD5      int32 = -138 // KERB_CHECKSUM_HMAC_MD5
	cksumSHA1AES128   int32 = 15   // HMAC_SHA1_96_AES128
	cksumSHA1AES256   int32 = 16   // HMAC_SHA1_96_AES256
	cksumSHA256AES128 int32 = 19   // HMAC_SHA256_128_AES128
	cksumSHA384AES256 int32 = 20   // HMAC_SHA384_192_AES256
)

// maxSubAuthorities is SID_MAX_SUB_AUTHORITIES.
const maxSubAuthorities = 15

// usagePACSignature is KERB_NON_KERB_CKSUM_SALT (MS-KILE §3.1.5.9).
const usagePACSignature = kcrypto.UsagePACServerSignat

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

// PACOptions describes the PAC that Build makes.
type PACOptions struct {
	UserName  string // EffectiveName, PAC_CLIENT_INFO name and UPN_DNS_INFO SAM name
	FullName  string
	Domain    string // NetBIOS domain name (LogonDomainName)
	DNSDomain string
	UPN       string
	DomainSID string // "S-1-5-21-a-b-c"
	UserRID   uint32
	// PrimaryGroupRID defaults to 513 (Domain Users).
	PrimaryGroupRID   uint32
	GroupRIDs         []uint32
	ExtraSIDs         []string
	ResourceDomainSID string
	ResourceRIDs      []uint32
	// LogonServer defaults to "DC01".
	LogonServer string
	AuthTime    time.Time
	// OmitClientInfo leaves PAC_CLIENT_INFO out; ClientInfoTime, when set, is its
	// ClientId instead of AuthTime (tests of the MS-PAC §2.7 checks).
	OmitClientInfo bool
	ClientInfoTime time.Time
}

// groupAttrs is SE_GROUP_MANDATORY | SE_GROUP_ENABLED_BY_DEFAULT | SE_GROUP_ENABLED.
const groupAttrs = 7

// PAC returns a PAC with KERB_VALIDATION_INFO, PAC_CLIENT_INFO, UPN_DNS_INFO (with
// the S flag) and server and KDC signatures made with serverKey and kdcKey. It is a
// test aid: nothing accepts or issues a PAC with it in production.
func PAC(o PACOptions, serverKey, kdcKey *kcrypto.Key) ([]byte, error) {
	if serverKey == nil || kdcKey == nil {
		return nil, errors.New("krbtest: PAC needs a server key and a KDC key")
	}
	dom, ok := SIDBytes(o.DomainSID)
	if !ok {
		return nil, fmt.Errorf("krbtest: PAC: invalid domain SID %q", o.DomainSID)
	}
	var extra [][]byte
	for _, s := range o.ExtraSIDs {
		b, ok := SIDBytes(s)
		if !ok {
			return nil, fmt.Errorf("krbtest: PAC: invalid extra SID %q", s)
		}
		extra = append(extra, b)
	}
	var res []byte
	if o.ResourceDomainSID != "" {
		if res, ok = SIDBytes(o.ResourceDomainSID); !ok {
			return nil, fmt.Errorf("krbtest: PAC: invalid resource domain SID %q", o.ResourceDomainSID)
		}
	} else if len(o.ResourceRIDs) > 0 {
		return nil, errors.New("krbtest: PAC: resource RIDs without a resource domain SID")
	}
	srvType, kdcType := checksumTypeFor(serverKey.EType()), checksumTypeFor(kdcKey.EType())
	if srvType == 0 || kdcType == 0 {
		return nil, fmt.Errorf("krbtest: PAC: no PAC checksum for enctypes %d/%d", serverKey.EType(), kdcKey.EType())
	}

	kvi := buildLogonInfo(&o, dom, extra, res)

	ft := filetime(o.AuthTime)
	if !o.ClientInfoTime.IsZero() {
		ft = filetime(o.ClientInfoTime)
	}
	name := utf16le(o.UserName)
	ci := binary.LittleEndian.AppendUint64(nil, ft)
	ci = binary.LittleEndian.AppendUint16(ci, uint16(len(name)))
	ci = append(ci, name...)

	userSID := binary.LittleEndian.AppendUint32(append([]byte(nil), dom...), o.UserRID)
	userSID[1]++
	upn, dns := utf16le(o.UPN), utf16le(o.DNSDomain)
	var ud []byte
	at := 24
	put := func(b []byte) (uint16, uint16) {
		l, off := len(b), at
		ud = append(ud, b...)
		at += l
		for at%8 != 0 {
			ud = append(ud, 0)
			at++
		}
		return uint16(l), uint16(off)
	}
	hdr := make([]byte, 24)
	var f [8]uint16
	f[0], f[1] = put(upn)
	f[2], f[3] = put(dns)
	f[4], f[5] = put(name)
	f[6], f[7] = put(userSID)
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint16(hdr[2*i:], f[i])
	}
	binary.LittleEndian.PutUint32(hdr[8:], 2) // S flag
	for i := 4; i < 8; i++ {
		binary.LittleEndian.PutUint16(hdr[12+2*(i-4):], f[i])
	}
	ud = append(hdr, ud...)

	srvSig := make([]byte, 4+sigLen(srvType))
	binary.LittleEndian.PutUint32(srvSig, uint32(srvType))
	kdcSig := make([]byte, 4+sigLen(kdcType))
	binary.LittleEndian.PutUint32(kdcSig, uint32(kdcType))

	bufs := []struct {
		typ  uint32
		data []byte
	}{
		{typeLogonInfo, kvi},
		{typeClientInfo, ci},
		{typeUPNDNSInfo, ud},
		{typeServerSig, srvSig},
		{typeKDCSig, kdcSig},
	}
	if o.OmitClientInfo {
		bufs = append(bufs[:1], bufs[2:]...)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(bufs)))
	out = binary.LittleEndian.AppendUint32(out, 0)
	off := 8 + 16*len(bufs)
	var srvAt, kdcAt int
	for _, b := range bufs {
		out = binary.LittleEndian.AppendUint32(out, b.typ)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b.data)))
		out = binary.LittleEndian.AppendUint64(out, uint64(off))
		switch b.typ {
		case typeServerSig:
			srvAt = off + 4
		case typeKDCSig:
			kdcAt = off + 4
		}
		off += (len(b.data) + 7) &^ 7
	}
	for _, b := range bufs {
		out = append(out, b.data...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}

	sum, err := checksum(serverKey, out)
	if err != nil {
		return nil, err
	}
	copy(out[srvAt:], sum)
	if sum, err = checksum(kdcKey, sum); err != nil {
		return nil, err
	}
	copy(out[kdcAt:], sum)
	return out, nil
}

// checksum is the keyed checksum (RFC 3961 get_mic, or RFC 4757 for RC4) with key
// usage 17, made with gokrb5 because kcrypto only verifies checksums.
func checksum(k *kcrypto.Key, data []byte) ([]byte, error) {
	e, err := crypto.GetEtype(k.EType())
	if err != nil {
		return nil, err
	}
	sum, err := e.GetChecksumHash(k.Value(), data, usagePACSignature)
	if err != nil {
		return nil, err
	}
	if n := sigLen(checksumTypeFor(k.EType())); len(sum) >= n {
		return sum[:n], nil
	}
	return nil, fmt.Errorf("krbtest: PAC: enctype %d checksum of %d bytes", k.EType(), len(sum))
}

func filetime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()/100) + 116444736000000000
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// ndrWriter writes an NDR stream with unique pointers numbered like Windows does.
type ndrWriter struct {
	b   []byte
	ref uint32
}

func (w *ndrWriter) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *ndrWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *ndrWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *ndrWriter) align4() {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// ptr writes a referent ID, or null when absent.
func (w *ndrWriter) ptr(present bool) {
	if !present {
		w.u32(0)
		return
	}
	w.u32(0x00020000 + w.ref)
	w.ref += 4
}

// ustring writes an RPC_UNICODE_STRING header; the pointer is always set.
func (w *ndrWriter) ustring(s []byte) {
	w.u16(uint16(len(s)))
	w.u16(uint16(len(s)))
	w.ptr(true)
}

func (w *ndrWriter) ustringBody(s []byte) {
	w.align4()
	w.u32(uint32(len(s) / 2))
	w.u32(0)
	w.u32(uint32(len(s) / 2))
	w.b = append(w.b, s...)
}

func (w *ndrWriter) sid(s []byte) {
	w.align4()
	w.u32(uint32(s[1]))
	w.b = append(w.b, s...)
}

func (w *ndrWriter) groups(rids []uint32) {
	w.align4()
	w.u32(uint32(len(rids)))
	for _, r := range rids {
		w.u32(r)
		w.u32(groupAttrs)
	}
}

func buildLogonInfo(o *PACOptions, dom []byte, extra [][]byte, res []byte) []byte {
	const never = 0x7fffffffffffffff
	ft := filetime(o.AuthTime)
	server := o.LogonServer
	if server == "" {
		server = "DC01"
	}
	primary := o.PrimaryGroupRID
	if primary == 0 {
		primary = 513
	}
	eff, full, srv, dn := utf16le(o.UserName), utf16le(o.FullName), utf16le(server), utf16le(o.Domain)

	w := &ndrWriter{b: make([]byte, 0, 512+8*len(o.GroupRIDs)+32*len(extra))}
	w.b = append(w.b, 1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc) // common header
	w.u32(0)                                                 // object length, set below
	w.u32(0)
	w.ptr(true) // top-level pointer
	w.u64(ft)   // LogonTime
	w.u64(never)
	w.u64(never)
	w.u64(ft) // PasswordLastSet
	w.u64(ft)
	w.u64(never)
	w.ustring(eff)
	w.ustring(full)
	for i := 0; i < 4; i++ { // LogonScript, ProfilePath, HomeDirectory, HomeDirectoryDrive
		w.ustring(nil)
	}
	w.u16(1) // LogonCount
	w.u16(0) // BadPasswordCount
	w.u32(o.UserRID)
	w.u32(primary)
	w.u32(uint32(len(o.GroupRIDs)))
	w.ptr(len(o.GroupRIDs) > 0)
	var flags uint32
	if len(extra) > 0 {
		flags |= 0x20 // LOGON_EXTRA_SIDS
	}
	if res != nil {
		flags |= 0x200 // LOGON_RESOURCE_GROUPS
	}
	w.u32(flags)
	w.b = append(w.b, make([]byte, 16)...) // UserSessionKey
	w.ustring(srv)
	w.ustring(dn)
	w.ptr(true)  // LogonDomainId
	w.u64(0)     // Reserved1
	w.u32(0x210) // UserAccountControl: USER_NORMAL_ACCOUNT | USER_DONT_EXPIRE_PASSWORD
	w.u32(0)     // SubAuthStatus
	w.u64(0)     // LastSuccessfulILogon
	w.u64(0)     // LastFailedILogon
	w.u32(0)     // FailedILogonCount
	w.u32(0)     // Reserved3
	w.u32(uint32(len(extra)))
	w.ptr(len(extra) > 0)
	w.ptr(res != nil)
	w.u32(uint32(len(o.ResourceRIDs)))
	w.ptr(res != nil)

	w.ustringBody(eff)
	w.ustringBody(full)
	for i := 0; i < 4; i++ {
		w.ustringBody(nil)
	}
	if len(o.GroupRIDs) > 0 {
		w.groups(o.GroupRIDs)
	}
	w.ustringBody(srv)
	w.ustringBody(dn)
	w.sid(dom)
	if len(extra) > 0 {
		w.align4()
		w.u32(uint32(len(extra)))
		for range extra {
			w.ptr(true)
			w.u32(groupAttrs)
		}
		for _, s := range extra {
			w.sid(s)
		}
	}
	if res != nil {
		w.sid(res)
		w.groups(o.ResourceRIDs)
	}
	for len(w.b)%8 != 0 {
		w.b = append(w.b, 0)
	}
	binary.LittleEndian.PutUint32(w.b[8:], uint32(len(w.b)-16))
	return w.b
}

// SIDBytes parses the string form of a SID ("S-1-5-21-…") into its binary form.
func SIDBytes(s string) ([]byte, bool) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || parts[1] != "1" || len(parts)-3 > maxSubAuthorities {
		return nil, false
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, false
	}
	out := make([]byte, 8, 8+4*(len(parts)-3))
	out[0], out[1] = 1, byte(len(parts)-3)
	for i := 0; i < 6; i++ {
		out[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, false
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(v))
	}
	return out, true
}
