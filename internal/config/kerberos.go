package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// Kerberos is the kerberos section: which tickets the gateway accepts.
type Kerberos struct {
	// Realm is the Kerberos realm of the gateway's service principals, in upper case.
	Realm string
	// TrustedRealms are the realms, besides Realm, whose users may sign in: the
	// realms (upper case) of trusted domains and forests. Empty by default: a ticket
	// whose client realm is another is refused with foreign_realm.
	TrustedRealms []string
	// Keytabs are the absolute paths of the keytab files holding the service keys, in
	// the order given. Relative paths in the file are resolved against its directory.
	Keytabs []string
	// SPNs are the accepted service principal names, service/host without a realm.
	SPNs []string
	// Enctypes are the accepted encryption type numbers (RFC 3961 etypes), in the order
	// given; by default 18, 17, 20, 19 (the AES ones). kcrypto.EnctypeName names them.
	Enctypes []int32
	// ClockSkew is the largest accepted difference between clocks; 5m by default.
	ClockSkew time.Duration
	// MaxTokenBytes bounds the base64 token in the Authorization header; 65536 by default.
	MaxTokenBytes int
	// ReplayCacheSize is how many authenticators the replay cache holds; 1,000,000 by default.
	ReplayCacheSize int
	// KeytabReloadInterval is how often the keytab files are checked for changes;
	// 5s by default, 0 turns reloading off.
	KeytabReloadInterval time.Duration
	// RetainOldKeys is how long keys a reloaded keytab no longer holds stay usable;
	// 10h (AD's default maximum ticket lifetime) by default.
	RetainOldKeys time.Duration
	// SPNCheck is what the start-up SPN check does with a problem (needs the
	// directory section): "warn" (the default) logs it, "fail" refuses to start,
	// "off" skips the check.
	SPNCheck string
}

const (
	defaultClockSkew       = 5 * time.Minute
	maxClockSkew           = time.Hour
	defaultMaxTokenBytes   = 64 << 10
	minMaxTokenBytes       = 1 << 10
	maxMaxTokenBytes       = 1 << 20
	defaultReplayCacheSize = 1_000_000
	minReplayCacheSize     = 1000
)

// defaultEnctypes are accepted when the file does not say: the AES ones, strongest first.
var defaultEnctypes = []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1, kcrypto.AES256SHA384, kcrypto.AES128SHA256}

func enctypeExpect() string {
	return "encryption type names, each one of " + strings.Join(kcrypto.SupportedEnctypeNames(), ", ") + " (or the aliases aes256-cts, aes128-cts, arcfour-hmac)"
}

func decodeKerberos(m *mapping, c *Config) {
	k := &c.Kerberos
	decodeRealm(m.field("realm", "the Kerberos realm in upper case, like EXAMPLE.TEST"), k)
	decodeTrustedRealms(m.field("trusted_realms", "a list of realms in upper case, like PARTNER.EXAMPLE, other than kerberos.realm"), k)
	decodeKeytabs(m.field("keytabs", "a list of keytab files"), k)
	decodeSPNs(m.field("spns", `a list of service principal names like "HTTP/sso.example.test"`), k)
	decodeEnctypes(m.field("enctypes", "a list of "+enctypeExpect()), k)

	k.ClockSkew = defaultClockSkew
	f := m.field("clock_skew", "a duration greater than 0 and at most 1h, like 5m")
	if v, ok := f.durationUpTo(maxClockSkew); ok {
		k.ClockSkew = v
	}

	k.MaxTokenBytes = defaultMaxTokenBytes
	f = m.field("max_token_bytes", fmt.Sprintf("an integer from %d to %d", minMaxTokenBytes, maxMaxTokenBytes))
	if f.set() {
		k.MaxTokenBytes = 0 // invalid unless proven otherwise; finishListen skips its check
		if v, ok := f.intIn(minMaxTokenBytes, maxMaxTokenBytes); ok {
			k.MaxTokenBytes = v
		}
	}

	k.ReplayCacheSize = defaultReplayCacheSize
	f = m.field("replay_cache_size", fmt.Sprintf("a number of entries of at least %d", minReplayCacheSize))
	if v, ok := f.intIn(minReplayCacheSize, maxInt); ok {
		k.ReplayCacheSize = v
	}

	k.KeytabReloadInterval = 5 * time.Second
	f = m.field("keytab_reload_interval", "a duration from 0 (no reloading) to 1h, like 5s")
	if v, ok := f.durationIn(0, time.Hour); ok {
		k.KeytabReloadInterval = v
	}
	k.SPNCheck = "warn"
	f = m.field("spn_check", "warn, fail or off")
	if v, ok := f.str(); ok {
		switch v {
		case "warn", "fail", "off":
			k.SPNCheck = v
		default:
			f.invalid("%s is not an SPN check mode", describe(f.val))
		}
	}

	k.RetainOldKeys = 10 * time.Hour
	f = m.field("retain_old_keys", "a duration from 0 to 720h, like 10h (the realm's maximum ticket lifetime)")
	if v, ok := f.durationIn(0, 720*time.Hour); ok {
		k.RetainOldKeys = v
	}
}

