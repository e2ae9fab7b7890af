// Package kdc is kerbgate's one way of talking to a Key Distribution Center: one
// message exchange over TCP (RFC 4120 §7.2.2), and the one krb5.conf text that
// configures gokrb5's client (AS and TGS requests) for a realm and its KDCs.
//
// It owns the framing of a KDC exchange and the client settings. It must not build
// or check Kerberos messages (s4u, the doctor and the load generator do), read
// configuration files, or log.
package kdc

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	krbconfig "github.com/jcmturner/gokrb5/v8/config"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// MaxAnswer bounds the size of a KDC's answer.
const MaxAnswer = 1 << 20

// DefaultTimeout bounds an exchange when the caller gives no timeout.
const DefaultTimeout = 5 * time.Second

// Exchange sends one Kerberos message (an AS-REQ or TGS-REQ's DER) to the KDC at
// addr (host:port) over TCP, with the four-byte length prefix of RFC 4120 §7.2.2, and
// returns the answer's DER. timeout bounds the dial and the whole exchange
// (DefaultTimeout when zero), as does ctx's deadline when it is earlier. Only TCP:
// Active Directory's KDCs answer large tickets (PACs) over TCP, and every caller's
// krb5.conf sets udp_preference_limit = 1 for the same reason.
func Exchange(ctx context.Context, addr string, msg []byte, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	// A cancelled context stops the exchange at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	frame := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(frame, uint32(len(msg)))
	copy(frame[4:], msg)
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > MaxAnswer {
		return nil, fmt.Errorf("KDC answer of %d bytes", size)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(conn, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Client describes the gokrb5 client configuration of a realm.
type Client struct {
	Realm string
	// KDCs are host:port addresses; none leaves the realm without KDCs (a client
	// that only builds messages).
	KDCs []string
	// Enctypes are requested and permitted, in order of preference; AES256 and
	// AES128 with SHA-1 (what Active Directory issues) when empty.
	Enctypes []int32
	// Forwardable asks for forwardable tickets (constrained delegation needs a
	// forwardable TGT).
	Forwardable bool
	// Canonicalize sets the canonicalize option (RFC 6806) on requests.
	Canonicalize bool
}

// Krb5Conf returns the krb5.conf text of c: no DNS lookups, TCP only, the
// enctypes, and the realm's KDCs.
func (c Client) Krb5Conf() string {
	enctypes := c.Enctypes
	if len(enctypes) == 0 {
		enctypes = []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1}
	}
	names := make([]string, len(enctypes))
	for i, e := range enctypes {
		names[i] = kcrypto.EnctypeName(e)
	}
	list := strings.Join(names, " ")
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n udp_preference_limit = 1\n", c.Realm)
	if c.Forwardable {
		b.WriteString(" forwardable = true\n")
	}
	b.WriteString(" noaddresses = true\n")
	if c.Canonicalize {
		b.WriteString(" canonicalize = true\n")
	}
	fmt.Fprintf(&b, " default_tkt_enctypes = %s\n default_tgs_enctypes = %s\n permitted_enctypes = %s\n", list, list, list)
	fmt.Fprintf(&b, "[realms]\n %s = {\n", c.Realm)
	for _, k := range c.KDCs {
		fmt.Fprintf(&b, "  kdc = %s\n", k)
	}
	b.WriteString(" }\n")
	return b.String()
}

// Config returns gokrb5's client configuration of c.
func (c Client) Config() (*krbconfig.Config, error) {
	return krbconfig.NewFromString(c.Krb5Conf())
}
