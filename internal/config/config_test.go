package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/keyset"
)

// setup makes a directory holding a keytab file (its contents do not matter: the
// package only checks that it is readable) and returns the directory, the path a
// configuration file in it would have, and the keytab's absolute path.
//
// The directory also holds the files a directory section names: ad-ca.pem (a CA
// certificate), ldap.password (mode 0600, "s3cret\n") and public.password (mode 0644).
func setup(t *testing.T) (dir, file, keytab string) {
	t.Helper()
	dir = t.TempDir()
	keytab = filepath.Join(dir, "svc-gw.keytab")
	if err := os.WriteFile(keytab, []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ad-ca.pem", testCAPEM(), 0o644},
		{"ldap.password", []byte("s3cret\n"), 0o600},
		{"public.password", []byte("s3cret\n"), 0o644},
	} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, "kerbgate.yaml"), keytab
}

// testCAPEM is a self-signed CA certificate in PEM.
var testCAPEM = sync.OnceValue(func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kerbgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
})

// parse parses src, in which KEYTAB stands for the keytab's path, as the file in dir.
func parse(t *testing.T, src string) (*Config, error, string, string) {
	t.Helper()
	dir, file, keytab := setup(t)
	src = withFarmCookieKeys(t, dir, src)
	c, err := Parse(file, []byte(strings.ReplaceAll(src, "KEYTAB", keytab)))
	return c, err, file, keytab
}

