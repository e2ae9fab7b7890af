package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Directory is the directory section: the Active Directory (LDAP) server kerbgate asks
// about accounts and groups. The section is optional: without it (or when it is empty)
// Enabled is false and every other field is zero.
type Directory struct {
	// Enabled is true when the file has a directory section.
	Enabled bool
	// URL is the server's URL with its port filled in: "ldaps://host:636" or
	// "ldap://host:389" when the file gives none. The scheme is in lower case.
	URL string
	// StartTLS upgrades an ldap:// connection to TLS with the StartTLS operation.
	StartTLS bool
	// CAFile is the absolute path of a PEM file of the CA certificates that sign the
	// server's certificate. Set whenever the connection uses TLS (ldaps:// or StartTLS).
	CAFile string
	// LegacyCommonName accepts a server certificate without subject alternative
	// names whose Common Name equals ServerName (Samba's self-made certificate is of
	// this kind); the chain is still verified against CAFile.
	LegacyCommonName bool
	// ServerName is the name the server's certificate must carry; the URL's host by
	// default.
	ServerName string
	// BaseDN is where searches start, like "DC=example,DC=test".
	BaseDN string
	// BindMethod is how kerbgate authenticates to the server: "simple" (BindDN and a
	// password, see Password) or "gssapi" (Keytab and Principal, in kerberos.realm).
	BindMethod string
	// BindDN is the distinguished name of the account a simple bind uses.
	BindDN string
	// PasswordFile is the absolute path of the file holding a simple bind's password.
	// Exactly one of PasswordFile and PasswordEnv is set for a simple bind.
	PasswordFile string
	// PasswordEnv is the name of the environment variable holding a simple bind's
	// password.
	PasswordEnv string
	// Keytab is the absolute path of the keytab a gssapi bind uses.
	Keytab string
	// Principal is the account a gssapi bind authenticates as, without a realm (the
	// realm is Kerberos.Realm).
	Principal string
	// CacheTTL is how long answers from the directory are cached; 60s by default, 0
	// disables the cache.
	CacheTTL time.Duration
	// Timeout bounds each exchange with the server; 5s by default.
	Timeout time.Duration
}

// Password returns the simple bind's password: the contents of PasswordFile without
// a trailing newline, or the value of the environment variable PasswordEnv. It is an
// error for the password to be empty (an LDAP simple bind with an empty password is an
// unauthenticated bind), or for the bind method not to use a password.
func (d Directory) Password() (string, error) {
	if d.PasswordFile == "" && d.PasswordEnv == "" {
		return "", errors.New("directory bind password: none configured (bind.method is not simple)")
	}
	return readSecret("directory bind password", d.PasswordFile, d.PasswordEnv)
}

const (
	defaultDirectoryCacheTTL = time.Minute
	maxDirectoryCacheTTL     = time.Hour
	defaultDirectoryTimeout  = 5 * time.Second
	maxDirectoryTimeout      = time.Minute
)

const (
	bindSimple = "simple"
	bindGSSAPI = "gssapi"
)

