// Package epa is Extended Protection for Authentication: it decides whether a verified
// Kerberos sign-in was made for this connection (channel binding) or at least for this
// service (service binding), with the meanings IIS and HTTP.sys give to
// tokenChecking None/Allow/Require and the flags Proxy, NoServiceNameCheck,
// AllowDotlessSpn and ProxyCohosting.
//
// It owns the channel-binding arithmetic (RFC 5929 tls-server-end-point, the MD5 of
// the GSS channel-bindings structure, RFC 4121 §4.1.1), reading the client's bindings,
// its "I support channel binding" signal (KERB_AP_OPTIONS_CBT) and the service name it
// asked for (KERB_AUTH_DATA_CLIENT_TARGET, both MS-KILE §3.2.5.8) out of the
// authenticator, and the policy. It must not verify tickets (the acceptor does), read
// configuration files, or know about HTTP beyond the facts of one connection that the
// caller hands it as a Channel. It depends on the wire types only, so that the
// acceptor's benchmarks can include it.
package epa

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// TokenChecking is IIS's extendedProtection tokenChecking.
type TokenChecking int

const (
	// None performs no Extended Protection check (the behaviour before EPA existed).
	None TokenChecking = iota
	// Allow checks bindings that a client sends; clients that cannot send them pass.
	Allow
	// Require refuses clients that do not send matching bindings.
	Require
)

func (t TokenChecking) String() string {
	switch t {
	case Allow:
		return "Allow"
	case Require:
		return "Require"
	}
	return "None"
}

// Flags are IIS's extendedProtection flags, with IIS's numeric values.
type Flags uint32

const (
	// Proxy: TLS ends at a proxy, so the exact channel-binding match is bypassed; the
	// client's bindings must not be "unbound" and the service name is checked.
	Proxy Flags = 1
	// NoServiceNameCheck: the service-binding (SPN) check always succeeds.
	NoServiceNameCheck Flags = 2
	// AllowDotlessSpn: single-label (NetBIOS) service names are accepted.
	AllowDotlessSpn Flags = 4
	// ProxyCohosting (with Proxy): clients whose whole path is plain HTTP (unbound)
	// are accepted as well; only the service name is checked.
	ProxyCohosting Flags = 32
)

// FlagNames are the flags under their IIS names, in IIS's order.
var FlagNames = []struct {
	Name string
	Flag Flags
}{
	{"Proxy", Proxy},
	{"NoServiceNameCheck", NoServiceNameCheck},
	{"AllowDotlessSpn", AllowDotlessSpn},
	{"ProxyCohosting", ProxyCohosting},
}

func (f Flags) String() string {
	var names []string
	for _, n := range FlagNames {
		if f&n.Flag != 0 {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return "None"
	}
	return strings.Join(names, ",")
}

// Policy is one listener's Extended Protection configuration.
type Policy struct {
	TokenChecking TokenChecking
	Flags         Flags
	// SPNs are the service names clients may target ("HTTP/sso.example.test"),
	// compared case-insensitively with the ticket's server name.
	SPNs []string
	// ProxyBindings are the channel bindings (tls-server-end-point application data)
	// of certificates a TLS-terminating load balancer presents to clients. A client's
	// bindings that match one of them pass the exact check even though the request
	// reached kerbgate over another connection.
	ProxyBindings []Binding
}

// Validate reports a policy IIS would refuse, or one that cannot protect anything.
func (p *Policy) Validate() error {
	if p.Flags&ProxyCohosting != 0 && p.Flags&Proxy == 0 {
		return errors.New("ProxyCohosting requires Proxy: cohosting describes which clients a proxy forwards")
	}
	if p.TokenChecking == None {
		return nil
	}
	if p.Flags&Proxy != 0 && p.Flags&NoServiceNameCheck != 0 {
		return errors.New("Proxy with NoServiceNameCheck leaves no check: behind a proxy the service name is the only binding; drop NoServiceNameCheck, or say token_checking None")
	}
	if p.Flags&Proxy != 0 && len(p.ProxyBindings) > 0 {
		return errors.New("channel_binding_certificates make channel binding exact behind the load balancer, which Proxy would bypass; drop Proxy (recommended) or the certificates")
	}
	for _, s := range p.SPNs {
		if IsDotless(s) && p.Flags&AllowDotlessSpn == 0 {
			return fmt.Errorf("%s is a dotless (NetBIOS) service name; use the fully qualified name, or add the flag AllowDotlessSpn (names without a dot are open to name-resolution poisoning)", s)
		}
	}
	return nil
}

// IsDotless reports whether the host part of service/host has no dot.
func IsDotless(spn string) bool {
	_, host, _ := strings.Cut(spn, "/")
	host, _, _ = strings.Cut(host, ":")
	return !strings.Contains(host, ".")
}

// Binding is the application data of a tls-server-end-point channel binding:
// "tls-server-end-point:" followed by the certificate hash.
type Binding []byte

// String shows the hash in hex, for logs.
func (b Binding) String() string {
	return hex.EncodeToString([]byte(b)[len(prefix):])
}

const prefix = "tls-server-end-point:"

// ServerEndPoint is the tls-server-end-point channel binding of a server certificate
// (RFC 5929 §4.1): the certificate's DER hashed with its signature's hash function,
// SHA-256 when that is MD5 or SHA-1. Certificates whose signature has no single hash
// function (Ed25519) have no such binding.
func ServerEndPoint(cert *x509.Certificate) (Binding, error) {
	var h hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default:
		return nil, fmt.Errorf("certificate %q is signed with %s, which has no tls-server-end-point channel binding (RFC 5929 §4.1); use an RSA or ECDSA certificate", cert.Subject.CommonName, cert.SignatureAlgorithm)
	}
	h.Write(cert.Raw)
	return h.Sum([]byte(prefix)), nil
}

