package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Redis is the store.redis section: a Redis shared by the nodes of a farm. When it
// is set, tokens, sessions and the acceptor's replay cache live in Redis and
// Store.Path is "".
type Redis struct {
	// Addrs holds one host:port for a single server (from url or addrs), several for
	// a Redis Cluster, or the Sentinels' addresses when MasterName is set.
	Addrs []string
	// MasterName is the name of the master the Sentinels monitor ("" without
	// Sentinel).
	MasterName string
	// Username is the ACL user ("" for the default user).
	Username string
	// PasswordFile is the absolute path of the file holding the password, or "".
	// At most one of PasswordFile and PasswordEnv is set.
	PasswordFile string
	// PasswordEnv is the name of the environment variable holding the password, or "".
	PasswordEnv string
	// TLS is true for rediss:// URLs and when the section has a tls subsection.
	TLS bool
	// CAFile is the absolute path of a PEM file of the CA certificates that sign the
	// server's certificate; "" for the system's.
	CAFile string
	// CertFile and KeyFile are the absolute paths of a client certificate and its
	// key, both or neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry; "" for the host of
	// the address.
	ServerName string
	// Prefix starts every key; "kerbgate:" by default.
	Prefix string
	// DB is the database number; 0 by default (and always with a Cluster).
	DB int
	// DialTimeout bounds establishing a connection; 2s by default.
	DialTimeout time.Duration
	// Timeout bounds each store operation; 1s by default.
	Timeout time.Duration
	// MinReplicaAcks is how many replicas must hold each write before kerbgate
	// answers (Redis WAIT): 1 by default with Sentinel or a Cluster, 0 (the
	// primary's word alone) with one server.
	MinReplicaAcks int
	// ReplicaAckTimeout bounds the wait for MinReplicaAcks: 500ms by default, or
	// half of Timeout if that is shorter; 0 when MinReplicaAcks is 0.
	ReplicaAckTimeout time.Duration
}

// Password returns the password: the contents of PasswordFile without a trailing
// newline, or the value of the environment variable PasswordEnv; "" when neither is
// configured. It is an error for a configured password to be empty.
func (r Redis) Password() (string, error) {
	return readSecret("store.redis password", r.PasswordFile, r.PasswordEnv)
}

const (
	defaultRedisPrefix      = "kerbgate:"
	maxRedisPrefix          = 64
	defaultRedisPort        = "6379"
	defaultRedisDialTimeout = 2 * time.Second
	defaultRedisTimeout     = time.Second
	maxRedisTimeout         = time.Minute
	maxRedisReplicaAcks     = 100
	defaultRedisAckTimeout  = 500 * time.Millisecond
)

