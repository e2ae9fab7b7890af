// Package config owns kerbgate's configuration file: its YAML schema, its defaults and
// its validation. Other packages receive typed values from it (a *Config) and never
// read the file themselves.
//
// Every problem in a file is reported, all at once, as
//
//	FILE:LINE:COL: FIELD.PATH: what is wrong; expected ...
//
// (see Errors and FieldError). To do so the file is decoded into a yaml.Node tree and
// walked by hand rather than unmarshalled, so that every value's position is known.
//
// The package must not open network connections or load keytabs' keys: it only checks
// that the files it names exist and are readable (and parses the directory's and
// Redis's CA certificates and Redis's client certificate and key, and checks
// password files' permissions, not their contents).
//
// Adding a section to the schema means adding its struct to Config, a decode function
// in a file of its own (see listen.go), and an entry in sections; rules that span
// sections, or defaults derived from another section, go in crossChecks.
package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is a validated configuration with every default applied.
type Config struct {
	Listen   Listen
	Kerberos Kerberos
	Log      Log
	// Directory is the optional directory section; Directory.Enabled says whether the
	// file has one.
	Directory Directory
	Store     Store
	SSO       SSO
	// TLS is the optional tls section; TLS.Enabled says whether the file has one.
	TLS TLS
	// EPA is Extended Protection (token_checking None when the file has no epa section).
	EPA EPA
	// Proxy is the published applications (none when the file has no proxy section).
	Proxy Proxy
	// OIDCProvider is kerbgate as an OpenID Provider (disabled without the section).
	OIDCProvider OIDCProvider
	// PasswordSignIn is the password fallback (disabled without the section).
	PasswordSignIn PasswordSignIn
	// ForwardAuth is kerbgate as a reverse proxy's auth endpoint (disabled without
	// the section).
	ForwardAuth ForwardAuth
	// Path is the configuration file's path as given to Load or Parse.
	Path string
}

// sections are the top-level sections of the file, decoded in this order.
var sections = []struct {
	name   string
	decode func(m *mapping, c *Config)
}{
	{"listen", decodeListen},
	{"kerberos", decodeKerberos},
	{"log", decodeLog},
	{"directory", decodeDirectory},
	{"store", decodeStore},
	{"sso", decodeSSO},
	{"tls", decodeTLS},
	{"epa", decodeEPA},
	{"proxy", decodeProxy},
	{"oidc_provider", decodeOIDCProvider},
	{"password_signin", decodePasswordSignIn},
	{"forward_auth", decodeForwardAuth},
}

// crossChecks run after every section is decoded.
var crossChecks = []func(d *decoder, c *Config){
	finishListen,
	finishSSO,
	finishEPA,
	finishProxy,
	finishOIDCProvider,
	finishPasswordSignIn,
	finishForwardAuth,
}

// Load reads the file at path and parses it with Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return nil, Errors{{File: path, Msg: "cannot read the configuration file: " + cause.Error(), Err: err}}
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration file's contents. path names the file in
// messages, and relative paths in the file (keytabs, the store, the directory's files) are resolved against its directory.
// On failure the error is an Errors listing every problem found.
func Parse(path string, data []byte) (*Config, error) {
	d := newDecoder(path)
	root, ok := parseYAML(d, data)
	if !ok {
		return nil, d.sorted()
	}

	c := &Config{Path: path}
	doc := d.newMapping("", top, root, "a mapping of sections ("+strings.Join(sectionNames(), ", ")+")")
	for _, s := range sections {
		s.decode(doc.section(s.name), c)
	}
	for _, check := range crossChecks {
		check(d, c)
	}
	d.reportUnknown()

	if len(d.errs) > 0 {
		return nil, d.sorted()
	}
	return c, nil
}

func sectionNames() []string {
	names := make([]string, len(sections))
	for i, s := range sections {
		names[i] = s.name
	}
	return names
}

// yamlLine matches the position yaml.v3 puts in syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML decodes the single YAML document in data. It returns a nil root for an
// empty document, and ok=false after reporting a syntax error.
func parseYAML(d *decoder, data []byte) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true // empty file: every required field is missing
		}
		d.syntaxError(err)
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorf(posOf(&extra), "", "a second YAML document; expected a single document")
		return nil, false
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

// syntaxError reports a YAML syntax error, keeping the line yaml.v3 gives (it gives no
// column, and no line for some errors).
func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Msg: "invalid YAML: " + msg, Err: err})
}