// BindingHash is the Bnd field a GSS-API Kerberos client puts in its authenticator for
// these bindings: the MD5 of the gss_channel_bindings_struct with no addresses
// (initiator and acceptor address type and length 0) and the application data, every
// integer 32-bit little-endian (RFC 4121 §4.1.1.2).
func BindingHash(b Binding) [16]byte {
	var hdr [20]byte // four zero words, then the application data's length
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(b)))
	h := md5.New()
	h.Write(hdr[:])
	h.Write(b)
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// Authorization data of MS-KILE §3.2.5.8 (inside AD-IF-RELEVANT).
const (
	adIfRelevant     = wire.ADIfRelevant
	adAuthDataAPOpts = wire.ADAuthDataAPOptions
	apOptionsCBT     = wire.APOptionsCBT
)

// ClientBindings is what a client said about channel binding in its authenticator.
type ClientBindings struct {
	// Hash is the Bnd field; Present is false when it is all zeros ("unbound") or
	// the authenticator has no GSS checksum.
	Hash    [16]byte
	Present bool
	// Aware is true when the client signalled that it supports channel binding
	// (KERB_AP_OPTIONS_CBT): such a client always binds when it has a channel.
	Aware bool
}

// Token is what the check needs from a verified AP-REQ (acceptor.Result has it).
type Token struct {
	// SPN is the ticket's server name; Client names the user, for logs.
	SPN, Client string
	// Checksum and AuthenticatorAD are the authenticator's.
	Checksum        *wire.Checksum
	AuthenticatorAD []wire.AuthorizationData
}

// ReadClientBindings reads the bindings out of an accepted authenticator.
func ReadClientBindings(res *Token) ClientBindings {
	var cb ClientBindings
	if c := res.Checksum; c != nil && c.Type == 0x8003 && len(c.Value) >= 20 &&
		binary.LittleEndian.Uint32(c.Value[0:4]) == 16 {
		copy(cb.Hash[:], c.Value[4:20])
		cb.Present = cb.Hash != [16]byte{}
	}
	cb.Aware = signalsCBT(res.AuthenticatorAD)
	return cb
}

func signalsCBT(ads []wire.AuthorizationData) bool {
	for _, ad := range ads {
		if ad.Type != adIfRelevant {
			continue
		}
		inner, err := wire.ParseAuthorizationData(ad.Data)
		if err != nil {
			continue // a client's malformed hint is no signal
		}
		for _, e := range inner {
			if e.Type == adAuthDataAPOpts && len(e.Data) >= 4 &&
				binary.LittleEndian.Uint32(e.Data[:4])&apOptionsCBT != 0 {
				return true
			}
		}
	}
	return false
}

