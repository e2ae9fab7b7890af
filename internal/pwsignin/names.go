package pwsignin

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kerbgate/kerbgate/internal/krb/logon"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Bounds of the form's fields and Basic's credentials.
const (
	MaxNameBytes     = 256
	MaxPasswordChars = 256
)

// Names says which user names sign in: accounts of Realm, typed NAME,
// NETBIOS\NAME or NAME@REALM, and user principal names with one of UPNSuffixes
// (the realm's DNS name is always one: AD's implicit UPN, sAMAccountName@domain).
type Names struct {
	Realm string
	// NetBIOS is the domain's NetBIOS name ("EXAMPLE"); the realm's first label when
	// empty.
	NetBIOS     string
	UPNSuffixes []string
}

// Name is a user name as kerbgate reads it.
type Name struct {
	// User is what the KDC is asked for.
	User logon.User
	// Key names the account for counting before the KDC names it: lower case, the
	// realm's own suffix and domain prefix removed ("alice" for alice, EXAMPLE\Alice,
	// alice@example.test and ALICE@EXAMPLE.TEST).
	Key string
}

// Parse reads a typed user name. A refusal is password_form_invalid (empty, too
// long, control characters, a '/') or password_name_foreign (another domain).
func (n Names) Parse(s string) (Name, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Name{}, reason.New(reason.PasswordFormInvalid, "empty user name", "field", "username")
	case len(s) > MaxNameBytes:
		return Name{}, reason.New(reason.PasswordFormInvalid, "user name too long", "field", "username", "bytes", len(s), "max_bytes", MaxNameBytes)
	case !utf8.ValidString(s):
		return Name{}, reason.New(reason.PasswordFormInvalid, "user name is not UTF-8", "field", "username")
	case strings.ContainsFunc(s, unicode.IsControl):
		return Name{}, reason.New(reason.PasswordFormInvalid, "user name holds control characters", "field", "username")
	case strings.ContainsAny(s, "/"):
		// A '/' makes a service principal ("HTTP/host"), never a person.
		return Name{}, reason.New(reason.PasswordFormInvalid, "user name holds '/'", "field", "username")
	}
	dns := strings.ToLower(n.Realm)
	if domain, user, ok := strings.Cut(s, `\`); ok {
		if user == "" || strings.ContainsAny(user, `\@`) {
			return Name{}, reason.New(reason.PasswordFormInvalid, `user name is not DOMAIN\NAME`, "field", "username")
		}
		if !strings.EqualFold(domain, n.netbios()) && !strings.EqualFold(domain, n.Realm) {
			return Name{}, reason.New(reason.PasswordNameForeign, "user name of another domain", "domain", truncate(domain, 64))
		}
		return Name{User: logon.User{Name: user}, Key: strings.ToLower(user)}, nil
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, suffix := s[:i], strings.ToLower(s[i+1:])
		if user == "" || suffix == "" {
			return Name{}, reason.New(reason.PasswordFormInvalid, "user name is not NAME@DOMAIN", "field", "username")
		}
		upn := user + "@" + suffix
		switch {
		case suffix == dns:
			// AD's implicit UPN: NAME@domain is the account NAME of the domain (or
			// an explicit UPN equal to it); the KDC resolves either as enterprise.
			return Name{User: logon.User{Name: upn, Enterprise: true}, Key: strings.ToLower(user)}, nil
		case n.upnSuffix(suffix):
			return Name{User: logon.User{Name: upn, Enterprise: true}, Key: strings.ToLower(upn)}, nil
		}
		return Name{}, reason.New(reason.PasswordNameForeign, "user name of another domain or realm", "suffix", truncate(suffix, 64))
	}
	return Name{User: logon.User{Name: s}, Key: strings.ToLower(s)}, nil
}

// AccountKey is the counting key of an account the KDC named ("alice@EXAMPLE.TEST"
// → "alice"): the same key Parse gives the account's own name.
func (n Names) AccountKey(account string) string {
	name, realm, ok := strings.Cut(account, "@")
	if ok && !strings.EqualFold(realm, n.Realm) {
		return strings.ToLower(account)
	}
	return strings.ToLower(name)
}

func (n Names) netbios() string {
	if n.NetBIOS != "" {
		return n.NetBIOS
	}
	first, _, _ := strings.Cut(n.Realm, ".")
	return first
}

func (n Names) upnSuffix(s string) bool {
	for _, x := range n.UPNSuffixes {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