const maxInt = int(^uint(0) >> 1)

func decodeRealm(f *field, k *Kerberos) {
	if !f.required() {
		return
	}
	if s, ok := f.str(); ok && checkRealm(f, s) {
		k.Realm = s
	}
}

// checkRealm reports whether s is a realm name as AD writes it, reporting why not.
func checkRealm(f *field, s string) bool {
	switch {
	case s == "":
		f.invalid("empty")
	case strings.ContainsFunc(s, unicode.IsSpace):
		f.invalid("%s contains spaces", describe(f.val))
	case strings.ContainsAny(s, "@/"):
		f.invalid("%s contains %q", describe(f.val), s[strings.IndexAny(s, "@/")])
	case strings.ToUpper(s) != s:
		f.errorf("%s is not upper case; expected the realm in upper case: %q", describe(f.val), strings.ToUpper(s))
	default:
		return true
	}
	return false
}

// decodeTrustedRealms reads kerberos.trusted_realms (after kerberos.realm). Realms
// are compared exactly, as Kerberos does, and AD's are upper case: so must these be.
// An empty list is the default.
func decodeTrustedRealms(f *field, k *Kerberos) {
	if !f.set() || (f.val.Kind == yaml.SequenceNode && len(f.val.Content) == 0) {
		return
	}
	realms, items := f.strings("a realm in upper case")
	seen := map[string]string{} // realm -> field path of its first item
	for i, s := range realms {
		it := items[i]
		if !checkRealm(it, s) {
			continue
		}
		if s == k.Realm {
			it.errorf("%s is kerberos.realm itself; expected only the realms of other, trusted domains (the own realm is always accepted)", describe(it.val))
			continue
		}
		if first, dup := seen[s]; dup {
			it.errorf("%s is a duplicate of %s; expected each realm once", describe(it.val), first)
			continue
		}
		seen[s] = it.path
		k.TrustedRealms = append(k.TrustedRealms, s)
	}
}

func decodeKeytabs(f *field, k *Kerberos) {
	if !f.required() {
		return
	}
	paths, items := f.strings("the path of a readable keytab file")
	seen := map[string]string{} // absolute path -> field path of its first item
	for i, p := range paths {
		it := items[i]
		if p == "" {
			it.invalid("empty path")
			continue
		}
		abs, shown := resolvedPath(it, p)
		if first, dup := seen[abs]; dup {
			it.errorf("%s is the same file as %s; expected each keytab once", shown, first)
			continue
		}
		seen[abs] = it.path
		if checkKeytab(it, abs, shown) {
			k.Keytabs = append(k.Keytabs, abs)
		}
	}
}

// checkKeytab reports whether path is a readable regular file, reporting why not. It
// does not read the file: keys are loaded by the server.
func checkKeytab(f *field, path, shown string) bool {
	return checkReadable(f, path, shown, "a readable keytab file (relative paths are resolved against the configuration file's directory)")
}

