package config

import (
	"errors"
	"net"
	"strconv"
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
}

const (
	defaultAddress           = ":8080"
	defaultReadHeaderTimeout = 10 * time.Second
	maxReadHeaderTimeout     = 5 * time.Minute
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

	f = m.field("max_header_bytes", "0 for the default (kerberos.max_token_bytes + 32768), or a number of bytes up to 16777216")
	if v, ok := f.intIn(0, maxMaxHeaderBytes); ok {
		l.MaxHeaderBytes = v
	}
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