// Channel is what the caller knows about the connection a token arrived on.
type Channel struct {
	// Served are the bindings of the certificate kerbgate itself served on this
	// connection: exactly one after a full handshake; after a resumed handshake,
	// those of every certificate this process has served (a resumed session keeps
	// the certificate of the session it resumes, and all of them are kerbgate's own).
	// Empty when the request did not arrive over kerbgate's TLS.
	Served []Binding
}

// Outcome names how a sign-in passed, for metrics.
type Outcome string

const (
	// NotChecked: token_checking None.
	NotChecked Outcome = "not_checked"
	// ChannelBound: the client's bindings matched the TLS channel.
	ChannelBound Outcome = "channel_bound"
	// UnboundAllowed: under Allow, a client that cannot bind, on a TLS channel.
	UnboundAllowed Outcome = "unbound_allowed"
	// ServiceBound: no channel to bind to; the service name was checked (or
	// NoServiceNameCheck waived it).
	ServiceBound Outcome = "service_bound"
	// Refused: Check returned an error.
	Refused Outcome = "refused"
)

// Check applies the policy to an accepted sign-in and says how it passed. A refusal
// is a *reason.Error: cbt_missing, cbt_mismatch, spn_mismatch or spn_dotless.
func (p *Policy) Check(res *Token, ch Channel) (Outcome, error) {
	if p.TokenChecking == None {
		return NotChecked, nil
	}
	cb := ReadClientBindings(res)
	if err := p.check(res, cb, ch); err != nil {
		return Refused, err
	}
	switch {
	case p.Flags&Proxy != 0 || len(p.acceptedBindings(ch)) == 0:
		return ServiceBound, nil
	case cb.Present:
		return ChannelBound, nil
	}
	return UnboundAllowed, nil
}

func (p *Policy) check(res *Token, cb ClientBindings, ch Channel) error {
	if p.Flags&Proxy != 0 {
		// TLS ends at a proxy: the client's bindings are for the proxy's certificate,
		// which we cannot compute, so only their presence is checked (HTTP.sys: "CBT
		// is checked not to be unbound"), and the service name carries the check.
		if !cb.Present {
			switch {
			case p.Flags&ProxyCohosting != 0 && (cb.Aware || p.TokenChecking == Allow):
				// Cohosting accepts clients that reached the proxy over plain HTTP.
			case p.TokenChecking == Allow && !cb.Aware:
				// A client that cannot bind at all passes under Allow.
			default:
				return p.missing(res, cb, ch, "behind a proxy (flag Proxy) the client must have bound its token to its TLS connection with the proxy")
			}
		}
		return p.checkServiceName(res)
	}

	accepted := p.acceptedBindings(ch)
	if len(accepted) == 0 {
		// No channel to bind to: plain HTTP, TLS terminated by a proxy this policy does
		// not know. A client that bound to some TLS channel was talking to someone else.
		if cb.Present {
			return reason.New(reason.CBTMismatch, "client bound its token to a TLS channel, but this request did not arrive over kerbgate's TLS",
				"client", res.Client, "spn", res.SPN, "client_bindings_md5", hex.EncodeToString(cb.Hash[:]),
				"token_checking", p.TokenChecking.String(), "flags", p.Flags.String())
		}
		if p.TokenChecking == Require {
			return p.missing(res, cb, ch, "the request came over plain HTTP, so there is no channel to bind to; serve TLS (tls.cert), configure channel_binding_certificates for a TLS-terminating load balancer, or set flags Proxy,ProxyCohosting for service binding")
		}
		return p.checkServiceName(res)
	}

	if !cb.Present {
		if p.TokenChecking == Require {
			return p.missing(res, cb, ch, "token_checking Require: clients must bind their token to the TLS channel")
		}
		if cb.Aware {
			// A client that supports channel binding always binds when it has a TLS
			// channel; an unbound token from it was made for a plain-HTTP connection
			// and relayed here.
			return p.missing(res, cb, ch, "the client supports channel binding (KERB_AP_OPTIONS_CBT) but sent none: the token was made for another, unencrypted connection")
		}
		return nil // Allow: a client without channel-binding support
	}
	for _, b := range accepted {
		want := BindingHash(b)
		if subtle.ConstantTimeCompare(want[:], cb.Hash[:]) == 1 {
			return nil
		}
	}
	kv := []any{"client", res.Client, "spn", res.SPN,
		"client_bindings_md5", hex.EncodeToString(cb.Hash[:]),
		"token_checking", p.TokenChecking.String()}
	if len(ch.Served) > 0 {
		want := BindingHash(ch.Served[0])
		kv = append(kv, "served_certificate_hash", ch.Served[0].String(), "expected_bindings_md5", hex.EncodeToString(want[:]))
		if len(ch.Served) > 1 {
			kv = append(kv, "resumed_session_certificates", len(ch.Served))
		}
	}
	if len(p.ProxyBindings) > 0 {
		kv = append(kv, "load_balancer_certificates", len(p.ProxyBindings))
	}
	return reason.New(reason.CBTMismatch, "client's channel bindings are for another TLS certificate than the one it reached", kv...)
}

