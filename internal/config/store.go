package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kerbgate/kerbgate/internal/keyset"
)

// Store is the store section: where kerbgate keeps its state (sessions, one-time
// tokens) across restarts: an embedded file (the default) or Redis (Redis set).
type Store struct {
	// Path is the absolute path of the database file; "kerbgate.db" in the
	// configuration file's directory by default. Relative paths in the file are
	// resolved against that directory. Its parent directory exists; the file itself
	// need not. It is "" when Redis is set.
	Path string
	// CookieKeysFile holds the keys that authenticate kerbgate's session cookies
	// (see package keyset); every node of a farm needs the same file. Empty: a key
	// file made on first start next to Path.
	CookieKeysFile string
	// Redis is the store.redis section, nil without one. When set, tokens, sessions
	// and the replay cache live in Redis, shared by every node of a farm.
	Redis *Redis
}

const defaultStorePath = "kerbgate.db"

func decodeStore(m *mapping, c *Config) {
	// The default is in the configuration file's directory, which exists when the file
	// was loaded from it.
	c.Store.Path = m.d.resolvePath(defaultStorePath)

	kf := m.field("cookie_keys_file", "a file of base64 keys, one per line, the first signing (kerbgate-keygen: head -c 32 /dev/urandom | base64)")
	if s, ok := kf.str(); ok {
		abs, shown := resolvedPath(kf, s)
		if checkReadable(kf, abs, shown, kf.expect) {
			if _, err := keyset.Load(abs); err != nil {
				kf.errorf("%s: %v; expected %s", shown, err, kf.expect)
			} else {
				c.Store.CookieKeysFile = abs
			}
		}
	}

	f := m.field("path", "the path of the database file, in an existing directory (relative paths are resolved against the configuration file's directory)")
	decodeRedis(m.section("redis"), &c.Store, f)
	if c.Store.Redis != nil {
		c.Store.Path = ""
		if !kf.set() {
			m.d.errorAt("store.redis", m.at, "a farm needs store.cookie_keys_file too: every node must share the keys of the session cookies, or a cookie set by one node is refused by the others; expected %s", kf.expect)
		}
		return
	}
	s, ok := f.str()
	if !ok {
		return
	}
	if s == "" {
		f.invalid("empty path")
		return
	}
	abs, shown := resolvedPath(f, s)
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		f.errorf("%s is a directory; expected %s", shown, f.expect)
		return
	}
	parent := filepath.Dir(abs)
	st, err := os.Stat(parent)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.errorf("%s is in %s, which does not exist; expected %s", shown, parent, f.expect).Err = err
		return
	case err != nil:
		f.errorf("%s is in %s, which cannot be read: %s; expected %s", shown, parent, pathErrCause(err), f.expect).Err = err
		return
	case !st.IsDir():
		f.errorf("%s is in %s, which is not a directory; expected %s", shown, parent, f.expect)
		return
	}
	c.Store.Path = abs
}
