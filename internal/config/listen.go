package config

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Listen is the listen section: where and how the gateway accepts HTTP connections.
type Listen struct {
	// Address is the host:port to listen on; ":8080" by default.
	Address string
	// ReadHeaderTimeout bounds the time to read a request's headers; 10s by default.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds the size of a request's headers. It is never 0 in a loaded
	// Config: by default it is Kerberos.MaxTokenBytes + 32768.
	MaxHeaderBytes int
	// ExternalURL is the scheme and host clients use to reach kerbgate (through a
	// TLS-terminating load balancer, say); nil when the file sets none, and then the
	// scheme is the connection's, or X-Forwarded-Proto from a trusted proxy.
	ExternalURL *url.URL
	// TrustedProxies are the addresses whose X-Forwarded-Proto, X-Forwarded-For
	// (and the other X-Forwarded-* headers) are believed; none by default.
	TrustedProxies []netip.Prefix
	// DrainDelay is how long, after SIGTERM, /readyz answers 503 while the listener
	// still accepts, so that the load balancer's checks take the node out first.
	// 0 by default: the listener closes at once, as before draining existed, so that
	// a stop without a balancer stays prompt; behind one, set it (docs/operations.md).
	DrainDelay time.Duration
	// ShutdownTimeout bounds the time in-flight requests get to finish once the
	// listener is closed; 30s by default.
	ShutdownTimeout time.Duration
}

const (
	defaultAddress           = ":8080"
	defaultReadHeaderTimeout = 10 * time.Second
	maxReadHeaderTimeout     = 5 * time.Minute
	defaultDrainDelay        = 0
	maxDrainDelay            = 5 * time.Minute
	defaultShutdownTimeout   = 30 * time.Second
	maxShutdownTimeout       = 10 * time.Minute
	// headerSlack is what the default MaxHeaderBytes allows besides the token.
	headerSlack = 32 << 10
	// maxMaxHeaderBytes is a sanity bound: well above what the largest token needs.
	maxMaxHeaderBytes = 16 << 20
)

func decodeListen(m *mapping, c *Config) {
	l := &c.Listen

	l.Address = defaultAddress
	f := m.field("address", `host:port to listen on, like ":8080" or "127.0.0.1:8080"`)
	if s, ok := f.str(); ok && checkAddress(f, s) {
		l.Address = s
	}

	l.ReadHeaderTimeout = defaultReadHeaderTimeout
	f = m.field("read_header_timeout", "a duration greater than 0 and at most 5m, like 10s")
	if v, ok := f.durationUpTo(maxReadHeaderTimeout); ok {
		l.ReadHeaderTimeout = v
	}

	l.DrainDelay = defaultDrainDelay
	f = m.field("drain_delay", "a duration from 0 to 5m, like 5s: longer than the load balancer takes to see /readyz fail")
	if v, ok := f.durationIn(0, maxDrainDelay); ok {
		l.DrainDelay = v
	}

	l.ShutdownTimeout = defaultShutdownTimeout
	f = m.field("shutdown_timeout", "a duration greater than 0 and at most 10m, like 30s")
	if v, ok := f.durationUpTo(maxShutdownTimeout); ok {
		l.ShutdownTimeout = v
	}

	f = m.field("max_header_bytes", "0 for the default (kerberos.max_token_bytes + 32768), or a number of bytes up to 16777216")
	if v, ok := f.intIn(0, maxMaxHeaderBytes); ok {
		l.MaxHeaderBytes = v
	}

	f = m.field("external_url", `the URL clients use to reach kerbgate, scheme and host only, like "https://sso.example.test"`)
	if s, ok := f.str(); ok {
		l.ExternalURL = parseExternalURL(f, s)
	}

	f = m.field("trusted_proxies", `a list of the load balancers' and reverse proxies' addresses as CIDRs, like "10.0.0.0/24" or "192.0.2.7/32"`)
	ps, items := f.strings(`a CIDR like "10.0.0.0/24", or one address`)
	for i, s := range ps {
		if p, ok := parseTrustedProxy(items[i], s); ok {
			l.TrustedProxies = append(l.TrustedProxies, p)
		}
	}
}

// parseExternalURL checks listen.external_url: an http or https URL of a host,
// without path, query, fragment or user information.
func parseExternalURL(f *field, s string) *url.URL {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		f.invalid("%s is not a URL", describe(f.val))
	case u.Scheme != "https" && u.Scheme != "http":
		f.invalid("%s has scheme %q, not https or http", describe(f.val), u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		f.invalid("%s has no host", describe(f.val))
	case u.User != nil:
		f.invalid("%s holds user information", describe(f.val))
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.ForceQuery:
		f.invalid("%s has a path, query or fragment; kerbgate's endpoints are at the root of its host", describe(f.val))
	default:
		return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
	}
	return nil
}

// parseTrustedProxy accepts a CIDR, or one address (a /32 or /128).
func parseTrustedProxy(f *field, s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			f.invalid("%s is neither a CIDR nor an IP address", describe(f.val))
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		f.invalid("%s is not a CIDR", describe(f.val))
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		f.invalid("%s has host bits set; did you mean %s?", describe(f.val), p.Masked())
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, true
}

// checkAddress reports whether s is host:port with a numeric port, reporting why not.
func checkAddress(f *field, s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		if _, numErr := strconv.Atoi(s); numErr == nil {
			f.errorf("%s is a port without a host; did you mean \":%s\"?", describe(f.val), s)
			return false
		}
		why := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			why = ae.Err
		}
		f.invalid("%s is not host:port (%s)", describe(f.val), why)
		return false
	}
	n, err := strconv.Atoi(port)
	switch {
	case port == "":
		f.invalid("%s has no port", describe(f.val))
	case err != nil:
		f.invalid("%s has port %q, which is not a number", describe(f.val), port)
	case n < 0 || n > 65535:
		f.invalid("%s has port %d, out of the range 0 to 65535", describe(f.val), n)
	default:
		return true
	}
	return false
}

// minHeaderBytes is the smallest max_header_bytes a file may set explicitly for a
// given kerberos.max_token_bytes.
// The token is counted in base64 characters, so the header needs the token plus
// "Authorization: Negotiate " and room for the request line and other headers.
func minHeaderBytes(maxTokenBytes int) int { return maxTokenBytes + 1024 }

// finishListen derives MaxHeaderBytes's default from kerberos.max_token_bytes and
// checks that an explicit value leaves room for the largest token.
func finishListen(d *decoder, c *Config) {
	tok := c.Kerberos.MaxTokenBytes
	if tok == 0 {
		return // kerberos.max_token_bytes is invalid; that was reported
	}
	if c.Listen.MaxHeaderBytes == 0 {
		c.Listen.MaxHeaderBytes = tok + headerSlack
		return
	}
	if need := minHeaderBytes(tok); c.Listen.MaxHeaderBytes < need {
		d.errorAt("listen.max_header_bytes", top,
			"%d is too small for kerberos.max_token_bytes %d; expected at least %d (max_token_bytes + 1024) so that the largest allowed token fits, or 0 for the default",
			c.Listen.MaxHeaderBytes, tok, need)
	}
}