func decodeDirectory(m *mapping, c *Config) {
	if m.broken || len(m.order) == 0 {
		return // absent, empty, or not a mapping (reported)
	}
	d := &c.Directory
	d.Enabled = true

	urlField := m.field("url", `an LDAP URL like "ldaps://dc1.example.test" (ldaps:// or ldap://; the port is 636 or 389 by default)`)
	scheme, host := decodeDirectoryURL(urlField, d)

	startTLS := m.field("start_tls", "true or false")
	startTLSValid := true
	if v, ok := startTLS.bool(); ok {
		if v && scheme == "ldaps" {
			startTLS.errorf("true with an ldaps:// URL, which uses TLS already; expected start_tls: true only with ldap://")
		} else {
			d.StartTLS = v
		}
	} else if startTLS.set() {
		startTLSValid = false
	}
	// useTLS is known once the URL's scheme is.
	useTLS := scheme == "ldaps" || d.StartTLS
	const tlsOnly = "is set but the connection to the directory does not use TLS; expected %s only with ldaps:// or start_tls: true"

	f := m.field("ca_file", "a PEM file of the CA certificates that sign the directory server's certificate (relative paths are resolved against the configuration file's directory)")
	switch {
	case scheme != "" && !useTLS && f.set():
		f.errorf("%s "+tlsOnly, describe(f.val), "ca_file")
	case scheme != "" && useTLS && !f.required():
		// missing, reported
	default:
		if s, ok := f.str(); ok {
			if s == "" {
				f.invalid("empty path")
			} else if abs, shown := resolvedPath(f, s); checkCAFile(f, abs, shown) {
				d.CAFile = abs
			}
		}
	}

	d.ServerName = host
	f = m.field("server_name", "the host name the directory server's certificate carries; the host of url by default")
	if s, ok := f.str(); ok {
		switch {
		case scheme != "" && !useTLS:
			f.errorf("%s "+tlsOnly, describe(f.val), "server_name")
		case s == "":
			f.invalid("empty")
		case strings.ContainsFunc(s, unicode.IsSpace) || strings.ContainsAny(s, "/:@"):
			f.invalid("%s is not a host name", describe(f.val))
		default:
			d.ServerName = s
		}
	}

	f = m.field("tls_legacy_cn", "true or false")
	if v, ok := f.bool(); ok {
		if v && scheme != "" && !useTLS {
			f.errorf("true %s", fmt.Sprintf(tlsOnly, "tls_legacy_cn"))
		} else {
			d.LegacyCommonName = v
		}
	}

	f = m.field("base_dn", `the distinguished name searches start at, like "DC=example,DC=test"`)
	if f.required() {
		if s, ok := f.str(); ok {
			if why := checkDN(s); why != "" {
				f.invalid("%s is not a distinguished name (%s)", describe(f.val), why)
			} else {
				d.BaseDN = s
			}
		}
	}

	decodeBind(m.section("bind"), d)

	d.CacheTTL = defaultDirectoryCacheTTL
	f = m.field("cache_ttl", "a duration from 0 (no caching) to 1h, like 60s")
	if v, ok := f.durationIn(0, maxDirectoryCacheTTL); ok {
		d.CacheTTL = v
	}

	d.Timeout = defaultDirectoryTimeout
	f = m.field("timeout", "a duration greater than 0 and at most 1m, like 5s")
	if v, ok := f.durationUpTo(maxDirectoryTimeout); ok {
		d.Timeout = v
	}

	// A simple bind sends the password as is: never without TLS.
	if d.BindMethod == bindSimple && scheme == "ldap" && !d.StartTLS && startTLSValid {
		const msg = "simple bind needs TLS: use ldaps:// or start_tls: true"
		if startTLS.set() {
			startTLS.errorf("false with an ldap:// URL and bind.method simple would send the bind password in clear text; %s", msg)
		} else {
			urlField.errorf("%s with bind.method simple would send the bind password in clear text; %s", describe(urlField.val), msg)
		}
	}
}

// decodeDirectoryURL sets d.URL and returns the URL's scheme and host, or "" for both
// if the URL is missing or invalid (reported).
func decodeDirectoryURL(f *field, d *Directory) (scheme, host string) {
	if !f.required() {
		return "", ""
	}
	s, ok := f.str()
	if !ok {
		return "", ""
	}
	u, err := url.Parse(s)
	if err != nil {
		why := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			why = ue.Err.Error()
		}
		f.invalid("%s is not a URL (%s)", describe(f.val), why)
		return "", ""
	}
	scheme = strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case u.Scheme == "":
		f.invalid("%s has no scheme", describe(f.val))
	case scheme != "ldaps" && scheme != "ldap":
		f.invalid("%s has scheme %s", describe(f.val), u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		f.invalid("%s has no host", describe(f.val))
	case u.User != nil:
		f.invalid("%s contains a user name (the bind account is directory.bind)", describe(f.val))
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		f.invalid("%s has a path, query or fragment (the base DN is directory.base_dn)", describe(f.val))
	case port != "" && !validPort(port):
		f.invalid("%s has port %q, out of the range 1 to 65535", describe(f.val), port)
	default:
		if port == "" {
			port = "636"
			if scheme == "ldap" {
				port = "389"
			}
		}
		host = u.Hostname()
		d.URL = scheme + "://" + net.JoinHostPort(host, port)
		return scheme, host
	}
	return "", ""
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// checkCAFile reports whether path is a readable file holding at least one PEM
// CERTIFICATE block, every one of which parses, reporting why not.
func checkCAFile(f *field, path, shown string) bool {
	if !checkReadable(f, path, shown, f.expect) {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.errorf("%s cannot be read: %s; expected %s", shown, pathErrCause(err), f.expect).Err = err
		return false
	}
	certs := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			f.errorf("%s has a CERTIFICATE block that is not a valid certificate (%v); expected %s", shown, err, f.expect).Err = err
			return false
		}
		certs++
	}
	if certs == 0 {
		f.errorf("%s contains no PEM CERTIFICATE block; expected %s", shown, f.expect)
		return false
	}
	return true
}