// checkReadable reports whether path is a regular file kerbgate can open, reporting
// why not as "SHOWN why; expected EXPECT". It does not read the file.
func checkReadable(f *field, path, shown, expect string) bool {
	st, err := os.Stat(path)
	if err != nil {
		var why string
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "does not exist"
		case errors.Is(err, fs.ErrPermission):
			why = "cannot be read: permission denied"
		default:
			why = "cannot be read: " + pathErrCause(err)
		}
		f.errorf("%s %s; expected %s", shown, why, expect).Err = err
		return false
	}
	switch {
	case st.IsDir():
		f.errorf("%s is a directory; expected %s", shown, expect)
		return false
	case !st.Mode().IsRegular():
		f.errorf("%s is not a regular file (%s); expected %s", shown, st.Mode().Type(), expect)
		return false
	}
	file, err := os.Open(path)
	if err != nil {
		why := "cannot be read: " + pathErrCause(err)
		if errors.Is(err, fs.ErrPermission) {
			why = "cannot be read: permission denied"
		}
		f.errorf("%s %s; expected %s", shown, why, expect).Err = err
		return false
	}
	file.Close()
	return true
}

// resolvedPath resolves a path from the file and describes it for messages: the value
// as written, and what it resolved to if that differs.
func resolvedPath(f *field, p string) (abs, shown string) {
	abs = f.d.resolvePath(p)
	shown = describe(f.val)
	if abs != p {
		shown += " (resolved to " + abs + ")"
	}
	return abs, shown
}

func pathErrCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func decodeSPNs(f *field, k *Kerberos) {
	if !f.required() {
		return
	}
	spns, items := f.strings("a service principal name service/host, like \"HTTP/sso.example.test\"")
	seen := map[string]string{} // lower-case SPN -> field path of its first item
	for i, s := range spns {
		it := items[i]
		if at := strings.IndexByte(s, '@'); at >= 0 {
			it.errorf("%s includes a realm; expected service/host without @REALM (the realm is kerberos.realm): %q", describe(it.val), s[:at])
			continue
		}
		service, host, ok := strings.Cut(s, "/")
		switch {
		case s == "":
			it.invalid("empty")
			continue
		case strings.ContainsFunc(s, unicode.IsSpace):
			it.invalid("%s contains spaces", describe(it.val))
			continue
		case !ok || service == "" || host == "" || strings.Contains(host, "/"):
			it.invalid("%s is not of the form service/host", describe(it.val))
			continue
		}
		key := strings.ToLower(s)
		if first, dup := seen[key]; dup {
			it.errorf("%s is a duplicate of %s (SPNs compare case-insensitively); expected each SPN once", describe(it.val), first)
			continue
		}
		seen[key] = it.path
		k.SPNs = append(k.SPNs, s)
	}
}

func decodeEnctypes(f *field, k *Kerberos) {
	if !f.set() {
		k.Enctypes = append([]int32(nil), defaultEnctypes...)
		return
	}
	names, items := f.strings("an encryption type name")
	seen := map[int32]string{} // etype -> field path of its first item
	for i, s := range names {
		it := items[i]
		e, ok := kcrypto.LookupEnctype(s)
		if !ok {
			switch lower := strings.ToLower(s); {
			case strings.HasPrefix(lower, "des"):
				it.errorf("%s: DES is broken and not supported; expected %s", describe(it.val), enctypeExpect())
			default:
				all := append(kcrypto.SupportedEnctypeNames(), kcrypto.EnctypeAliases()...)
				if guess := closest(s, all); guess != "" {
					it.errorf("%s is not a supported encryption type; did you mean %s? expected %s", describe(it.val), guess, enctypeExpect())
				} else {
					it.errorf("%s is not a supported encryption type; expected %s", describe(it.val), enctypeExpect())
				}
			}
			continue
		}
		if first, dup := seen[e]; dup {
			it.errorf("%s is the same encryption type as %s (%s); expected each once", describe(it.val), first, kcrypto.EnctypeName(e))
			continue
		}
		seen[e] = it.path
		k.Enctypes = append(k.Enctypes, e)
	}
}