// decodeRedis decodes store.redis into s.Redis. path is store.path, which must not be
// set with it.
func decodeRedis(m *mapping, s *Store, path *field) {
	if m.broken || len(m.order) == 0 {
		return // absent, empty, or not a mapping (reported)
	}
	r := &Redis{Prefix: defaultRedisPrefix, DialTimeout: defaultRedisDialTimeout, Timeout: defaultRedisTimeout}
	s.Redis = r
	if path.set() {
		m.d.errorf(m.at, m.path, "set together with store.path; expected one of them: path for the embedded file of a single node, redis for a farm")
	}
	m.reject("password", "passwords do not belong in the configuration file; expected password_file or password_env")

	urlF := m.field("url", `a Redis URL like "rediss://redis.example.test:6379" (redis://, or rediss:// for TLS; port 6379 by default; an optional path /N is the database number)`)
	addrsF := m.field("addrs", "a list of host:port addresses: the nodes of a Redis Cluster, or the Sentinels' with master_name")
	urlDB, scheme := -1, ""
	switch {
	case urlF.set() && addrsF.set():
		addrsF.errorf("set together with url; expected exactly one of url or addrs")
	case urlF.set():
		scheme, urlDB = decodeRedisURL(urlF, r)
	case addrsF.set():
		decodeRedisAddrs(addrsF, r)
	default:
		m.d.errorf(m.at, m.path, "missing url or addrs; expected exactly one of them")
	}

	f := m.field("master_name", "the name of the master the Sentinels monitor, with addrs listing the Sentinels")
	if v, ok := f.str(); ok {
		switch {
		case urlF.set():
			f.errorf("set with url; expected master_name only with addrs (the Sentinels' addresses)")
		case v == "" || strings.ContainsFunc(v, unicode.IsSpace):
			f.invalid("%s is not a master name", describe(f.val))
		default:
			r.MasterName = v
		}
	}
	cluster := addrsF.set() && r.MasterName == "" && len(r.Addrs) > 1

	f = m.field("db", "a database number of at least 0")
	if v, ok := f.intIn(0, maxInt); ok {
		switch {
		case urlDB >= 0:
			f.errorf("set together with a database number in url; expected the number in one place")
		case cluster && v != 0:
			f.errorf("%d with a Redis Cluster, which has only database 0; expected 0 or no db", v)
		default:
			r.DB = v
		}
	}
	if urlDB > 0 {
		r.DB = urlDB
	}

	user := m.field("username", "the name of the ACL user kerbgate authenticates as")
	if v, ok := user.str(); ok {
		if v == "" || strings.ContainsFunc(v, unicode.IsSpace) {
			user.invalid("%s is not a user name", describe(user.val))
		} else {
			r.Username = v
		}
	}
	pwFile := m.field("password_file", "a file holding the Redis password that only kerbgate's user can read (relative paths are resolved against the configuration file's directory)")
	pwEnv := m.field("password_env", "the name of an environment variable holding the Redis password, like KERBGATE_REDIS_PASSWORD")
	switch {
	case pwFile.set() && pwEnv.set():
		pwEnv.errorf("set together with password_file; expected at most one of password_file or password_env")
	case user.set() && !pwFile.set() && !pwEnv.set():
		user.errorf("set without password_file or password_env; expected the ACL user's password in one of them")
	}
	r.PasswordFile = secretFile(pwFile)
	r.PasswordEnv = secretEnv(pwEnv)

	// TLS: rediss://, or a tls section (even an empty one) with addrs.
	tlsKV, hasTLS := m.keys["tls"]
	hasTLS = hasTLS && !isNull(deref(tlsKV.val))
	switch {
	case scheme == "redis" && hasTLS:
		m.d.errorf(posOf(tlsKV.key), m.child("tls"), "set but url uses redis://, which does not use TLS; expected rediss:// to connect with TLS")
	case scheme == "rediss" || (addrsF.set() && hasTLS):
		r.TLS = true
	}
	decodeRedisTLS(m.section("tls"), r)

	f = m.field("prefix", fmt.Sprintf("a key prefix of at most %d characters without spaces, like \"kerbgate:\"", maxRedisPrefix))
	if v, ok := f.str(); ok {
		switch {
		case v == "":
			f.invalid("empty")
		case len(v) > maxRedisPrefix:
			f.invalid("%s is too long", describe(f.val))
		case strings.ContainsFunc(v, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }):
			f.invalid("%s contains spaces or control characters", describe(f.val))
		case cluster && hasHashTag(v):
			f.errorf("%s contains a hash tag {...}, which with a Redis Cluster would put every key in one slot on one primary; expected a prefix without braces", describe(f.val))
		default:
			r.Prefix = v
		}
	}

	f = m.field("dial_timeout", "a duration greater than 0 and at most 1m, like 2s")
	if v, ok := f.durationUpTo(maxRedisTimeout); ok {
		r.DialTimeout = v
	}
	f = m.field("timeout", "a duration greater than 0 and at most 1m, like 1s: the longest a request waits for Redis before it is refused")
	if v, ok := f.durationUpTo(maxRedisTimeout); ok {
		r.Timeout = v
	}

	// Replica acknowledgements: on by default where there are replicas by design.
	if r.MasterName != "" || cluster {
		r.MinReplicaAcks = 1
	}
	acks := m.field("min_replica_acks", fmt.Sprintf("a number of replicas from 0 to %d that must hold each write before kerbgate answers (0: the primary's word alone)", maxRedisReplicaAcks))
	if v, ok := acks.intIn(0, maxRedisReplicaAcks); ok {
		r.MinReplicaAcks = v
	}
	f = m.field("replica_ack_timeout", "a duration greater than 0 and shorter than timeout, like 500ms: how long a write waits for min_replica_acks before it is refused")
	if v, ok := f.durationUpTo(maxRedisTimeout); ok {
		switch {
		case r.MinReplicaAcks == 0 && acks.set():
			f.errorf("set but min_replica_acks is 0, which does not wait for replicas; expected min_replica_acks of 1 or more, or no replica_ack_timeout")
		case r.MinReplicaAcks == 0:
			f.errorf("set but min_replica_acks is 0 (the default with one server), which does not wait for replicas; expected min_replica_acks of 1 or more, or no replica_ack_timeout")
		case v >= r.Timeout:
			f.errorf("%s is not shorter than timeout (%v); expected less, so that a write its replicas do not confirm is refused within timeout", describe(f.val), r.Timeout)
		default:
			r.ReplicaAckTimeout = v
		}
	} else if r.MinReplicaAcks > 0 && !f.set() {
		r.ReplicaAckTimeout = min(defaultRedisAckTimeout, r.Timeout/2)
	}
}

// hasHashTag reports whether a key starting with prefix would be hashed by the
// part between its first '{' and the next '}' (a Redis Cluster hash tag): a
// non-empty part within prefix itself.
func hasHashTag(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(prefix[i+1:], '}')
	return j > 0
}

