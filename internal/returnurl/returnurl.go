// Package returnurl decides whether a URL kerbgate is asked to send a browser back
// to (forward-auth's sign-in `rd`, the page a proxy was protecting) may be used: it
// must be an absolute http(s) URL in one plain form, on a host of an allowlist of
// domains. Anything a browser, a proxy and Go's parser could read differently —
// user information, backslashes, spaces and control characters, a fragment, a
// percent-encoded or trailing-dot host, a relative or scheme-relative URL — is
// refused outright, so that the host checked is the host the browser goes to.
//
// It owns the parsing and the matching. It must not know HTTP handlers, logging or
// configuration files: it is given the domains, and a string.
package returnurl

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxLength bounds a return URL.
const MaxLength = 2048

// Allowlist is the hosts a return URL may point at. An entry "app.example.com" is
// that host only; ".example.com" is example.com and every host under it. Ports are
// not compared: a host is one party whatever its port.
type Allowlist struct {
	exact  map[string]bool
	suffix []string // ".example.com"
}

// New returns the allowlist of domains (entries as above, any case).
func New(domains []string) Allowlist {
	a := Allowlist{exact: map[string]bool{}}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if strings.HasPrefix(d, ".") {
			a.suffix = append(a.suffix, d)
			a.exact[d[1:]] = true
			continue
		}
		a.exact[d] = true
	}
	return a
}

// Allows reports whether host (a host name, no port, lower case) is on the list.
func (a Allowlist) Allows(host string) bool {
	if a.exact[host] {
		return true
	}
	for _, s := range a.suffix {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// Check parses raw and returns it when it is a return URL the allowlist allows;
// otherwise the error says why, in words fit for a log line.
func (a Allowlist) Check(raw string) (*url.URL, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if !a.Allows(u.Hostname()) {
		return nil, fmt.Errorf("host %s is not in the allowed return domains", u.Hostname())
	}
	return u, nil
}

// Parse reads raw as a return URL in plain form, whatever its host: absolute, http
// or https (http only for local and .test hosts), a lower-case host name or address
// without user information, percent signs or a trailing dot, a valid port, no
// fragment, and no byte that parsers disagree on.
func Parse(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("empty")
	}
	if len(raw) > MaxLength {
		return nil, fmt.Errorf("longer than %d bytes", MaxLength)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '\\' || c == '#' {
			return nil, fmt.Errorf("contains %q at byte %d", c, i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL")
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("scheme %q; expected https", u.Scheme)
	case u.Opaque != "" || u.Host == "" || host == "":
		return nil, fmt.Errorf("no host")
	case u.User != nil || strings.Contains(u.Host, "@"):
		return nil, fmt.Errorf("user information")
	case strings.ContainsAny(u.Host, "%") || strings.HasSuffix(host, ".") || host != strings.ToLower(host):
		return nil, fmt.Errorf("host %q not in plain form", u.Host)
	case u.Port() != "" && !validPort(u.Port()):
		return nil, fmt.Errorf("port %q", u.Port())
	case u.Path != "" && !strings.HasPrefix(u.Path, "/"):
		return nil, fmt.Errorf("path does not start with /")
	case u.Scheme == "http" && !PlainHTTPHost(host):
		return nil, fmt.Errorf("http to %s; expected https (plain http only for localhost, loopback and .test hosts)", host)
	}
	return u, nil
}

// PlainHTTPHost reports whether a return URL may use plain http for host: local or
// test hosts only.
func PlainHTTPHost(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasSuffix(host, ".test")
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}