// withFarmCookieKeys gives a file whose last section is a store with a redis section
// the store.cookie_keys_file a farm needs, as its last line (so that the lines the
// tests point at do not move).
func withFarmCookieKeys(t *testing.T, dir, src string) string {
	i := strings.LastIndex(src, "\nstore:\n")
	if i < 0 && strings.HasPrefix(src, "store:\n") {
		i = 0
	}
	if i < 0 || !strings.Contains(src[i:], "\n  redis:") || strings.Contains(src, "cookie_keys_file") {
		return src
	}
	for _, l := range strings.Split(src[i+1:], "\n")[1:] {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			return src // another section follows the store
		}
	}
	keys := filepath.Join(dir, "cookie.keys")
	if err := os.WriteFile(keys, []byte(keyset.NewKeyLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(src, "\n") {
		src += "\n"
	}
	return src + "  cookie_keys_file: " + keys + "\n"
}

func TestParseFull(t *testing.T) {
	dir, file, keytab := setup(t)
	other := filepath.Join(dir, "old.keytab")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KERBGATE_TEST_LDAP_PASSWORD", "s3cret")
	src := `
listen:
  address: "127.0.0.1:9443"
  read_header_timeout: 30s
  max_header_bytes: 200000
  drain_delay: 0s
  shutdown_timeout: 2m
kerberos:
  realm: CORP.EXAMPLE.COM
  trusted_realms: [PARTNER.EXAMPLE.COM, EMEA.CORP.EXAMPLE.COM]
  keytabs: [` + keytab + `, old.keytab]
  spns:
    - HTTP/sso.corp.example.com
    - HTTP/sso
  enctypes: [aes256-cts, AES128-CTS-HMAC-SHA1-96, rc4-hmac]
  clock_skew: 2m30s
  max_token_bytes: 131072
  replay_cache_size: 5000
log:
  level: debug
  format: text
  expose_reasons: true
directory:
  url: LDAP://dc1.corp.example.com
  start_tls: true
  ca_file: ad-ca.pem
  server_name: ad.corp.example.com
  base_dn: OU=People, DC=corp,DC=example,DC=com
  bind:
    method: Simple
    dn: CN=svc\, ldap,CN=Users,DC=corp,DC=example,DC=com
    password_env: KERBGATE_TEST_LDAP_PASSWORD
  cache_ttl: 0s
  timeout: 30s
store:
  path: data/gw.db
sso:
  cookie_name: __Host-kg
  browser_session_ttl: 720h
  apps:
    - id: demo
      name: Demo
      redirect_uris:
        - https://app.corp.example.com/callback?x=1
        - http://localhost:9090/cb
        - http://[::1]/cb
        - http://app.example.test/cb
      secret_hash: ` + testBcrypt + `
      token_ttl: 10m
      session_ttl: 1m
      allowed_groups: [staff, S-1-5-21-1-2-3-1110, Domain Users, S-1-0x123456789ABC-0]
      require_directory: false
    - id: other.app_2
      redirect_uris: [https://other.corp.example.com/]
      secret_hash: ` + testArgon2 + `
`
	c, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: Listen{Address: "127.0.0.1:9443", ReadHeaderTimeout: 30 * time.Second, MaxHeaderBytes: 200000,
			DrainDelay: 0, ShutdownTimeout: 2 * time.Minute},
		Kerberos: Kerberos{
			Realm:                "CORP.EXAMPLE.COM",
			TrustedRealms:        []string{"PARTNER.EXAMPLE.COM", "EMEA.CORP.EXAMPLE.COM"},
			Keytabs:              []string{keytab, other},
			SPNs:                 []string{"HTTP/sso.corp.example.com", "HTTP/sso"},
			Enctypes:             []int32{18, 17, 23},
			ClockSkew:            150 * time.Second,
			MaxTokenBytes:        131072,
			ReplayCacheSize:      5000,
			KeytabReloadInterval: 5 * time.Second,
			RetainOldKeys:        10 * time.Hour,
			SPNCheck:             "warn",
		},
		Log: Log{Level: slog.LevelDebug, Format: "text", ExposeReasons: true},
		Directory: Directory{
			Enabled:     true,
			URL:         "ldap://dc1.corp.example.com:389",
			StartTLS:    true,
			CAFile:      filepath.Join(dir, "ad-ca.pem"),
			ServerName:  "ad.corp.example.com",
			BaseDN:      "OU=People, DC=corp,DC=example,DC=com",
			BindMethod:  "simple",
			BindDN:      `CN=svc\, ldap,CN=Users,DC=corp,DC=example,DC=com`,
			PasswordEnv: "KERBGATE_TEST_LDAP_PASSWORD",
			CacheTTL:    0,
			Timeout:     30 * time.Second,
		},
		Store: Store{Path: filepath.Join(dir, "data", "gw.db")},
		SSO: SSO{
			CookieName:        "__Host-kg",
			BrowserSessionTTL: 720 * time.Hour,
			Apps: []App{
				{
					ID:   "demo",
					Name: "Demo",
					RedirectURIs: []string{
						"https://app.corp.example.com/callback?x=1",
						"http://localhost:9090/cb",
						"http://[::1]/cb",
						"http://app.example.test/cb",
					},
					SecretHash:       testBcrypt,
					TokenTTL:         10 * time.Minute,
					SessionTTL:       time.Minute,
					AllowedGroups:    []string{"staff", "S-1-5-21-1-2-3-1110", "Domain Users", "S-1-0x123456789ABC-0"},
					RequireDirectory: false,
				},
				{
					ID:               "other.app_2",
					RedirectURIs:     []string{"https://other.corp.example.com/"},
					SecretHash:       testArgon2,
					TokenTTL:         time.Minute,
					SessionTTL:       8 * time.Hour,
					RequireDirectory: true,
				},
			},
		},
		EPA:   EPA{Policy: epa.Policy{SPNs: []string{"HTTP/sso.corp.example.com", "HTTP/sso"}}},
		Proxy: Proxy{CookieName: "kerbgate_proxy", SessionTTL: 8 * time.Hour},
		Path:  file,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err, file, keytab := parse(t, `
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [KEYTAB]
  spns: [HTTP/sso.example.test]
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: Listen{Address: ":8080", ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 65536 + 32768,
			DrainDelay: 0, ShutdownTimeout: 30 * time.Second},
		Kerberos: Kerberos{
			Realm:                "EXAMPLE.TEST",
			Keytabs:              []string{keytab},
			SPNs:                 []string{"HTTP/sso.example.test"},
			Enctypes:             []int32{18, 17, 20, 19},
			ClockSkew:            5 * time.Minute,
			MaxTokenBytes:        65536,
			ReplayCacheSize:      1_000_000,
			KeytabReloadInterval: 5 * time.Second,
			RetainOldKeys:        10 * time.Hour,
			SPNCheck:             "warn",
		},
		Log:   Log{Level: slog.LevelInfo, Format: "json"},
		Store: Store{Path: filepath.Join(filepath.Dir(file), "kerbgate.db")},
		SSO:   SSO{CookieName: "kerbgate_session", BrowserSessionTTL: 8 * time.Hour},
		EPA:   EPA{Policy: epa.Policy{SPNs: []string{"HTTP/sso.example.test"}}},
		Proxy: Proxy{CookieName: "kerbgate_proxy", SessionTTL: 8 * time.Hour},
		Path:  file,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// Client secret hashes of the two kinds, for the sso section.
const (
	testArgon2 = "$argon2id$v=19$m=65536,t=3,p=4$a2VyYmdhdGUtZXhhbXBsZQ$tfWZn4lyEkJm5sp9a824NaLHsoW8fH9jzp2DXFbGSyY"
	testBcrypt = "$2b$10$abcdefghijklmnopqrstuu5Hh0E1pRz5m3vXKUzVbcSHrEyNw7E0e"
)

// validDir is valid plus a minimal directory section with a simple bind over ldaps,
// naming the files setup makes.
const validDir = valid + `directory:
  url: ldaps://dc1.example.test
  ca_file: ad-ca.pem
  base_dn: DC=example,DC=test
  bind:
    method: simple
    dn: CN=svc-ldap,CN=Users,DC=example,DC=test
    password_file: ldap.password
`

// validSSO is valid plus an sso section with one minimal app.
const validSSO = valid + `sso:
  apps:
    - id: demo
      redirect_uris: [https://app.example.com/callback]
      secret_hash: ` + testBcrypt + `
`

func TestDirectoryDefaults(t *testing.T) {
	c, err, file, _ := parse(t, validDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(file)
	want := Directory{
		Enabled:      true,
		URL:          "ldaps://dc1.example.test:636",
		CAFile:       filepath.Join(dir, "ad-ca.pem"),
		ServerName:   "dc1.example.test",
		BaseDN:       "DC=example,DC=test",
		BindMethod:   "simple",
		BindDN:       "CN=svc-ldap,CN=Users,DC=example,DC=test",
		PasswordFile: filepath.Join(dir, "ldap.password"),
		CacheTTL:     time.Minute,
		Timeout:      5 * time.Second,
	}
	if !reflect.DeepEqual(c.Directory, want) {
		t.Errorf("got  %+v\nwant %+v", c.Directory, want)
	}
	pw, err := c.Directory.Password()
	if err != nil || pw != "s3cret" {
		t.Errorf("Password() = %q, %v; want s3cret", pw, err)
	}
}

// A gssapi bind needs no TLS (GSSAPI protects the connection itself) and no password.
func TestDirectoryGSSAPIIsRefused(t *testing.T) {
	_, err, _, _ := parse(t, valid+`directory:
  url: ldap://dc1.example.test
  base_dn: DC=example,DC=test
  bind:
    method: gssapi
    keytab: KEYTAB
    principal: svc-gw
`)
	if err == nil || !strings.Contains(err.Error(), "9:13: directory.bind.method: gssapi is not supported yet") {
		t.Fatalf("got %v", err)
	}
}

func TestDirectoryPassword(t *testing.T) {
	dir := t.TempDir()
	crlf := filepath.Join(dir, "crlf")
	if err := os.WriteFile(crlf, []byte(" pass word \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KERBGATE_TEST_PW", "from env")
	t.Setenv("KERBGATE_TEST_EMPTY", "")
	for _, tc := range []struct {
		d    Directory
		want string // "" for an error
	}{
		{Directory{BindMethod: "simple", PasswordFile: crlf}, " pass word "},
		{Directory{BindMethod: "simple", PasswordFile: empty}, ""},
		{Directory{BindMethod: "simple", PasswordFile: filepath.Join(dir, "absent")}, ""},
		{Directory{BindMethod: "simple", PasswordEnv: "KERBGATE_TEST_PW"}, "from env"},
		{Directory{BindMethod: "simple", PasswordEnv: "KERBGATE_TEST_EMPTY"}, ""},
		{Directory{BindMethod: "simple", PasswordEnv: "KERBGATE_TEST_NEVER_SET_ANYWHERE"}, ""},
		{Directory{}, ""},
	} {
		got, err := tc.d.Password()
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%+v.Password() = %q, %v; want %q", tc.d, got, err, tc.want)
		}
	}
}

// An absent, null or empty directory section leaves the directory disabled.
func TestDirectoryAbsent(t *testing.T) {
	for _, extra := range []string{"", "directory:\n", "directory: {}\n"} {
		c, err, _, _ := parse(t, valid+extra)
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if !reflect.DeepEqual(c.Directory, Directory{}) {
			t.Errorf("%q: Directory = %+v, want zero", extra, c.Directory)
		}
	}
}

func TestSSODefaults(t *testing.T) {
	c, err, _, _ := parse(t, validSSO)
	if err != nil {
		t.Fatal(err)
	}
	want := SSO{
		CookieName:        "kerbgate_session",
		BrowserSessionTTL: 8 * time.Hour,
		Apps: []App{{
			ID:           "demo",
			RedirectURIs: []string{"https://app.example.com/callback"},
			SecretHash:   testBcrypt,
			TokenTTL:     time.Minute,
			SessionTTL:   8 * time.Hour,
			// No directory section: SIDs only, no directory check by default.
			RequireDirectory: false,
		}},
	}
	if !reflect.DeepEqual(c.SSO, want) {
		t.Errorf("got  %+v\nwant %+v", c.SSO, want)
	}
}

// require_directory is true by default when there is a directory section.
func TestRequireDirectoryDefault(t *testing.T) {
	apps := `sso:
  apps:
    - id: a
      redirect_uris: [https://a.example.com/cb]
      secret_hash: ` + testArgon2 + `
    - id: b
      redirect_uris: [https://b.example.com/cb]
      secret_hash: ` + testArgon2 + `
      require_directory: false
    - id: c
      redirect_uris: [https://c.example.com/cb]
      secret_hash: ` + testArgon2 + `
      require_directory:
`
	c, err, _, _ := parse(t, validDir+apps)
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, a := range c.SSO.Apps {
		got = append(got, a.RequireDirectory)
	}
	if want := []bool{true, false, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("RequireDirectory = %v, want %v", got, want)
	}
}

// Empty sections and fields written without a value take their defaults.
func TestParseNullsAreDefaults(t *testing.T) {
	c, err, _, _ := parse(t, `
listen:
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [KEYTAB]
  spns: [HTTP/sso.example.test]
  enctypes:
  clock_skew: ~
log: {}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Address != ":8080" || c.Kerberos.ClockSkew != 5*time.Minute || len(c.Kerberos.Enctypes) != 4 || c.Log.Format != "json" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestMaxHeaderBytesDefaultFollowsMaxTokenBytes(t *testing.T) {
	c, err, _, _ := parse(t, `
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [KEYTAB]
  spns: [HTTP/sso.example.test]
  max_token_bytes: 4096
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Listen.MaxHeaderBytes; got != 4096+32768 {
		t.Errorf("MaxHeaderBytes = %d, want %d", got, 4096+32768)
	}
}

func TestRelativeKeytabResolved(t *testing.T) {
	dir, _, _ := setup(t)
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "keys", "a.keytab")
	if err := os.WriteFile(want, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := "kerberos: {realm: EXAMPLE.TEST, keytabs: [keys/a.keytab], spns: [HTTP/x]}\n"
	c, err := Parse(filepath.Join(dir, "kerbgate.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Kerberos.Keytabs, []string{want}) {
		t.Errorf("Keytabs = %q, want [%q]", c.Kerberos.Keytabs, want)
	}
	// Resolved against the file's directory, not the working directory.
	src = "kerberos: {realm: EXAMPLE.TEST, keytabs: [a.keytab], spns: [HTTP/x]}\n"
	_, err = Parse(filepath.Join(dir, "kerbgate.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), `"a.keytab" (resolved to `+filepath.Join(dir, "a.keytab")+`) does not exist`) {
		t.Errorf("err = %v, want a.keytab resolved in %s and missing", err, dir)
	}
}

// valid is a minimal valid kerberos section; cases append to it or replace it.
const valid = `kerberos:
  realm: EXAMPLE.TEST
  keytabs: [KEYTAB]
  spns: [HTTP/sso.example.test]
`

// invalidCase is a file with problems and the errors Parse must report.
type invalidCase struct {
	name string
	src  string
	// want are fragments "LINE:COL: field: message" that must each be one error's
	// text after "FILE:", in this order.
	want []string
	// hints must appear in the error text too.
	hints []string
}

// checkInvalid parses tc.src (KEYTAB standing for a keytab) and checks its errors.
func checkInvalid(t *testing.T, tc invalidCase) {
	t.Helper()
	c, err, file, _ := parse(t, tc.src)
	if err == nil {
		t.Fatalf("no error; config %+v", c)
	}
	if c != nil {
		t.Errorf("config %+v returned with the error", c)
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors", err)
	}
	if len(es) != len(tc.want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(tc.want), err)
	}
	for i, w := range tc.want {
		if i >= len(es) {
			break
		}
		if got := es[i].Error(); !strings.HasPrefix(got, file+":"+w) {
			t.Errorf("error %d:\n got %s\nwant %s:%s...", i, got, file, w)
		}
	}
	for _, h := range tc.hints {
		if !strings.Contains(err.Error(), h) {
			t.Errorf("error lacks %q:\n%v", h, err)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		// want are fragments "LINE:COL: field: message" that must each be one error's
		// text after "FILE:", in this order.
		want []string
		// hints must appear in the error text too.
		hints []string
	}{
		{
			name:  "duration not a duration",
			src:   valid + "  clock_skew: 10y\n",
			want:  []string{`5:15: kerberos.clock_skew: "10y" is not a duration; expected Go duration syntax like 5m or 300s`},
			hints: nil,
		},
		{
			name: "drain delay negative and shutdown timeout zero",
			src:  "listen:\n  drain_delay: -1s\n  shutdown_timeout: 0s\n" + valid,
			want: []string{
				`2:16: listen.drain_delay: "-1s" is negative; expected a duration from 0 to 5m, like 5s: longer than the load balancer takes to see /readyz fail`,
				`3:21: listen.shutdown_timeout: "0s" is not positive; expected a duration greater than 0 and at most 10m, like 30s`,
			},
		},
		{
			name: "duration without unit",
			src:  "listen:\n  read_header_timeout: 10\n" + valid,
			want: []string{`2:24: listen.read_header_timeout: 10 is a number without a unit; expected Go duration syntax like 5m or 300s`},
		},
		{
			name: "integer of the wrong type",
			src:  valid + "  max_token_bytes: lots\n",
			want: []string{`5:20: kerberos.max_token_bytes: "lots" is not an integer; expected an integer from 1024 to 1048576`},
		},
		{
			name:  "list of the wrong type",
			src:   "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: KEYTAB\n  spns: [HTTP/sso.example.test]\n",
			want:  []string{`3:12: kerberos.keytabs: got "`},
			hints: []string{`"; expected a list of keytab files`},
		},
		{
			name: "boolean of the wrong type",
			src:  valid + "log:\n  expose_reasons: yes\n",
			want: []string{`6:19: log.expose_reasons: "yes" is not a boolean; expected true or false`},
		},
		{
			name: "section not a mapping",
			src:  valid + "log: debug\n",
			want: []string{`5:6: log: got "debug"; expected the log section, a mapping`},
		},
		{
			name: "lower-case realm",
			src:  "kerberos:\n  realm: example.test\n  keytabs: [KEYTAB]\n  spns: [HTTP/sso.example.test]\n",
			want: []string{`2:10: kerberos.realm: "example.test" is not upper case; expected the realm in upper case: "EXAMPLE.TEST"`},
		},
		{
			name: "trusted realms wrong case or own or repeated or with @",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  trusted_realms: [partner.test, EXAMPLE.TEST, OTHER.TEST, OTHER.TEST, \"A@B\"]\n  keytabs: [KEYTAB]\n  spns: [HTTP/sso.example.test]\n",
			want: []string{
				`3:20: kerberos.trusted_realms[0]: "partner.test" is not upper case; expected the realm in upper case: "PARTNER.TEST"`,
				`3:34: kerberos.trusted_realms[1]: "EXAMPLE.TEST" is kerberos.realm itself; expected only the realms of other, trusted domains (the own realm is always accepted)`,
				`3:60: kerberos.trusted_realms[3]: "OTHER.TEST" is a duplicate of kerberos.trusted_realms[2]; expected each realm once`,
				`3:72: kerberos.trusted_realms[4]: "A@B" contains '@'; expected a realm in upper case`,
			},
		},
		{
			name: "trusted realms not a list",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  trusted_realms: PARTNER.TEST\n  keytabs: [KEYTAB]\n  spns: [HTTP/sso.example.test]\n",
			want: []string{`3:19: kerberos.trusted_realms: got "PARTNER.TEST"; expected a list of realms in upper case, like PARTNER.EXAMPLE, other than kerberos.realm`},
		},
		{
			name: "realm with spaces",
			src:  "kerberos:\n  realm: EXAMPLE TEST\n  keytabs: [KEYTAB]\n  spns: [HTTP/sso.example.test]\n",
			want: []string{`2:10: kerberos.realm: "EXAMPLE TEST" contains spaces; expected the Kerberos realm in upper case`},
		},
		{
			name: "missing keytab file",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs:\n    - KEYTAB\n    - /nonexistent/gw.keytab\n  spns: [HTTP/sso.example.test]\n",
			want: []string{`5:7: kerberos.keytabs[1]: "/nonexistent/gw.keytab" does not exist; expected a readable keytab file (relative paths are resolved against the configuration file's directory)`},
		},
		{
			name:  "keytab is a directory",
			src:   "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [.]\n  spns: [HTTP/sso.example.test]\n",
			want:  []string{`3:13: kerberos.keytabs[0]: "." (resolved to `},
			hints: []string{`) is a directory; expected a readable keytab file`},
		},
		{
			name: "empty keytab list",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: []\n  spns: [HTTP/sso.example.test]\n",
			want: []string{`3:12: kerberos.keytabs: empty list; expected a list of keytab files`},
		},
		{
			name: "SPN with a realm",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [KEYTAB]\n  spns: [HTTP/sso.example.test@EXAMPLE.TEST]\n",
			want: []string{`4:10: kerberos.spns[0]: "HTTP/sso.example.test@EXAMPLE.TEST" includes a realm; expected service/host without @REALM (the realm is kerberos.realm): "HTTP/sso.example.test"`},
		},
		{
			name: "duplicate SPN",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [KEYTAB]\n  spns:\n    - HTTP/sso.example.test\n    - http/SSO.example.test\n",
			want: []string{`6:7: kerberos.spns[1]: "http/SSO.example.test" is a duplicate of kerberos.spns[0] (SPNs compare case-insensitively); expected each SPN once`},
		},
		{
			name: "SPN without a host",
			src:  "kerberos:\n  realm: EXAMPLE.TEST\n  keytabs: [KEYTAB]\n  spns: [sso.example.test]\n",
			want: []string{`4:10: kerberos.spns[0]: "sso.example.test" is not of the form service/host; expected a service principal name service/host`},
		},
		{
			name:  "unknown enctype",
			src:   valid + "  enctypes: [aes256-cts-hmac-sha1-96, aes512]\n",
			want:  []string{`5:39: kerberos.enctypes[1]: "aes512" is not a supported encryption type; expected encryption type names, each one of aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha384-192, aes128-cts-hmac-sha256-128, rc4-hmac`},
			hints: []string{"aliases aes256-cts, aes128-cts, arcfour-hmac"},
		},
		{
			name: "misspelt enctype",
			src:  valid + "  enctypes: [aes256-cts-hmac-sha1]\n",
			want: []string{`5:14: kerberos.enctypes[0]: "aes256-cts-hmac-sha1" is not a supported encryption type; did you mean aes256-cts-hmac-sha1-96?`},
		},
		{
			name: "DES",
			src:  valid + "  enctypes:\n    - des-cbc-md5\n    - des3-cbc-sha1\n",
			want: []string{
				`6:7: kerberos.enctypes[0]: "des-cbc-md5": DES is broken and not supported; expected encryption type names`,
				`7:7: kerberos.enctypes[1]: "des3-cbc-sha1": DES is broken and not supported`,
			},
		},
		{
			name: "duplicate enctype through an alias",
			src:  valid + "  enctypes: [aes256-cts-hmac-sha1-96, aes256-cts]\n",
			want: []string{`5:39: kerberos.enctypes[1]: "aes256-cts" is the same encryption type as kerberos.enctypes[0] (aes256-cts-hmac-sha1-96); expected each once`},
		},
		{
			name: "negative clock skew",
			src:  valid + "  clock_skew: -5m\n",
			want: []string{`5:15: kerberos.clock_skew: "-5m" is not positive; expected a duration greater than 0 and at most 1h, like 5m`},
		},
		{
			name: "clock skew too long",
			src:  valid + "  clock_skew: 2h\n",
			want: []string{`5:15: kerberos.clock_skew: "2h" is too long; expected a duration greater than 0 and at most 1h`},
		},
		{
			name: "token too big",
			src:  valid + "  max_token_bytes: 2000000\n",
			want: []string{`5:20: kerberos.max_token_bytes: 2000000 is too large; expected an integer from 1024 to 1048576`},
		},
		{
			name: "replay cache too small",
			src:  valid + "  replay_cache_size: 10\n",
			want: []string{`5:22: kerberos.replay_cache_size: 10 is too small; expected a number of entries of at least 1000`},
		},
		{
			name: "max_header_bytes too small for max_token_bytes",
			src:  "listen:\n  max_header_bytes: 65536\n" + valid,
			want: []string{`2:21: listen.max_header_bytes: 65536 is too small for kerberos.max_token_bytes 65536; expected at least 66560 (max_token_bytes + 1024) so that the largest allowed token fits, or 0 for the default`},
		},
		{
			name: "address without host",
			src:  "listen:\n  address: 8080\n" + valid,
			want: []string{`2:12: listen.address: 8080 is a port without a host; did you mean ":8080"?`},
		},
		{
			name: "address with a bad port",
			src:  "listen:\n  address: \"localhost:99999\"\n" + valid,
			want: []string{`2:12: listen.address: "localhost:99999" has port 99999, out of the range 0 to 65535; expected host:port to listen on`},
		},
		{
			name: "external_url with a path",
			src:  "listen:\n  external_url: https://sso.example.test/sso\n" + valid,
			want: []string{`2:17: listen.external_url: "https://sso.example.test/sso" has a path, query or fragment; kerbgate's endpoints are at the root of its host; expected the URL clients use to reach kerbgate, scheme and host only, like "https://sso.example.test"`},
		},
		{
			name: "external_url of another scheme",
			src:  "listen:\n  external_url: sso.example.test\n" + valid,
			want: []string{`2:17: listen.external_url: "sso.example.test" has scheme "", not https or http; expected the URL clients use`},
		},
		{
			name: "trusted proxy not a CIDR",
			src:  "listen:\n  trusted_proxies:\n    - 10.0.0.0/24\n    - 10.0.0.300/24\n    - lb.example.test\n    - 10.0.0.1/24\n" + valid,
			want: []string{
				`4:7: listen.trusted_proxies[1]: "10.0.0.300/24" is not a CIDR; expected a CIDR like "10.0.0.0/24", or one address`,
				`5:7: listen.trusted_proxies[2]: "lb.example.test" is neither a CIDR nor an IP address; expected a CIDR like "10.0.0.0/24", or one address`,
				`6:7: listen.trusted_proxies[3]: "10.0.0.1/24" has host bits set; did you mean 10.0.0.0/24?; expected a CIDR`,
			},
		},
		{
			name: "trusted_proxies not a list",
			src:  "listen:\n  trusted_proxies: 10.0.0.0/24\n" + valid,
			want: []string{`2:20: listen.trusted_proxies: got "10.0.0.0/24"; expected a list of the load balancers' and reverse proxies' addresses as CIDRs, like "10.0.0.0/24" or "192.0.2.7/32"`},
		},
		{
			name: "unknown log level",
			src:  valid + "log:\n  level: verbose\n",
			want: []string{`6:10: log.level: "verbose" is not a log level; expected one of debug, info, warn, error`},
		},
		{
			name: "unknown section with a suggestion",
			src:  "kerberso:\n  realm: EXAMPLE.TEST\n",
			want: []string{
				`1:1: kerberos.realm: missing; expected the Kerberos realm in upper case, like EXAMPLE.TEST`,
				`1:1: kerberos.keytabs: missing; expected a list of keytab files`,
				`1:1: kerberos.spns: missing; expected a list of service principal names`,
				`1:1: kerberso: unknown field; did you mean kerberos?`,
			},
		},
		{
			name: "unknown field with a suggestion",
			src:  valid + "  clockskew: 5m\n",
			want: []string{`5:3: kerberos.clockskew: unknown field; did you mean clock_skew?`},
		},
		{
			name: "misplaced field",
			src:  valid + "log:\n  realm: EXAMPLE.TEST\n",
			want: []string{`6:3: log.realm: unknown field; did you mean kerberos.realm?`},
		},
		{
			name: "duplicate field",
			src:  valid + "  realm: OTHER.TEST\n",
			want: []string{`5:3: kerberos.realm: duplicate field, already set at line 2; expected each field once`},
		},
		{
			name: "YAML syntax error",
			src:  valid + "log:\n  level: info: debug\n",
			want: []string{`6: invalid YAML: mapping values are not allowed in this context`},
		},
		{
			name: "top level not a mapping",
			src:  "- kerberos\n- log\n",
			want: []string{`1:1: got a list; expected a mapping of sections (listen, kerberos, log, directory, store, sso, tls, epa, proxy, oidc_provider, password_signin, forward_auth)`},
		},
		{
			name: "multiple errors collected in file order",
			src: `log:
  format: xml
listen:
  address: "::1"
kerberos:
  realm: example.test
  keytabs: [KEYTAB]
  spns: [HTTP/a@EXAMPLE.TEST]
  enctypes: [des-cbc-crc]
  clock_skew: 10y
`,
			want: []string{
				`2:11: log.format: "xml" is not a log format; expected json or text`,
				`4:12: listen.address: "::1" is not host:port (too many colons in address); expected host:port`,
				`6:10: kerberos.realm: "example.test" is not upper case`,
				`8:10: kerberos.spns[0]: "HTTP/a@EXAMPLE.TEST" includes a realm`,
				`9:14: kerberos.enctypes[0]: "des-cbc-crc": DES is broken and not supported`,
				`10:15: kerberos.clock_skew: "10y" is not a duration`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, invalidCase(tc)) })
	}
}

func TestYAMLSyntaxErrorHasLine(t *testing.T) {
	_, err, file, _ := parse(t, valid+"log:\n  level: info: debug\n")
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("err = %v, want one error", err)
	}
	if es[0].Line != 6 || es[0].Col != 0 || !strings.HasPrefix(es[0].Error(), file+":") || strings.Contains(es[0].Msg, "yaml: line") {
		t.Errorf("syntax error %+v (%v): want FILE:LINE: with line 6 and no column", es[0], es[0])
	}
}

func TestEmptyFileReportsRequiredFields(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n"} {
		_, err := Parse("kerbgate.yaml", []byte(src))
		want := "kerbgate.yaml:1:1: kerberos.realm: missing; expected the Kerberos realm in upper case, like EXAMPLE.TEST\n" +
			"kerbgate.yaml:1:1: kerberos.keytabs: missing; expected a list of keytab files\n" +
			`kerbgate.yaml:1:1: kerberos.spns: missing; expected a list of service principal names like "HTTP/sso.example.test"`
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", src, err, want)
		}
	}
}

func TestMissingKeytabUnwraps(t *testing.T) {
	_, err, _, _ := parse(t, "kerberos: {realm: A.TEST, keytabs: [nope.keytab], spns: [HTTP/x]}\n")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "kerberos.keytabs[0]" || fe.Line != 1 {
		t.Errorf("FieldError = %+v", fe)
	}
}

func TestLoad(t *testing.T) {
	dir, file, _ := setup(t)
	if err := os.WriteFile(file, []byte("kerberos: {realm: EXAMPLE.TEST, keytabs: [svc-gw.keytab], spns: [HTTP/x]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != file || c.Kerberos.Keytabs[0] != filepath.Join(dir, "svc-gw.keytab") {
		t.Errorf("Load: %+v", c)
	}

	missing := filepath.Join(dir, "absent.yaml")
	_, err = Load(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), missing+": cannot read the configuration file: ") {
		t.Errorf("Load(absent) = %v", err)
	}
}

// The files Example names, each exactly once; the tests swap them for setup's files.
const (
	exampleKeytab   = "/etc/kerbgate/svc-gw.keytab"
	exampleCAFile   = "/etc/kerbgate/ad-ca.pem"
	examplePassword = "/etc/kerbgate/ldap.password"
)

// exampleIn returns Example with the files it names replaced by those setup made in
// the directory of file, except the keytab when keytab is "".
func exampleIn(t *testing.T, file, keytab string) string {
	t.Helper()
	ex := Example()
	dir := filepath.Dir(file)
	for _, r := range []struct{ from, to string }{
		{exampleKeytab, keytab},
		{exampleCAFile, filepath.Join(dir, "ad-ca.pem")},
		{examplePassword, filepath.Join(dir, "ldap.password")},
	} {
		if n := strings.Count(ex, r.from); n != 1 {
			t.Fatalf("Example names %s %d times; the test expects once", r.from, n)
		}
		if r.to != "" {
			ex = strings.Replace(ex, r.from, r.to, 1)
		}
	}
	return ex
}

func TestExampleParses(t *testing.T) {
	dir, file, keytab := setup(t)
	c, err := Parse(file, []byte(exampleIn(t, file, keytab)))
	if err != nil {
		t.Fatalf("Example does not parse:\n%v", err)
	}
	if c.Kerberos.Realm != "EXAMPLE.TEST" || !reflect.DeepEqual(c.Kerberos.Keytabs, []string{keytab}) {
		t.Errorf("Example parsed to %+v", c)
	}
	if !c.Directory.Enabled || c.Directory.CAFile != filepath.Join(dir, "ad-ca.pem") || c.Directory.PasswordFile != filepath.Join(dir, "ldap.password") {
		t.Errorf("Example's directory parsed to %+v", c.Directory)
	}
	if len(c.SSO.Apps) != 1 || c.SSO.Apps[0].ID != "demo" || c.Store.Path != filepath.Join(dir, "kerbgate.db") {
		t.Errorf("Example's sso and store parsed to %+v, %+v", c.SSO, c.Store)
	}

	// Without the keytab, the only problem is the keytab.
	_, err = Parse(file, []byte(exampleIn(t, file, "")))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "kerberos.keytabs[0]" {
		t.Errorf("Example without its keytab: %v", err)
	}
}

// The example's values are the defaults, so that it documents them: it parses to the
// same Config as a file with only the values that have no default.
func TestExampleShowsDefaults(t *testing.T) {
	_, file, keytab := setup(t)
	ex, err := Parse(file, []byte(exampleIn(t, file, keytab)))
	if err != nil {
		t.Fatal(err)
	}
	min, err := Parse(file, []byte(strings.ReplaceAll(valid, "KEYTAB", keytab)+`directory:
  url: ldaps://dc1.example.test
  ca_file: ad-ca.pem
  base_dn: DC=example,DC=test
  bind:
    method: simple
    dn: CN=svc-ldap,CN=Users,DC=example,DC=test
    password_file: ldap.password
sso:
  apps:
    - id: demo
      name: Demo application
      redirect_uris: [http://app.example.test:9090/callback]
      secret_hash: `+testArgon2+`
      allowed_groups: [staff, S-1-5-21-1-2-3-1110]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ex, min) {
		t.Errorf("Example: %+v\ndefaults: %+v", ex, min)
	}
}

// exampleAlternatives are fields the example shows only in comments, as
// "# name: value", because they are alternatives to fields it sets.
var exampleAlternatives = map[string]bool{
	"directory.bind.password_env":      true, // or password_file
	"directory.bind.keytab":            true, // bind.method gssapi
	"directory.bind.principal":         true, // bind.method gssapi
	"tls":                              true, // optional: kerbgate serves HTTPS itself
	"proxy":                            true, // optional: published applications
	"oidc_provider":                    true, // optional: kerbgate as an OpenID Provider
	"password_signin":                  true, // optional: the password fallback
	"sso.apps[0].challenge":            true, // with password_signin
	"sso.apps[0].basic_auth":           true, // with password_signin
	"forward_auth":                     true, // optional: kerbgate as a reverse proxy's auth endpoint
	"log.debug_token_file":             true, // off by default
	"store.cookie_keys_file":           true, // made next to the store by default
	"tls.cert":                         true,
	"tls.key":                          true,
	"tls.reload_interval":              true,
	"epa.channel_binding_certificates": true, // only behind a TLS-terminating load balancer
	"store.redis":                      true, // or path (TestExampleRedisParses checks its fields)
	"listen.external_url":              true, // only behind a TLS-terminating load balancer
	"listen.trusted_proxies":           true, // only behind a load balancer
}

// Every field of the schema appears in the example, so that it stays complete as
// fields are added.
func TestExampleIsComplete(t *testing.T) {
	d := newDecoder("example.yaml")
	root, ok := parseYAML(d, []byte(Example()))
	if !ok || root == nil {
		t.Fatalf("Example is not YAML: %v", d.errs)
	}
	doc := d.newMapping("", top, root, "a mapping")
	var c Config
	for _, s := range sections {
		s.decode(doc.section(s.name), &c)
	}
	for _, m := range d.mappings {
		for _, k := range m.known {
			_, ok := m.keys[k]
			switch alt := exampleAlternatives[m.child(k)]; {
			case ok && alt:
				t.Errorf("Example sets %s, an alternative to another field", m.child(k))
			case !ok && alt && !strings.Contains(Example(), "# "+k+":"):
				t.Errorf("Example lacks %s, even in a comment", m.child(k))
			case !ok && !alt:
				t.Errorf("Example lacks %s", m.child(k))
			}
		}
	}
}

// Issue 13 item 5: the front end's scheme and the trusted proxies.
func TestListenExternalURLAndTrustedProxies(t *testing.T) {
	c, err, _, _ := parse(t, "listen:\n  external_url: HTTPS://SSO.example.test:8443/\n  trusted_proxies: [10.0.0.0/24, 192.0.2.7, \"2001:db8::/32\", \"::ffff:198.51.100.0/120\"]\n"+valid)
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Listen.ExternalURL; u == nil || u.String() != "https://sso.example.test:8443" {
		t.Errorf("external_url %v", u)
	}
	var got []string
	for _, p := range c.Listen.TrustedProxies {
		got = append(got, p.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/24 192.0.2.7/32 2001:db8::/32 198.51.100.0/24" {
		t.Errorf("trusted_proxies %v", got)
	}
	if c, err, _, _ = parse(t, valid); err != nil {
		t.Fatal(err)
	}
	if c.Listen.ExternalURL != nil || c.Listen.TrustedProxies != nil {
		t.Errorf("defaults: %+v", c.Listen)
	}
}

// TestParseInvalidSections covers the directory, store and sso sections.
func TestParseInvalidSections(t *testing.T) {
	t.Setenv("KERBGATE_TEST_PASSWORD", "s3cret")
	// noCA is validDir over ldap:// without a ca_file (url on line 6, bind at 8:3).
	noCA := strings.Replace(strings.Replace(validDir, "ldaps://", "ldap://", 1), "  ca_file: ad-ca.pem\n", "", 1)
	for _, tc := range []invalidCase{
		{
			name: "password in the file",
			src:  validDir + "    password: hunter2\n",
			want: []string{`13:5: directory.bind.password: passwords do not belong in the configuration file; expected password_file or password_env`},
		},
		{
			name: "simple bind over ldap without start_tls",
			src:  noCA,
			want: []string{`6:8: directory.url: "ldap://dc1.example.test" with bind.method simple would send the bind password in clear text; simple bind needs TLS: use ldaps:// or start_tls: true`},
		},
		{
			name: "simple bind over ldap with start_tls false",
			src:  noCA + "  start_tls: false\n",
			want: []string{`12:14: directory.start_tls: false with an ldap:// URL and bind.method simple would send the bind password in clear text; simple bind needs TLS: use ldaps:// or start_tls: true`},
		},
		{
			name: "ca_file without TLS",
			src:  strings.Replace(validDir, "ldaps://", "ldap://", 1) + "  start_tls: false\n",
			want: []string{
				`7:12: directory.ca_file: "ad-ca.pem" is set but the connection to the directory does not use TLS; expected ca_file only with ldaps:// or start_tls: true`,
				`13:14: directory.start_tls: false with an ldap:// URL and bind.method simple would send the bind password in clear text; simple bind needs TLS`,
			},
		},
		{
			name: "start_tls with ldaps",
			src:  validDir + "  start_tls: true\n",
			want: []string{`13:14: directory.start_tls: true with an ldaps:// URL, which uses TLS already; expected start_tls: true only with ldap://`},
		},
		{
			name: "URL of another scheme",
			src:  strings.Replace(validDir, "ldaps://dc1.example.test", "https://dc1.example.test", 1),
			want: []string{`6:8: directory.url: "https://dc1.example.test" has scheme https; expected an LDAP URL like "ldaps://dc1.example.test" (ldaps:// or ldap://; the port is 636 or 389 by default)`},
		},
		{
			name: "URL with a base DN",
			src:  strings.Replace(validDir, "ldaps://dc1.example.test", "ldaps://dc1.example.test/DC=example,DC=test", 1),
			want: []string{`6:8: directory.url: "ldaps://dc1.example.test/DC=example,DC=test" has a path, query or fragment (the base DN is directory.base_dn); expected an LDAP URL`},
		},
		{
			name: "URL with a bad port",
			src:  strings.Replace(validDir, "ldaps://dc1.example.test", "ldaps://dc1.example.test:0", 1),
			want: []string{`6:8: directory.url: "ldaps://dc1.example.test:0" has port "0", out of the range 1 to 65535; expected an LDAP URL`},
		},
		{
			name: "missing URL and CA file",
			src:  strings.Replace(strings.Replace(validDir, "  url: ldaps://dc1.example.test\n", "", 1), "  ca_file: ad-ca.pem\n", "", 1),
			// Without a URL, whether TLS is used is unknown: ca_file is not required.
			want: []string{`5:1: directory.url: missing; expected an LDAP URL like "ldaps://dc1.example.test"`},
		},
		{
			name: "missing CA file with ldaps",
			src:  strings.Replace(validDir, "  ca_file: ad-ca.pem\n", "", 1),
			want: []string{`5:1: directory.ca_file: missing; expected a PEM file of the CA certificates that sign the directory server's certificate`},
		},
		{
			name:  "CA file that does not exist",
			src:   strings.Replace(validDir, "ca_file: ad-ca.pem", "ca_file: nope.pem", 1),
			want:  []string{`7:12: directory.ca_file: "nope.pem" (resolved to `},
			hints: []string{`nope.pem) does not exist; expected a PEM file of the CA certificates`},
		},
		{
			name:  "CA file without a certificate",
			src:   strings.Replace(validDir, "ca_file: ad-ca.pem", "ca_file: svc-gw.keytab", 1),
			want:  []string{`7:12: directory.ca_file: "svc-gw.keytab" (resolved to `},
			hints: []string{`svc-gw.keytab) contains no PEM CERTIFICATE block; expected a PEM file of the CA certificates`},
		},
		{
			name: "server_name with a port",
			src:  validDir + "  server_name: dc1.example.test:636\n",
			want: []string{`13:16: directory.server_name: "dc1.example.test:636" is not a host name; expected the host name the directory server's certificate carries`},
		},
		{
			name: "base DN not a DN",
			src:  strings.Replace(validDir, "base_dn: DC=example,DC=test", "base_dn: example.test", 1),
			want: []string{`8:12: directory.base_dn: "example.test" is not a distinguished name ("example.test" is not attribute=value); expected the distinguished name searches start at, like "DC=example,DC=test"`},
		},
		{
			name: "bind DN with an empty component",
			src:  strings.Replace(validDir, "dn: CN=svc-ldap,CN=Users,", "dn: CN=svc-ldap,,", 1),
			want: []string{`11:9: directory.bind.dn: "CN=svc-ldap,,DC=example,DC=test" is not a distinguished name (an empty component); expected the distinguished name of the account kerbgate binds as`},
		},
		{
			name: "unknown bind method",
			src:  strings.Replace(validDir, "method: simple", "method: ntlm", 1),
			want: []string{`10:13: directory.bind.method: "ntlm" is not a bind method; expected simple (a DN and a password) or gssapi (a keytab)`},
		},
		{
			name: "missing bind",
			src:  valid + "directory:\n  url: ldaps://dc1.example.test\n  ca_file: ad-ca.pem\n  base_dn: DC=example,DC=test\n",
			want: []string{`5:1: directory.bind.method: missing; expected simple (a DN and a password) or gssapi (a keytab)`},
		},
		{
			name: "password_file and password_env",
			src:  validDir + "    password_env: KERBGATE_TEST_PASSWORD\n",
			want: []string{`13:19: directory.bind.password_env: set together with password_file; expected exactly one of password_file or password_env`},
		},
		{
			name: "neither password_file nor password_env",
			src:  strings.Replace(validDir, "    password_file: ldap.password\n", "", 1),
			want: []string{`9:3: directory.bind: missing password_file or password_env; expected exactly one of them with bind.method simple`},
		},
		{
			name: "password_env not set",
			src:  strings.Replace(validDir, "password_file: ldap.password", "password_env: KERBGATE_TEST_NEVER_SET_ANYWHERE", 1),
			want: []string{`12:19: directory.bind.password_env: "KERBGATE_TEST_NEVER_SET_ANYWHERE" is not set in kerbgate's environment; expected the name of an environment variable holding the bind password`},
		},
		{
			name: "password_env not a name",
			src:  strings.Replace(validDir, "password_file: ldap.password", "password_env: $KERBGATE_TEST_PASSWORD", 1),
			want: []string{`12:19: directory.bind.password_env: "$KERBGATE_TEST_PASSWORD" is not an environment variable name; expected the name of an environment variable`},
		},
		{
			name:  "password file readable by everyone",
			src:   strings.Replace(validDir, "password_file: ldap.password", "password_file: public.password", 1),
			want:  []string{`12:20: directory.bind.password_file: "public.password" (resolved to `},
			hints: []string{`public.password) is readable by everyone; chmod 600`},
		},
		{
			name: "gssapi field with a simple bind",
			src:  validDir + "    principal: svc-gw\n",
			want: []string{`13:16: directory.bind.principal: set with bind.method simple; expected principal only with bind.method gssapi`},
		},
		{
			name: "negative cache_ttl",
			src:  validDir + "  cache_ttl: -1s\n",
			want: []string{`13:14: directory.cache_ttl: "-1s" is negative; expected a duration from 0 (no caching) to 1h, like 60s`},
		},
		{
			name: "zero timeout",
			src:  validDir + "  timeout: 0s\n",
			want: []string{`13:12: directory.timeout: "0s" is not positive; expected a duration greater than 0 and at most 1m, like 5s`},
		},
		{
			name: "directory field misspelt",
			src:  validDir + "  base_db: DC=example,DC=test\n",
			want: []string{`13:3: directory.base_db: unknown field; did you mean base_dn?`},
		},
		{
			name:  "store in a directory that does not exist",
			src:   valid + "store:\n  path: nodir/kerbgate.db\n",
			want:  []string{`6:9: store.path: "nodir/kerbgate.db" (resolved to `},
			hints: []string{`nodir/kerbgate.db) is in `, `nodir, which does not exist; expected the path of the database file, in an existing directory`},
		},
		{
			name:  "store path is a directory",
			src:   valid + "store:\n  path: .\n",
			want:  []string{`6:9: store.path: "." (resolved to `},
			hints: []string{`) is a directory; expected the path of the database file`},
		},
		{
			name: "cookie name with a space",
			src:  valid + "sso:\n  cookie_name: kerbgate session\n",
			want: []string{`6:16: sso.cookie_name: "kerbgate session" contains " "; expected a cookie name of letters, digits and`},
		},
		{
			name: "browser session too long",
			src:  valid + "sso:\n  browser_session_ttl: 1000h\n",
			want: []string{`6:24: sso.browser_session_ttl: "1000h" is too long; expected a duration from 1m to 720h (30 days), like 8h`},
		},
		{
			name: "proxy path_prefix not canonical",
			src: valid + "proxy:\n  apps:\n    - id: a\n      host: app.example.test\n      path_prefix: /app//x/\n      upstream: http://127.0.0.1:8080\n      pre_auth: passthrough\n" +
				"    - id: b\n      host: b.example.test\n      path_prefix: /b%2f/\n      upstream: http://127.0.0.1:8080\n      pre_auth: passthrough\n",
			want: []string{
				`9:20: proxy.apps[0].path_prefix: "/app//x/" is not a canonical path (its canonical form is /app/x/); expected a canonical path starting with "/", like /app/`,
				`14:20: proxy.apps[1].path_prefix: "/b%2f/" is not a canonical path (encoded / (%2F)); expected a canonical path starting with "/", like /app/`,
			},
		},
		{
			name: "proxy path_prefixes differing only in case",
			src: valid + "proxy:\n  apps:\n    - id: a\n      host: app.example.test\n      path_prefix: /app/\n      upstream: http://127.0.0.1:8080\n      pre_auth: passthrough\n" +
				"    - id: b\n      host: APP.example.test\n      path_prefix: /App./\n      upstream: http://127.0.0.1:8080\n      pre_auth: passthrough\n",
			want: []string{
				`14:20: proxy.apps[1].path_prefix: /App./ on host app.example.test is /app/ of proxy.apps[0] to an upstream that ignores case and trailing dots (IIS); expected path prefixes that differ otherwise`,
			},
		},
		{
			name: "app not a mapping",
			src:  valid + "sso:\n  apps: [demo]\n",
			want: []string{`6:10: sso.apps[0]: got "demo"; expected an application: a mapping with at least id, redirect_uris and secret_hash`},
		},
		{
			name: "app id in upper case",
			src:  strings.Replace(validSSO, "id: demo", "id: Demo", 1),
			want: []string{`7:11: sso.apps[0].id: "Demo" is not an app id; expected an app id of 1 to 64 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, like demo`},
		},
		{
			name: "duplicate app id",
			src:  validSSO + "    - id: demo\n      redirect_uris: [https://b.example.com/cb]\n      secret_hash: " + testArgon2 + "\n",
			want: []string{`10:11: sso.apps[1].id: "demo" is the id of sso.apps[0] too; expected each app id once`},
		},
		{
			name: "app without redirect_uris and secret_hash",
			src:  valid + "sso:\n  apps:\n    - id: demo\n",
			want: []string{
				`7:7: sso.apps[0].redirect_uris: missing; expected a list of the URIs the browser is sent back to`,
				`7:7: sso.apps[0].secret_hash: missing; expected the client secret's hash as printed by kerbgate hash-secret`,
			},
		},
		{
			name: "empty redirect_uris",
			src:  strings.Replace(validSSO, "[https://app.example.com/callback]", "[]", 1),
			want: []string{`8:22: sso.apps[0].redirect_uris: empty list; expected a list of the URIs the browser is sent back to`},
		},
		{
			name: "plain http redirect URI",
			src:  strings.Replace(validSSO, "https://app.example.com/callback", "http://app.example.com/callback", 1),
			want: []string{`8:23: sso.apps[0].redirect_uris[0]: "http://app.example.com/callback" uses http; use https (plain http is allowed only for localhost, 127.0.0.1, ::1 and host names ending in .test)`},
		},
		{
			name: "redirect URI with a fragment",
			src:  strings.Replace(validSSO, "https://app.example.com/callback", "https://app.example.com/callback#top", 1),
			want: []string{`8:23: sso.apps[0].redirect_uris[0]: "https://app.example.com/callback#top" has a fragment; expected an absolute https URL without a fragment`},
		},
		{
			name: "redirect URI with user information",
			src:  strings.Replace(validSSO, "https://app.example.com/callback", "https://me@app.example.com/callback", 1),
			want: []string{`8:23: sso.apps[0].redirect_uris[0]: "https://me@app.example.com/callback" contains user information; expected an absolute https URL`},
		},
		{
			name: "relative redirect URI",
			src:  strings.Replace(validSSO, "https://app.example.com/callback", "/callback", 1),
			want: []string{`8:23: sso.apps[0].redirect_uris[0]: "/callback" is not an absolute URL; expected an absolute https URL`},
		},
		{
			name: "duplicate redirect URI",
			src:  strings.Replace(validSSO, "[https://app.example.com/callback]", "[https://a.example.com/cb, https://a.example.com/cb]", 1),
			want: []string{`8:49: sso.apps[0].redirect_uris[1]: "https://a.example.com/cb" is a duplicate of sso.apps[0].redirect_uris[0]; expected each redirect URI once`},
		},
		{
			name:  "secret instead of its hash",
			src:   strings.Replace(validSSO, testBcrypt, "hunter2", 1),
			want:  []string{`9:20: sso.apps[0].secret_hash: not a valid secret hash (`},
			hints: []string{`; expected the client secret's hash as printed by kerbgate hash-secret`},
		},
		{
			name: "token_ttl too short",
			src:  validSSO + "      token_ttl: 500ms\n",
			want: []string{`10:18: sso.apps[0].token_ttl: "500ms" is too short; expected a duration from 1s to 10m, like 60s`},
		},
		{
			name: "session_ttl without a unit",
			src:  validSSO + "      session_ttl: 3600\n",
			want: []string{`10:20: sso.apps[0].session_ttl: 3600 is a number without a unit; expected Go duration syntax like 5m or 300s`},
		},
		{
			name: "invalid SID",
			src:  validSSO + "      allowed_groups: [S-1-5-21-x]\n",
			want: []string{`10:24: sso.apps[0].allowed_groups[0]: "S-1-5-21-x" is not a valid SID (sub-authority "x" is not a number from 0 to 4294967295); expected a SID like S-1-5-21-…-1110, or a group name`},
		},
		{
			name: "lower-case SID",
			src:  validSSO + "      allowed_groups: [s-1-5-32-544]\n",
			want: []string{`10:24: sso.apps[0].allowed_groups[0]: "s-1-5-32-544" is not a valid SID (it starts with a lower-case s: "S-1-5-32-544")`},
		},
		{
			name: "duplicate group",
			src:  validDir + strings.TrimPrefix(validSSO, valid) + "      allowed_groups: [Staff, staff]\n",
			want: []string{`18:31: sso.apps[0].allowed_groups[1]: "staff" is a duplicate of sso.apps[0].allowed_groups[0] (groups compare case-insensitively); expected each group once`},
		},
		{
			name: "group name without a directory",
			src:  validSSO + "      allowed_groups: [staff, S-1-5-32-544]\n",
			want: []string{`10:24: sso.apps[0].allowed_groups[0]: "staff" is a group name, and sso.apps[0] needs directory to look it up: the file has no directory section; expected a directory section, or the group's SID like S-1-5-21-…-1110`},
		},
		{
			name: "require_directory without a directory",
			src:  validSSO + "      require_directory: true\n",
			want: []string{`10:26: sso.apps[0]: needs directory: require_directory is true but the file has no directory section; expected a directory section, or require_directory: false`},
		},
		{
			name: "app field misspelt",
			src:  validSSO + "      redirect_uri: https://app.example.com/callback\n",
			want: []string{`10:7: sso.apps[0].redirect_uri: unknown field; did you mean redirect_uris?`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
}

func TestParseEPA(t *testing.T) {
	for _, tc := range []invalidCase{
		{
			name: "unknown token checking",
			src:  valid + "epa:\n  token_checking: Always\n",
			want: []string{`6:19: epa.token_checking: "Always" is not a token checking mode; expected None, Allow or Require`},
		},
		{
			name: "unknown flag",
			src:  valid + "epa:\n  token_checking: Allow\n  flags: [Proxy, NoSPN]\n",
			want: []string{`7:18: epa.flags[1]: "NoSPN" is not a flag`},
		},
		{
			name: "None with another flag",
			src:  valid + "epa:\n  token_checking: Allow\n  flags: [None, Proxy]\n",
			want: []string{`7:10: epa.flags: None together with other flags`},
		},
		{
			name:  "ProxyCohosting without Proxy",
			src:   valid + "epa:\n  token_checking: Allow\n  flags: [ProxyCohosting]\n",
			want:  []string{`7:10: epa.flags: ProxyCohosting requires Proxy`},
			hints: []string{"cohosting describes which clients a proxy forwards"},
		},
		{
			name: "Proxy with NoServiceNameCheck",
			src:  valid + "epa:\n  token_checking: Allow\n  flags: [Proxy, NoServiceNameCheck]\n",
			want: []string{`7:10: epa.flags: Proxy with NoServiceNameCheck leaves no check`},
		},
		{
			name: "dotless SPN without AllowDotlessSpn",
			src:  strings.Replace(valid, "spns: [HTTP/sso.example.test]", "spns: [HTTP/sso.example.test, HTTP/sso]", 1) + "epa:\n  token_checking: Allow\n",
			want: []string{`1:1: epa.flags: HTTP/sso is a dotless (NetBIOS) service name; use the fully qualified name, or add the flag AllowDotlessSpn`},
		},
		{
			name: "epa.spns outside kerberos.spns",
			src:  valid + "epa:\n  token_checking: Allow\n  spns: [HTTP/other.example.test]\n",
			want: []string{`7:9: epa.spns: HTTP/other.example.test is not in kerberos.spns, so tickets for it are refused before service binding`},
		},
		{
			name: "Require with no channel",
			src:  valid + "epa:\n  token_checking: Require\n",
			want: []string{`6:19: epa.token_checking: Require with no channel to bind to refuses every sign-in`},
		},
		{
			name: "tls without key",
			src:  valid + "tls:\n  cert: KEYTAB\n",
			want: []string{`5:1: tls.key: missing`},
		},
		{
			name:  "balancer certificate not a certificate",
			src:   valid + "epa:\n  token_checking: Allow\n  channel_binding_certificates: [KEYTAB]\n",
			want:  []string{`7:34: epa.channel_binding_certificates[0]: `},
			hints: []string{"no PEM CERTIFICATE block"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
}

func TestParseTLSAndEPA(t *testing.T) {
	dir, file, keytab := setup(t)
	writePair := func(name string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sso.example.test"},
			DNSNames: []string{"sso.example.test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	}
	writePair("tls")
	writePair("other")
	src := strings.ReplaceAll(valid, "KEYTAB", keytab) + `tls:
  cert: tls.crt
  key: tls.key
  reload_interval: 1s
epa:
  token_checking: require
  flags: [AllowDotlessSpn]
  channel_binding_certificates: [ad-ca.pem]
`
	c, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled || c.TLS.CertFile != filepath.Join(dir, "tls.crt") || c.TLS.ReloadInterval != time.Second {
		t.Errorf("tls: %+v", c.TLS)
	}
	p := c.EPA.Policy
	if p.TokenChecking != epa.Require || p.Flags != epa.AllowDotlessSpn || len(p.ProxyBindings) != 1 ||
		!reflect.DeepEqual(p.SPNs, []string{"HTTP/sso.example.test"}) {
		t.Errorf("epa: %+v", p)
	}
	// A key that is not the certificate's.
	_, err = Parse(file, []byte(strings.Replace(src, "key: tls.key", "key: other.key", 1)))
	if err == nil || !strings.Contains(err.Error(), "tls.key: the certificate and key do not load as a pair") {
		t.Errorf("mismatched key: %v", err)
	}
}

const validTrusted = `kerberos:
  realm: EXAMPLE.TEST
  trusted_realms: [PARTNER.TEST]
  keytabs: [KEYTAB]
  spns: [HTTP/sso.example.test]
proxy:
  delegation: {keytab: KEYTAB, principal: svc-gw, kdcs: ["dc1.example.test:88"]}
  apps:
    - id: intranet
      host: intranet.example.test
      upstream: http://127.0.0.1:8080
      pre_auth: iwa
      kerberos:
        spn: HTTP/intranet.example.test
        login_identity: sam_account_name
`

func TestTrustedRealmsAndMapForeignRealms(t *testing.T) {
	c, err, _, _ := parse(t, validTrusted+"        map_foreign_realms: [PARTNER.TEST]\n")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Kerberos.TrustedRealms, []string{"PARTNER.TEST"}) ||
		!reflect.DeepEqual(c.Proxy.Apps[0].Kerberos.MapForeignRealms, []string{"PARTNER.TEST"}) {
		t.Errorf("trusted %v, mapped %v", c.Kerberos.TrustedRealms, c.Proxy.Apps[0].Kerberos.MapForeignRealms)
	}
	// By default no realm is trusted or mapped.
	c, err, _, _ = parse(t, valid)
	if err != nil || c.Kerberos.TrustedRealms != nil {
		t.Errorf("default trusted realms %v (%v)", c.Kerberos.TrustedRealms, err)
	}
	checkInvalid(t, invalidCase{
		name: "mapped realm not trusted",
		src:  validTrusted + "        map_foreign_realms: [PARTNER.TEST, OTHER.TEST, partner.test]\n",
		want: []string{
			`16:44: proxy.apps[0].kerberos.map_foreign_realms[1]: "OTHER.TEST" is not in kerberos.trusted_realms; expected a trusted realm (users of other realms never sign in)`,
			`16:56: proxy.apps[0].kerberos.map_foreign_realms[2]: "partner.test" is not upper case; expected the realm in upper case: "PARTNER.TEST"`,
		},
	})
}