// decodeRedisURL sets r.Addrs from url and returns its scheme and database number
// (-1 if the URL has none), or "" and -1 if it is invalid (reported).
func decodeRedisURL(f *field, r *Redis) (scheme string, db int) {
	s, ok := f.str()
	if !ok {
		return "", -1
	}
	u, err := url.Parse(s)
	if err != nil {
		why := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			why = ue.Err.Error()
		}
		f.invalid("%s is not a URL (%s)", describe(f.val), why)
		return "", -1
	}
	scheme = strings.ToLower(u.Scheme)
	port := u.Port()
	db = -1
	path := strings.TrimPrefix(u.Path, "/")
	switch {
	case u.Scheme == "":
		f.invalid("%s has no scheme", describe(f.val))
	case scheme != "redis" && scheme != "rediss":
		f.invalid("%s has scheme %s", describe(f.val), u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		f.invalid("%s has no host", describe(f.val))
	case u.User != nil:
		f.invalid("%s contains a user name or password (they belong in username and password_file or password_env)", describe(f.val))
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		f.invalid("%s has a query or fragment", describe(f.val))
	case port != "" && !validPort(port):
		f.invalid("%s has port %q, out of the range 1 to 65535", describe(f.val), port)
	case path != "" && !isDBNumber(path):
		f.invalid("%s has path /%s, which is not a database number", describe(f.val), path)
	default:
		if path != "" {
			db, _ = strconv.Atoi(path)
		}
		if port == "" {
			port = defaultRedisPort
		}
		r.Addrs = []string{net.JoinHostPort(u.Hostname(), port)}
		return scheme, db
	}
	return "", -1
}

func isDBNumber(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && strconv.Itoa(n) == s
}

// decodeRedisAddrs sets r.Addrs from a list of host:port.
func decodeRedisAddrs(f *field, r *Redis) {
	addrs, items := f.strings("a host:port address, like redis1.example.test:6379")
	seen := map[string]string{}
	for i, a := range addrs {
		it := items[i]
		host, port, err := net.SplitHostPort(a)
		switch {
		case err != nil:
			it.invalid("%s is not host:port", describe(it.val))
		case host == "" || strings.ContainsFunc(host, unicode.IsSpace) || strings.Contains(host, "/"):
			it.invalid("%s has no valid host", describe(it.val))
		case !validPort(port):
			it.invalid("%s has port %q, out of the range 1 to 65535", describe(it.val), port)
		case seen[strings.ToLower(a)] != "":
			it.errorf("%s repeats %s; expected each address once", describe(it.val), seen[strings.ToLower(a)])
		default:
			seen[strings.ToLower(a)] = it.path
			r.Addrs = append(r.Addrs, a)
		}
	}
}

// decodeRedisTLS decodes store.redis.tls; its fields are checked whether or not TLS
// is on (a tls section with redis:// was reported).
func decodeRedisTLS(m *mapping, r *Redis) {
	f := m.field("ca", "a PEM file of the CA certificates that sign the Redis server's certificate (relative paths are resolved against the configuration file's directory)")
	if s, ok := f.str(); ok {
		if s == "" {
			f.invalid("empty path")
		} else if abs, shown := resolvedPath(f, s); checkCAFile(f, abs, shown) {
			r.CAFile = abs
		}
	}

	cert := m.field("cert", "a PEM file with the client certificate kerbgate presents to Redis, with tls.key")
	key := m.field("key", "a PEM file with the client certificate's private key that only kerbgate's user can read, with tls.cert")
	switch {
	case cert.set() && !key.set():
		cert.errorf("set without tls.key; expected both tls.cert and tls.key, or neither")
	case key.set() && !cert.set():
		key.errorf("set without tls.cert; expected both tls.cert and tls.key, or neither")
	}
	var certPath, keyPath string
	if s, ok := cert.str(); ok {
		if s == "" {
			cert.invalid("empty path")
		} else if abs, shown := resolvedPath(cert, s); checkReadable(cert, abs, shown, cert.expect) {
			certPath = abs
		}
	}
	if s, ok := key.str(); ok {
		if s == "" {
			key.invalid("empty path")
		} else if abs, shown := resolvedPath(key, s); checkPasswordFile(key, abs, shown) {
			keyPath = abs
		}
	}
	if certPath != "" && keyPath != "" {
		if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
			key.errorf("%s and tls.cert are not a certificate and its key (%v); expected %s", describe(key.val), err, key.expect).Err = err
		} else {
			r.CertFile, r.KeyFile = certPath, keyPath
		}
	}

	f = m.field("server_name", "the host name the Redis server's certificate carries; the host of the address by default")
	if s, ok := f.str(); ok {
		switch {
		case s == "":
			f.invalid("empty")
		case strings.ContainsFunc(s, unicode.IsSpace) || strings.ContainsAny(s, "/:@"):
			f.invalid("%s is not a host name", describe(f.val))
		default:
			r.ServerName = s
		}
	}
}
