// Package keyring holds the service keys kerbgate accepts tickets with: every
// principal, key version (kvno) and enctype found in one or more keytab files.
//
// It owns reading keytabs and answering "which keys could decrypt a ticket for this
// SPN, kvno and enctype". It must not decide which SPNs or enctypes are allowed (the
// acceptor does) and never logs or exposes key material.
package keyring

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

// Entry is one key from a keytab.
type Entry struct {
	Principal string // "HTTP/sso.example.test" (no realm), as written in the keytab
	Realm     string
	KVNO      uint32
	EType     int32
	Key       *kcrypto.Key
	Source    string // keytab file it came from
	// RetainedUntil is set on keys kept after their keytab dropped them (see
	// Retaining); zero for keys in the current files.
	RetainedUntil time.Time
}

// Keyring is an immutable set of keys. Build a new one to change keys.
//
// Lookups scan the entries with case-insensitive comparison (AD treats service
// principal names and realms case-insensitively). Keytabs hold tens of keys, so a scan
// is faster than hashing a lower-cased copy of the name and allocates nothing.
type Keyring struct {
	entries []Entry
}

// Load reads keytab files into a keyring. Keys of enctypes kcrypto cannot use (DES)
// are skipped; a keytab with no usable key is an error naming the file.
func Load(paths ...string) (*Keyring, error) {
	kr := &Keyring{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("keytab %s: %w", p, err)
		}
		if len(b) == 2 && b[0] == 5 {
			return nil, fmt.Errorf("keytab %s: no usable keys (the keytab is empty)", p)
		}
		kt := new(keytab.Keytab)
		if err := kt.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("keytab %s: not a keytab file: %w", p, err)
		}
		n := 0
		for _, e := range kt.Entries {
			k, err := kcrypto.NewKey(e.Key.KeyType, e.Key.KeyValue)
			if err != nil {
				continue
			}
			kvno := e.KVNO
			if kvno == 0 {
				kvno = uint32(e.KVNO8)
			}
			kr.entries = append(kr.entries, Entry{
				Principal: strings.Join(e.Principal.Components, "/"),
				Realm:     e.Principal.Realm,
				KVNO:      kvno,
				EType:     e.Key.KeyType,
				Key:       k,
				Source:    p,
			})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("keytab %s: no usable keys (only DES or empty)", p)
		}
	}
	return kr, nil
}

func (e *Entry) is(name, realm string) bool {
	return strings.EqualFold(e.Principal, name) && strings.EqualFold(e.Realm, realm)
}

// Entries returns every key's metadata (the keys themselves stay inside).
func (kr *Keyring) Entries() []Entry { return kr.entries }

// HasPrincipal reports whether any key exists for name@realm.
func (kr *Keyring) HasPrincipal(name, realm string) bool {
	for i := range kr.entries {
		if kr.entries[i].is(name, realm) {
			return true
		}
	}
	return false
}

// Find returns the keys for name@realm with the given kvno and enctype; kvno 0 means
// any version (a ticket may omit its kvno). When none match, kvnos lists the key
// versions held for that principal and enctype (for the refusal's facts), and
// principalKnown says whether the principal has any key at all.
func (kr *Keyring) Find(name, realm string, kvno uint32, etype int32) (keys []*kcrypto.Key, kvnos []uint32, principalKnown bool) {
	for i := range kr.entries {
		e := &kr.entries[i]
		if !e.is(name, realm) {
			continue
		}
		principalKnown = true
		if e.EType != etype {
			continue
		}
		if kvno == 0 || e.KVNO == kvno {
			keys = append(keys, e.Key)
		} else {
			kvnos = append(kvnos, e.KVNO)
		}
	}
	if len(keys) == 0 {
		sort.Slice(kvnos, func(a, b int) bool { return kvnos[a] < kvnos[b] })
	}
	return keys, kvnos, principalKnown
}

// KVNOs returns the distinct key versions held for name@realm, ascending.
func (kr *Keyring) KVNOs(name, realm string) []uint32 {
	var out []uint32
	for i := range kr.entries {
		if e := &kr.entries[i]; e.is(name, realm) && !slices.Contains(out, e.KVNO) {
			out = append(out, e.KVNO)
		}
	}
	slices.Sort(out)
	return out
}

// ETypes returns the enctypes held for name@realm.
func (kr *Keyring) ETypes(name, realm string) []int32 {
	var out []int32
	for i := range kr.entries {
		if e := &kr.entries[i]; e.is(name, realm) && !slices.Contains(out, e.EType) {
			out = append(out, e.EType)
		}
	}
	return out
}

// New builds a keyring from entries already in memory (tests, and keys fetched by
// other means than keytab files).
func New(entries ...Entry) *Keyring {
	return &Keyring{entries: append([]Entry(nil), entries...)}
}
