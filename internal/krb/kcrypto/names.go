package kcrypto

import (
	"fmt"
	"slices"
	"strings"
)

// This file is kerbgate's one table of encryption type names: the configuration
// reads kerberos.enctypes with it, and logs, refusal facts, metrics and the doctor
// name enctypes with it.

// enctypeNames are the supported encryption types under their canonical (MIT) names,
// in the order messages list them.
var enctypeNames = []struct {
	name  string
	etype int32
}{
	{"aes256-cts-hmac-sha1-96", AES256SHA1},
	{"aes128-cts-hmac-sha1-96", AES128SHA1},
	{"aes256-cts-hmac-sha384-192", AES256SHA384},
	{"aes128-cts-hmac-sha256-128", AES128SHA256},
	{"rc4-hmac", RC4HMAC},
}

// enctypeAliases are other accepted names of supported encryption types (MIT krb5's).
var enctypeAliases = map[string]int32{
	"aes256-cts":   AES256SHA1,
	"aes128-cts":   AES128SHA1,
	"arcfour-hmac": RC4HMAC,
}

// unsupportedEnctypes names encryption types kerbgate knows of but does not accept, so
// that EnctypeName can name them in logs.
var unsupportedEnctypes = map[int32]string{
	1:  "des-cbc-crc",
	2:  "des-cbc-md4",
	3:  "des-cbc-md5",
	16: "des3-cbc-sha1",
	24: "arcfour-hmac-exp",
	25: "camellia128-cts-cmac",
	26: "camellia256-cts-cmac",
}

// EnctypeName returns the name of an encryption type number: the canonical name
// LookupEnctype accepts for a supported one (18 is "aes256-cts-hmac-sha1-96", 23 is
// "rc4-hmac"), the usual name of some unsupported ones ("des-cbc-md5"), and otherwise
// "etype N".
func EnctypeName(e int32) string {
	for _, n := range enctypeNames {
		if n.etype == e {
			return n.name
		}
	}
	if name, ok := unsupportedEnctypes[e]; ok {
		return name
	}
	return fmt.Sprintf("etype %d", e)
}

// EnctypeNameList returns the names of es joined by commas.
func EnctypeNameList(es []int32) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = EnctypeName(e)
	}
	return strings.Join(names, ",")
}

// LookupEnctype returns the supported encryption type named (case-insensitively) by
// name, canonical or alias.
func LookupEnctype(name string) (int32, bool) {
	name = strings.ToLower(name)
	for _, n := range enctypeNames {
		if n.name == name {
			return n.etype, true
		}
	}
	e, ok := enctypeAliases[name]
	return e, ok
}

// SupportedEnctypeNames returns the canonical names of the supported encryption
// types, in the order messages list them.
func SupportedEnctypeNames() []string {
	names := make([]string, len(enctypeNames))
	for i, n := range enctypeNames {
		names[i] = n.name
	}
	return names
}

// EnctypeAliases returns the other accepted names, sorted.
func EnctypeAliases() []string {
	names := make([]string, 0, len(enctypeAliases))
	for n := range enctypeAliases {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
