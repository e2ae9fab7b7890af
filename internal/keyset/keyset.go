// Package keyset holds the secret keys every node of a farm shares for what kerbgate
// puts in browsers' cookies: values are authenticated (HMAC-SHA256) with the newest
// key and verified with any key of the set, so keys rotate without logging anyone out.
//
// It owns the key file format, the MAC, and making a key file with one fresh key
// (LoadOrCreate). It must not know what the values mean (session ids, OIDC state),
// and never logs or returns key material.
//
// The file holds one key per line, base64 (standard or URL alphabet), at least 32
// bytes each; the first line signs, every line verifies; '#' starts a comment. To
// rotate: add a new first line on every node, wait until values signed with the old
// key have expired, then remove it.
package keyset

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// MinKeyBytes is the shortest key accepted.
const MinKeyBytes = 32

// Set is a loaded key set. It is immutable and safe for concurrent use.
type Set struct {
	keys  [][]byte
	ids   []string     // short public ids of the keys, for logs
	pools []*sync.Pool // of *macState, one for each key
}

// Load reads a key file.
func Load(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(string(b))
}

// LoadOrCreate reads the key file at path, making it first (mode 0600, one fresh
// key) when it does not exist; log, when not nil, hears that it was made. An existing
// file is never changed.
func LoadOrCreate(path string, log *slog.Logger) (*Set, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := fmt.Fprintf(f, "# kerbgate session cookie keys (made %s); see store.cookie_keys_file\n%s\n",
			time.Now().UTC().Format(time.RFC3339), NewKeyLine())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, werr
		}
		if log != nil {
			log.Info("made the cookie key file", "path", path)
		}
	case !errors.Is(err, os.ErrExist):
		return nil, err
	}
	return Load(path)
}

// Parse reads key file content; errors name the line, never the key.
func Parse(content string) (*Set, error) {
	s := &Set{}
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := decode(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not base64", i+1)
		}
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("line %d: key of %d bytes; expected at least %d", i+1, len(k), MinKeyBytes)
		}
		id := sha256.Sum256(append([]byte("kerbgate-key-id\x00"), k...))
		s.keys = append(s.keys, k)
		s.pools = append(s.pools, &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, k)} }})
		s.ids = append(s.ids, base64.RawURLEncoding.EncodeToString(id[:4]))
	}
	if len(s.keys) == 0 {
		return nil, errors.New("no keys")
	}
	return s, nil
}

func decode(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Random returns a set of one fresh random key (a single node without a key file).
func Random() *Set {
	k := make([]byte, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	s, _ := Parse(base64.StdEncoding.EncodeToString(k))
	return s
}

// NewKeyLine returns a fresh key as a line for the key file.
func NewKeyLine() string {
	k := make([]byte, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// IDs are short public identifiers of the keys, newest first, for logs.
func (s *Set) IDs() []string { return append([]string(nil), s.ids...) }

const tagLen = 16 // bytes of HMAC-SHA256 kept: 128-bit forgery resistance

// tagChars is a tag's length in base64url without padding.
var tagChars = base64.RawURLEncoding.EncodedLen(tagLen)

// strictURL decodes tags: one encoding per tag, so no two strings open the same way.
var strictURL = base64.RawURLEncoding.Strict()

// Seal returns value + "." + a MAC of (purpose, value) under the newest key. The
// purpose keeps values of one kind from being accepted as another.
func (s *Set) Seal(purpose, value string) string {
	var tag [tagLen]byte
	s.mac(0, purpose, value, &tag)
	return value + "." + base64.RawURLEncoding.EncodeToString(tag[:])
}

// Open verifies a sealed value against every key and returns the value. It
// allocates nothing: forward-auth opens a cookie on every request.
func (s *Set) Open(purpose, sealed string) (string, bool) {
	i := strings.LastIndexByte(sealed, '.')
	if i < 0 || len(sealed)-i-1 != tagChars {
		return "", false
	}
	value := sealed[:i]
	var got, want [tagLen]byte
	if n, err := strictURL.Decode(got[:], []byte(sealed[i+1:])); err != nil || n != tagLen {
		return "", false
	}
	ok := false
	for k := range s.keys {
		// Every key is tried, so the time taken does not say which one matched.
		s.mac(k, purpose, value, &want)
		if hmac.Equal(got[:], want[:]) {
			ok = true
		}
	}
	return value, ok
}

// macState is one key's HMAC with its scratch space, kept in the set's pool for
// the key: hmac.New for every MAC allocated a few hundred bytes and keyed SHA-256
// twice.
type macState struct {
	h   hash.Hash
	msg []byte
	sum []byte
}

// mac writes the tag of (purpose, value) under key k into tag.
func (s *Set) mac(k int, purpose, value string, tag *[tagLen]byte) {
	m := s.pools[k].Get().(*macState)
	m.msg = append(append(append(m.msg[:0], purpose...), 0), value...)
	m.h.Reset()
	m.h.Write(m.msg)
	m.sum = m.h.Sum(m.sum[:0])
	copy(tag[:], m.sum)
	if cap(m.msg) <= 4096 { // a huge value does not stay in the pool
		s.pools[k].Put(m)
	}
}