// dnAttr matches an attribute type in a DN: a name or a numeric OID.
var dnAttr = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$`)

// checkDN returns why s is not a distinguished name, or "". It is a simple check of
// the RFC 4514 shape: comma-separated attribute=value pairs ('+' joins pairs of one
// RDN, a backslash escapes the next character).
func checkDN(s string) string {
	if strings.TrimSpace(s) == "" {
		return "empty"
	}
	for _, rdn := range splitUnescaped(s, ',') {
		for _, ava := range splitUnescaped(rdn, '+') {
			ava = strings.TrimSpace(ava)
			attr, val, ok := strings.Cut(ava, "=")
			attr = strings.TrimSpace(attr)
			switch {
			case ava == "":
				return "an empty component"
			case !ok:
				return fmt.Sprintf("%q is not attribute=value", ava)
			case !dnAttr.MatchString(attr):
				return fmt.Sprintf("%q is not an attribute name", attr)
			case strings.TrimSpace(val) == "":
				return fmt.Sprintf("%q has no value", ava)
			}
		}
	}
	return ""
}

// splitUnescaped splits s at each sep not escaped by a backslash.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// envName matches a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func decodeBind(m *mapping, d *Directory) {
	m.reject("password", "passwords do not belong in the configuration file; expected password_file or password_env")

	method := m.field("method", "simple (a DN and a password) or gssapi (a keytab)")
	if method.required() {
		if s, ok := method.str(); ok {
			switch v := strings.ToLower(s); v {
			case bindSimple:
				d.BindMethod = v
			case bindGSSAPI:
				// Measured against Samba 4.17: a GSSAPI bind is refused without LDAP
				// sign/seal, which go-ldap cannot provide (internal/directory/README.md).
				method.errorf("gssapi is not supported yet: the domain controller requires LDAP signing or sealing after a GSSAPI bind, which kerbgate's LDAP client cannot do; expected simple (with ldaps:// or start_tls: true)")
			default:
				method.invalid("%s is not a bind method", describe(method.val))
			}
		}
	}

	// Fields of the other method are reported; fields of an unknown method are checked
	// on their own.
	only := func(f *field, want string) bool {
		if d.BindMethod != "" && d.BindMethod != want && f.set() {
			f.errorf("set with bind.method %s; expected %s only with bind.method %s", d.BindMethod, f.path[len(m.path)+1:], want)
			return false
		}
		return true
	}

	dn := m.field("dn", `the distinguished name of the account kerbgate binds as, like "CN=svc-ldap,CN=Users,DC=example,DC=test"`)
	if only(dn, bindSimple) && (d.BindMethod != bindSimple || dn.required()) {
		if s, ok := dn.str(); ok {
			if why := checkDN(s); why != "" {
				dn.invalid("%s is not a distinguished name (%s)", describe(dn.val), why)
			} else {
				d.BindDN = s
			}
		}
	}

	pwFile := m.field("password_file", "a file holding the bind password that only kerbgate's user can read (relative paths are resolved against the configuration file's directory)")
	pwEnv := m.field("password_env", "the name of an environment variable holding the bind password, like KERBGATE_LDAP_PASSWORD")
	if d.BindMethod == bindSimple {
		switch {
		case pwFile.set() && pwEnv.set():
			pwEnv.errorf("set together with password_file; expected exactly one of password_file or password_env")
		case !pwFile.set() && !pwEnv.set() && !m.broken:
			m.d.errorf(m.at, m.path, "missing password_file or password_env; expected exactly one of them with bind.method simple")
		}
	}
	if only(pwFile, bindSimple) {
		d.PasswordFile = secretFile(pwFile)
	}
	if only(pwEnv, bindSimple) {
		d.PasswordEnv = secretEnv(pwEnv)
	}

	keytab := m.field("keytab", "a readable keytab file with the key of directory.bind.principal")
	if only(keytab, bindGSSAPI) && (d.BindMethod != bindGSSAPI || keytab.required()) {
		if s, ok := keytab.str(); ok {
			if s == "" {
				keytab.invalid("empty path")
			} else if abs, shown := resolvedPath(keytab, s); checkKeytab(keytab, abs, shown) {
				d.Keytab = abs
			}
		}
	}

	principal := m.field("principal", `the account kerbgate binds as, without @REALM (the realm is kerberos.realm), like "svc-gw"`)
	if only(principal, bindGSSAPI) && (d.BindMethod != bindGSSAPI || principal.required()) {
		if s, ok := principal.str(); ok {
			switch {
			case s == "":
				principal.invalid("empty")
			case strings.Contains(s, "@"):
				principal.errorf("%s includes a realm; expected the name without @REALM (the realm is kerberos.realm): %q", describe(principal.val), s[:strings.IndexByte(s, '@')])
			case strings.ContainsFunc(s, unicode.IsSpace):
				principal.invalid("%s contains spaces", describe(principal.val))
			default:
				d.Principal = s
			}
		}
	}
}
