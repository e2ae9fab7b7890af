package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// setup makes a directory holding a keytab file (its contents do not matter: the
// package only checks that it is readable) and returns the directory, the path a
// configuration file in it would have, and the keytab's absolute path.
func setup(t *testing.T) (dir, file, keytab string) {
	t.Helper()
	dir = t.TempDir()
	keytab = filepath.Join(dir, "svc-gw.keytab")
	if err := os.WriteFile(keytab, []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "kerbgate.yaml"), keytab
}

// parse parses src, in which KEYTAB stands for the keytab's path, as the file in dir.
func parse(t *testing.T, src string) (*Config, error, string, string) {
	t.Helper()
	_, file, keytab := setup(t)
	c, err := Parse(file, []byte(strings.ReplaceAll(src, "KEYTAB", keytab)))
	return c, err, file, keytab
}

func TestParseFull(t *testing.T) {
	dir, file, keytab := setup(t)
	other := filepath.Join(dir, "old.keytab")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
listen:
  address: "127.0.0.1:9443"
  read_header_timeout: 30s
  max_header_bytes: 200000
kerberos:
  realm: CORP.EXAMPLE.COM
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
`
	c, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen: Listen{Address: "127.0.0.1:9443", ReadHeaderTimeout: 30 * time.Second, MaxHeaderBytes: 200000},
		Kerberos: Kerberos{
			Realm:           "CORP.EXAMPLE.COM",
			Keytabs:         []string{keytab, other},
			SPNs:            []string{"HTTP/sso.corp.example.com", "HTTP/sso"},
			Enctypes:        []int32{18, 17, 23},
			ClockSkew:       150 * time.Second,
			MaxTokenBytes:   131072,
			ReplayCacheSize: 5000,
		},
		Log:  Log{Level: slog.LevelDebug, Format: "text", ExposeReasons: true},
		Path: file,
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
		Listen: Listen{Address: ":8080", ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 65536 + 32768},
		Kerberos: Kerberos{
			Realm:           "EXAMPLE.TEST",
			Keytabs:         []string{keytab},
			SPNs:            []string{"HTTP/sso.example.test"},
			Enctypes:        []int32{18, 17, 20, 19},
			ClockSkew:       5 * time.Minute,
			MaxTokenBytes:   65536,
			ReplayCacheSize: 1_000_000,
		},
		Log:  Log{Level: slog.LevelInfo, Format: "json"},
		Path: file,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
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
			name: "future section",
			src:  valid + "tls:\n  cert: /etc/kerbgate/tls.crt\n",
			want: []string{`5:1: tls: kerbgate does not support section tls yet; expected only the sections listen, kerberos and log`},
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
			want: []string{`1:1: got a list; expected a mapping of sections (listen, kerberos, log)`},
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
		t.Run(tc.name, func(t *testing.T) {
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
		})
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

const exampleKeytab = "/etc/kerbgate/svc-gw.keytab"

func TestExampleParses(t *testing.T) {
	ex := Example()
	if n := strings.Count(ex, exampleKeytab); n != 1 {
		t.Fatalf("Example names %s %d times; the test expects once", exampleKeytab, n)
	}
	_, file, keytab := setup(t)
	c, err := Parse(file, []byte(strings.Replace(ex, exampleKeytab, keytab, 1)))
	if err != nil {
		t.Fatalf("Example does not parse:\n%v", err)
	}
	if c.Kerberos.Realm != "EXAMPLE.TEST" || !reflect.DeepEqual(c.Kerberos.Keytabs, []string{keytab}) {
		t.Errorf("Example parsed to %+v", c)
	}

	// Without the keytab, the only problem is the keytab.
	_, err = Parse(file, []byte(ex))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "kerberos.keytabs[0]" {
		t.Errorf("Example without its keytab: %v", err)
	}
}

// The example's values are the defaults, so that it documents them.
func TestExampleShowsDefaults(t *testing.T) {
	_, file, keytab := setup(t)
	ex, err := Parse(file, []byte(strings.Replace(Example(), exampleKeytab, keytab, 1)))
	if err != nil {
		t.Fatal(err)
	}
	min, err := Parse(file, []byte(strings.ReplaceAll(valid, "KEYTAB", keytab)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ex, min) {
		t.Errorf("Example: %+v\ndefaults: %+v", ex, min)
	}
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
			if _, ok := m.keys[k]; !ok {
				t.Errorf("Example lacks %s", m.child(k))
			}
		}
	}
}

func TestEnctypeName(t *testing.T) {
	for e, want := range map[int32]string{
		18: "aes256-cts-hmac-sha1-96",
		17: "aes128-cts-hmac-sha1-96",
		20: "aes256-cts-hmac-sha384-192",
		19: "aes128-cts-hmac-sha256-128",
		23: "rc4-hmac",
		3:  "des-cbc-md5",
		99: "etype 99",
	} {
		if got := EnctypeName(e); got != want {
			t.Errorf("EnctypeName(%d) = %q, want %q", e, got, want)
		}
	}
	// Every supported name round-trips.
	for _, n := range enctypeNames {
		if e, ok := lookupEnctype(EnctypeName(n.etype)); !ok || e != n.etype {
			t.Errorf("lookupEnctype(EnctypeName(%d)) = %d, %v", n.etype, e, ok)
		}
	}
}