// acceptedBindings are the bindings a client on this connection may have made: to
// kerbgate's own certificate when kerbgate terminated TLS, and to the load
// balancer's certificates.
func (p *Policy) acceptedBindings(ch Channel) []Binding {
	if len(ch.Served) == 0 {
		return p.ProxyBindings
	}
	if len(p.ProxyBindings) == 0 {
		return ch.Served
	}
	return append(append([]Binding(nil), ch.Served...), p.ProxyBindings...)
}

func (p *Policy) missing(res *Token, cb ClientBindings, ch Channel, why string) error {
	return reason.New(reason.CBTMissing, why,
		"client", res.Client, "spn", res.SPN, "client_signals_cbt", cb.Aware,
		"tls", len(ch.Served) > 0, "token_checking", p.TokenChecking.String(), "flags", p.Flags.String())
}

// checkServiceName is service binding: the ticket must be for a name this service is
// reached by. It matters most with a shared service account, whose one key opens
// tickets for every SPN on that account.
//
// The ticket's server name travels in clear (RFC 4120 §5.3): whoever relays a token can
// rewrite it to any other name on the same account. A Windows client also puts the
// name it asked for in the authenticator, encrypted with the session key
// (KERB_AUTH_DATA_CLIENT_TARGET, MS-KILE §3.2.5.8); when it is there, that name is
// the one checked, and a ticket whose clear-text name differs is refused. Without it
// (MIT, Heimdal, Chromium on Linux) the clear-text name is all there is: see
// docs/epa.md, "What service binding can prove".
func (p *Policy) checkServiceName(res *Token) error {
	name, source := res.SPN, "ticket (clear text)"
	target, present, err := wire.ClientTarget(res.AuthenticatorAD)
	if err != nil {
		return reason.New(reason.MalformedToken, "authenticator's target name (KERB_AUTH_DATA_CLIENT_TARGET) does not decode",
			"client", res.Client, "ticket_spn", res.SPN, "error", err.Error())
	}
	if present {
		svc := target
		if i := strings.LastIndex(target, "@"); i >= 0 {
			svc = target[:i]
		}
		if !strings.EqualFold(svc, res.SPN) {
			return reason.New(reason.SPNMismatch, "ticket's clear-text server name differs from the name the client asked for (authenticator target name)",
				"client", res.Client, "ticket_spn", res.SPN, "authenticator_target", target, "setting", "authenticator target name").
				WithFix(reason.FixSPNRewritten)
		}
		name, source = svc, "authenticator target name"
	}
	if IsDotless(name) && p.Flags&AllowDotlessSpn == 0 {
		return reason.New(reason.SPNDotless, "ticket is for a dotless (NetBIOS) service name",
			"client", res.Client, "ticket_spn", name, "name_source", source, "setting", "epa.flags AllowDotlessSpn")
	}
	if p.Flags&NoServiceNameCheck != 0 {
		return nil
	}
	for _, s := range p.SPNs {
		if strings.EqualFold(s, name) {
			return nil
		}
	}
	return reason.New(reason.SPNMismatch, "ticket is for a service name not in epa.spns (service binding)",
		"client", res.Client, "ticket_spn", name, "name_source", source, "epa_spns", strings.Join(p.SPNs, ","), "setting", "epa.spns").
		WithFix(reason.FixEPASPNs)
}
