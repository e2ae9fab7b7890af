package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/keyset"
)

// writeClientCert writes a self-signed certificate and its key (mode 0600) in dir.
func writeClientCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "kerbgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "redis-client.pem"), filepath.Join(dir, "redis-client.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// exampleRedis returns Example with its store.redis block uncommented in place of
// store.path, the files it names replaced by files in the directory of file.
func exampleRedis(t *testing.T, file, keytab string) string {
	t.Helper()
	dir := filepath.Dir(file)
	cert, key := writeClientCert(t, dir)
	var out []string
	in := false
	for _, line := range strings.Split(exampleIn(t, file, keytab), "\n") {
		switch {
		case line == "  path: kerbgate.db":
			continue
		case line == "  # cookie_keys_file: /etc/kerbgate/cookie.keys":
			// A farm needs the shared cookie keys.
			keys := filepath.Join(dir, "cookie.keys")
			if err := os.WriteFile(keys, []byte(keyset.NewKeyLine()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			line = "  cookie_keys_file: " + keys
		case line == "  # redis:":
			in = true
		case in && !strings.HasPrefix(line, "  #"):
			in = false
		}
		if in {
			line = "  " + strings.TrimPrefix(line, "  # ")
		}
		out = append(out, line)
	}
	ex := strings.Join(out, "\n")
	for _, r := range []struct{ from, to string }{
		{"/etc/kerbgate/redis.password", filepath.Join(dir, "ldap.password")},
		{"/etc/kerbgate/redis-ca.pem", filepath.Join(dir, "ad-ca.pem")},
		{"/etc/kerbgate/redis-client.pem", cert},
		{"/etc/kerbgate/redis-client.key", key},
	} {
		if n := strings.Count(ex, r.from); n != 1 {
			t.Fatalf("Example names %s %d times; the test expects once", r.from, n)
		}
		ex = strings.Replace(ex, r.from, r.to, 1)
	}
	return ex
}

// The commented store.redis block of the example parses once uncommented, to the
// values it documents, and shows every field of the section.
func TestExampleRedisParses(t *testing.T) {
	dir, file, keytab := setup(t)
	src := exampleRedis(t, file, keytab)
	c, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("Example with store.redis does not parse:\n%v\n%s", err, src)
	}
	want := &Redis{
		Addrs: []string{"redis.example.test:6379"}, Username: "kerbgate",
		PasswordFile: filepath.Join(dir, "ldap.password"), TLS: true,
		CAFile: filepath.Join(dir, "ad-ca.pem"), CertFile: filepath.Join(dir, "redis-client.pem"), KeyFile: filepath.Join(dir, "redis-client.key"),
		ServerName: "redis.example.test", Prefix: "kerbgate:", DB: 0,
		DialTimeout: 2 * time.Second, Timeout: time.Second,
		MinReplicaAcks: 1, ReplicaAckTimeout: 500 * time.Millisecond,
	}
	if c.Store.Path != "" || !reflect.DeepEqual(c.Store.Redis, want) {
		t.Errorf("store parsed to path %q, redis %+v\nwant %+v", c.Store.Path, c.Store.Redis, want)
	}

	// Every field of store.redis is set, or shown in a comment as an alternative.
	alternatives := map[string]bool{"addrs": true, "master_name": true, "password_env": true}
	d := newDecoder(file)
	root, _ := parseYAML(d, []byte(src))
	var cfg Config
	doc := d.newMapping("", top, root, "a mapping")
	for _, s := range sections {
		s.decode(doc.section(s.name), &cfg)
	}
	n := 0
	for _, m := range d.mappings {
		if !strings.HasPrefix(m.path, "store.redis") {
			continue
		}
		for _, k := range m.known {
			n++
			_, set := m.keys[k]
			switch {
			case set && alternatives[k]:
				t.Errorf("example sets %s, an alternative", m.child(k))
			case !set && alternatives[k] && !strings.Contains(src, "# "+k+":"):
				t.Errorf("example lacks %s, even in a comment", m.child(k))
			case !set && !alternatives[k]:
				t.Errorf("example lacks %s", m.child(k))
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d store.redis fields checked", n)
	}
}

func TestRedisDefaults(t *testing.T) {
	c, err, _, _ := parse(t, valid+"store:\n  redis:\n    url: redis://127.0.0.1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &Redis{Addrs: []string{"127.0.0.1:6379"}, Prefix: "kerbgate:", DialTimeout: 2 * time.Second, Timeout: time.Second}
	if c.Store.Path != "" || !reflect.DeepEqual(c.Store.Redis, want) {
		t.Errorf("got path %q redis %+v, want %+v", c.Store.Path, c.Store.Redis, want)
	}
	// Without a redis section the store is the file, and Redis is nil.
	c, err, _, _ = parse(t, valid)
	if err != nil || c.Store.Redis != nil || c.Store.Path == "" {
		t.Errorf("default store: %+v %v", c.Store, err)
	}
}

func TestRedisForms(t *testing.T) {
	t.Setenv("KERBGATE_TEST_REDIS_PASSWORD", "pw")
	for _, tc := range []struct {
		name, src string
		want      Redis
	}{
		{"rediss with a database", "    url: rediss://Redis.Example.Test:6380/3\n    tls:\n      server_name: redis.example.test\n",
			Redis{Addrs: []string{"Redis.Example.Test:6380"}, TLS: true, DB: 3, ServerName: "redis.example.test"}},
		{"ipv6", "    url: redis://[::1]:7000\n", Redis{Addrs: []string{"[::1]:7000"}}},
		{"sentinel", "    addrs: [s1.example.test:26379, s2.example.test:26379]\n    master_name: kerbgate\n    db: 2\n",
			Redis{Addrs: []string{"s1.example.test:26379", "s2.example.test:26379"}, MasterName: "kerbgate", DB: 2,
				MinReplicaAcks: 1, ReplicaAckTimeout: 500 * time.Millisecond}},
		{"cluster with TLS", "    addrs: [n1.example.test:6379, n2.example.test:6379]\n    tls: {}\n",
			Redis{Addrs: []string{"n1.example.test:6379", "n2.example.test:6379"}, TLS: true,
				MinReplicaAcks: 1, ReplicaAckTimeout: 500 * time.Millisecond}},
		{"sentinel without acknowledgements", "    addrs: [s1:26379]\n    master_name: kerbgate\n    min_replica_acks: 0\n",
			Redis{Addrs: []string{"s1:26379"}, MasterName: "kerbgate"}},
		{"cluster waiting for two replicas with a short timeout", "    addrs: [n1:6379, n2:6379]\n    min_replica_acks: 2\n    replica_ack_timeout: 150ms\n    timeout: 400ms\n    prefix: \"kg{\"\n",
			Redis{Addrs: []string{"n1:6379", "n2:6379"}, MinReplicaAcks: 2, ReplicaAckTimeout: 150 * time.Millisecond,
				DialTimeout: 2 * time.Second, Timeout: 400 * time.Millisecond, Prefix: "kg{"}},
		{"one server with replicas and the ack timeout half of timeout", "    url: redis://r1\n    min_replica_acks: 1\n    timeout: 600ms\n",
			Redis{Addrs: []string{"r1:6379"}, MinReplicaAcks: 1, ReplicaAckTimeout: 300 * time.Millisecond,
				DialTimeout: 2 * time.Second, Timeout: 600 * time.Millisecond}},
		{"a hash tag in the prefix of one server", "    url: redis://r1\n    prefix: \"{kg}:\"\n",
			Redis{Addrs: []string{"r1:6379"}, Prefix: "{kg}:"}},
		{"single by addrs", "    addrs: [127.0.0.1:6379]\n    db: 1\n", Redis{Addrs: []string{"127.0.0.1:6379"}, DB: 1}},
		{"acl user with env password and prefix and timeouts",
			"    url: redis://127.0.0.1\n    username: kerbgate\n    password_env: KERBGATE_TEST_REDIS_PASSWORD\n    prefix: farm-a/\n    dial_timeout: 500ms\n    timeout: 250ms\n",
			Redis{Addrs: []string{"127.0.0.1:6379"}, Username: "kerbgate", PasswordEnv: "KERBGATE_TEST_REDIS_PASSWORD", Prefix: "farm-a/",
				DialTimeout: 500 * time.Millisecond, Timeout: 250 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err, _, _ := parse(t, valid+"store:\n  redis:\n"+tc.src)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if w.Prefix == "" {
				w.Prefix = "kerbgate:"
			}
			if w.DialTimeout == 0 {
				w.DialTimeout, w.Timeout = 2*time.Second, time.Second
			}
			if !reflect.DeepEqual(*c.Store.Redis, w) {
				t.Errorf("got %+v\nwant %+v", *c.Store.Redis, w)
			}
		})
	}
}

func TestRedisPassword(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := (Redis{PasswordFile: p}).Password(); err != nil || pw != "s3cret" {
		t.Errorf("file: %q %v", pw, err)
	}
	t.Setenv("KERBGATE_TEST_REDIS_PW", "from-env")
	if pw, err := (Redis{PasswordEnv: "KERBGATE_TEST_REDIS_PW"}).Password(); err != nil || pw != "from-env" {
		t.Errorf("env: %q %v", pw, err)
	}
	if pw, err := (Redis{}).Password(); err != nil || pw != "" {
		t.Errorf("none: %q %v", pw, err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Redis{PasswordFile: p}).Password(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("empty file: %v", err)
	}
	t.Setenv("KERBGATE_TEST_REDIS_PW", "")
	if _, err := (Redis{PasswordEnv: "KERBGATE_TEST_REDIS_PW"}).Password(); err == nil {
		t.Error("empty environment variable accepted")
	}
}

func TestParseInvalidRedis(t *testing.T) {
	t.Setenv("KERBGATE_TEST_PASSWORD", "s3cret")
	// valid is 4 lines; "store:" is line 5, "  redis:" line 6, its fields from line 7.
	const st = valid + "store:\n  redis:\n"
	for _, tc := range []invalidCase{
		{
			name: "path and redis",
			src:  valid + "store:\n  path: kerbgate.db\n  redis:\n    url: redis://127.0.0.1\n",
			want: []string{`7:3: store.redis: set together with store.path; expected one of them`},
		},
		{
			name: "neither url nor addrs",
			src:  st + "    prefix: x\n",
			want: []string{`6:3: store.redis: missing url or addrs; expected exactly one of them`},
		},
		{
			name: "url and addrs",
			src:  st + "    url: redis://a\n    addrs: [b:6379]\n",
			want: []string{`8:12: store.redis.addrs: set together with url; expected exactly one of url or addrs`},
		},
		{
			name: "password in the file",
			src:  st + "    url: redis://a\n    password: hunter2\n",
			want: []string{`8:5: store.redis.password: passwords do not belong in the configuration file; expected password_file or password_env`},
		},
		{
			name: "password in the url",
			src:  st + "    url: redis://:hunter2@a\n",
			want: []string{`7:10: store.redis.url: "redis://:hunter2@a" contains a user name or password (they belong in username and password_file or password_env)`},
		},
		{
			name: "wrong scheme",
			src:  st + "    url: http://a:6379\n",
			want: []string{`7:10: store.redis.url: "http://a:6379" has scheme http; expected a Redis URL`},
		},
		{
			name: "bad port",
			src:  st + "    url: redis://a:70000\n",
			want: []string{`7:10: store.redis.url: "redis://a:70000" has port "70000", out of the range 1 to 65535`},
		},
		{
			name: "path not a database",
			src:  st + "    url: redis://a/x\n",
			want: []string{`7:10: store.redis.url: "redis://a/x" has path /x, which is not a database number`},
		},
		{
			name: "database twice",
			src:  st + "    url: redis://a/1\n    db: 1\n",
			want: []string{`8:9: store.redis.db: set together with a database number in url; expected the number in one place`},
		},
		{
			name: "tls with redis://",
			src:  st + "    url: redis://a\n    tls:\n      server_name: a\n",
			want: []string{`8:5: store.redis.tls: set but url uses redis://, which does not use TLS; expected rediss:// to connect with TLS`},
		},
		{
			name: "master_name with url",
			src:  st + "    url: redis://a\n    master_name: m\n",
			want: []string{`8:18: store.redis.master_name: set with url; expected master_name only with addrs (the Sentinels' addresses)`},
		},
		{
			name: "cluster with a database",
			src:  st + "    addrs: [a:1, b:2]\n    db: 4\n",
			want: []string{`8:9: store.redis.db: 4 with a Redis Cluster, which has only database 0; expected 0 or no db`},
		},
		{
			name: "address without a port and a repeated address",
			src:  st + "    addrs: [a, b:1, B:1]\n",
			want: []string{
				`7:13: store.redis.addrs[0]: "a" is not host:port; expected a host:port address`,
				`7:21: store.redis.addrs[2]: "B:1" repeats store.redis.addrs[1]; expected each address once`,
			},
		},
		{
			name: "username without a password",
			src:  st + "    url: redis://a\n    username: kerbgate\n",
			want: []string{`8:15: store.redis.username: set without password_file or password_env; expected the ACL user's password in one of them`},
		},
		{
			name: "both password sources",
			src:  st + "    url: redis://a\n    password_file: ldap.password\n    password_env: KERBGATE_TEST_PASSWORD\n",
			want: []string{`9:19: store.redis.password_env: set together with password_file; expected at most one of password_file or password_env`},
		},
		{
			name:  "password file readable by everyone",
			src:   st + "    url: redis://a\n    password_file: public.password\n",
			want:  []string{`8:20: store.redis.password_file: "public.password" (resolved to `},
			hints: []string{"is readable by everyone; chmod 600 it"},
		},
		{
			name: "password variable not set",
			src:  st + "    url: redis://a\n    password_env: KERBGATE_NO_SUCH_VARIABLE\n",
			want: []string{`8:19: store.redis.password_env: "KERBGATE_NO_SUCH_VARIABLE" is not set in kerbgate's environment`},
		},
		{
			name: "CA file missing and cert without key",
			src:  st + "    url: rediss://a\n    tls:\n      ca: nope.pem\n      cert: ad-ca.pem\n",
			want: []string{
				`9:11: store.redis.tls.ca: "nope.pem" (resolved to `,
				`10:13: store.redis.tls.cert: set without tls.key; expected both tls.cert and tls.key, or neither`,
			},
			hints: []string{"does not exist"},
		},
		{
			name: "key does not match the certificate",
			src:  st + "    url: rediss://a\n    tls:\n      cert: ad-ca.pem\n      key: ldap.password\n",
			want: []string{`10:12: store.redis.tls.key: "ldap.password" and tls.cert are not a certificate and its key`},
		},
		{
			name: "bad prefix and timeouts",
			src:  st + "    url: redis://a\n    prefix: \"a b\"\n    dial_timeout: 0s\n    timeout: 2h\n",
			want: []string{
				`8:13: store.redis.prefix: "a b" contains spaces or control characters`,
				`9:19: store.redis.dial_timeout: "0s" is not positive`,
				`10:14: store.redis.timeout: "2h" is too long`,
			},
		},
		{
			name: "replica acknowledgements out of range",
			src:  st + "    addrs: [a:1, b:2]\n    min_replica_acks: -1\n",
			want: []string{`8:23: store.redis.min_replica_acks: -1 is too small; expected a number of replicas from 0 to 100 that must hold each write before kerbgate answers (0: the primary's word alone)`},
		},
		{
			name: "ack timeout without acknowledgements",
			src:  st + "    url: redis://a\n    replica_ack_timeout: 200ms\n",
			want: []string{`8:26: store.redis.replica_ack_timeout: set but min_replica_acks is 0 (the default with one server), which does not wait for replicas; expected min_replica_acks of 1 or more, or no replica_ack_timeout`},
		},
		{
			name: "ack timeout with acknowledgements turned off",
			src:  st + "    addrs: [a:1]\n    master_name: m\n    min_replica_acks: 0\n    replica_ack_timeout: 200ms\n",
			want: []string{`10:26: store.redis.replica_ack_timeout: set but min_replica_acks is 0, which does not wait for replicas; expected min_replica_acks of 1 or more, or no replica_ack_timeout`},
		},
		{
			name: "ack timeout not shorter than timeout",
			src:  st + "    addrs: [a:1, b:2]\n    timeout: 500ms\n    replica_ack_timeout: 500ms\n",
			want: []string{`9:26: store.redis.replica_ack_timeout: "500ms" is not shorter than timeout (500ms); expected less, so that a write its replicas do not confirm is refused within timeout`},
		},
		{
			name: "hash tag in a Cluster's prefix",
			src:  st + "    addrs: [a:1, b:2]\n    prefix: \"kerbgate:{farm}:\"\n",
			want: []string{`8:13: store.redis.prefix: "kerbgate:{farm}:" contains a hash tag {...}, which with a Redis Cluster would put every key in one slot on one primary; expected a prefix without braces`},
		},
		{
			name: "typo",
			src:  st + "    url: redis://a\n    mastername: m\n",
			want: []string{`8:5: store.redis.mastername: unknown field; did you mean master_name?`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
}
