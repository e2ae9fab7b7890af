// Package keyring holds the service keys kerbgate accepts tickets with: every
// principal, key version (kvno) and enctype found in one or more keytab files.
//
// It owns reading keytabs and answering "which keys could decrypt a ticket for this
// SPN, kvno and enctype". It must not decide which SPNs or enctypes are allowed (the
// acceptor does) and never logs or exposes key material.
package keyring

import (
	"fmt"
	"sort"
	"strings"

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
}

// Keyring is an immutable set of keys. Build a new one to change keys.
type Keyring struct {
	entries []Entry
	// byPrincipal indexes entries by lower-cased "principal@REALM"; AD treats
	// service principal names case-insensitively.
	byPrincipal map[string][]int
}

// Load reads keytab files into a keyring. Keys of enctypes kcrypto cannot use (DES)
// are skipped; a keytab with no usable key is an error naming the file.
func Load(paths ...string) (*Keyring, error) {
	kr := &Keyring{byPrincipal: map[string][]int{}}
	for _, p := range paths {
		kt, err := keytab.Load(p)
		if err != nil {
			return nil, fmt.Errorf("keytab %s: %w", p, err)
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
			kr.add(Entry{
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

func (kr *Keyring) add(e Entry) {
	id := principalKey(e.Principal, e.Realm)
	kr.byPrincipal[id] = append(kr.byPrincipal[id], len(kr.entries))
	kr.entries = append(kr.entries, e)
}

func principalKey(name, realm string) string {
	return strings.ToLower(name) + "@" + strings.ToLower(realm)
}

// Entries returns every key's metadata (the keys themselves stay inside).
func (kr *Keyring) Entries() []Entry { return kr.entries }

// HasPrincipal reports whether any key exists for name@realm.
func (kr *Keyring) HasPrincipal(name, realm string) bool {
	return len(kr.byPrincipal[principalKey(name, realm)]) > 0
}

// Find returns the keys for name@realm with the given kvno and enctype. When none
// match, kvnos lists the key versions held for that principal and enctype (for the
// refusal's facts), and principalKnown says whether the principal has any key.
func (kr *Keyring) Find(name, realm string, kvno uint32, etype int32) (keys []*kcrypto.Key, kvnos []uint32, principalKnown bool) {
	idx := kr.byPrincipal[principalKey(name, realm)]
	for _, i := range idx {
		e := &kr.entries[i]
		if e.EType != etype {
			continue
		}
		if e.KVNO == kvno {
			keys = append(keys, e.Key)
		} else {
			kvnos = append(kvnos, e.KVNO)
		}
	}
	if len(keys) == 0 {
		sort.Slice(kvnos, func(a, b int) bool { return kvnos[a] < kvnos[b] })
	}
	return keys, kvnos, len(idx) > 0
}

// ETypes returns the enctypes held for name@realm.
func (kr *Keyring) ETypes(name, realm string) []int32 {
	var out []int32
	seen := map[int32]bool{}
	for _, i := range kr.byPrincipal[principalKey(name, realm)] {
		if e := kr.entries[i].EType; !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
