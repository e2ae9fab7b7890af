package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// proxyApp is a file with one published app whose last lines are extra (indented
// under the app).
func proxyApp(preAuth, extra string) string {
	return valid + `proxy:
  apps:
    - id: intranet
      host: app.example.test
      upstream: http://intranet.internal:8080
      pre_auth: ` + preAuth + "\n" + extra
}

// Issue 14: every app-level check is made at load, with its place, never per request.
func TestAppChecksAreMadeAtLoad(t *testing.T) {
	for _, tc := range []invalidCase{{
		// Passthrough signs nobody in: the groups could only refuse everyone.
		name: "allowed_groups with pre_auth passthrough",
		src:  proxyApp("passthrough", "      allowed_groups: [S-1-5-21-1-2-3-1110]\n"),
		want: []string{`11:23: proxy.apps[0].allowed_groups: set with pre_auth passthrough, which signs nobody in, so nobody could be let in; expected pre_auth iwa or oidc, or no allowed_groups`},
	}, {
		// As in sso.apps: a name is looked up in the directory.
		name: "proxy group name without a directory section",
		src:  proxyApp("iwa", "      allowed_groups: [staff, S-1-5-32-544]\n"),
		want: []string{`11:24: proxy.apps[0].allowed_groups[0]: "staff" is a group name, and proxy.apps[0] needs directory to look it up: the file has no directory section; expected a directory section, or the group's SID like S-1-5-21-…-1110`},
	}, {
		// One group syntax for every face: proxy groups are checked like sso ones.
		name: "proxy group that is not a SID",
		src:  proxyApp("iwa", "      allowed_groups: [S-1-5-21-x]\n"),
		want: []string{`11:24: proxy.apps[0].allowed_groups[0]: "S-1-5-21-x" is not a valid SID (sub-authority "x" is not a number from 0 to 4294967295); expected a SID like S-1-5-21-…-1110, or a group name`},
	}, {
		name: "kerberos section with pre_auth passthrough",
		src:  proxyApp("passthrough", "      kerberos:\n        spn: HTTP/intranet.internal\n"),
		want: []string{`5:1: proxy.delegation.keytab: missing`, `5:1: proxy.delegation.principal: missing`, `5:1: proxy.delegation.kdcs: missing`,
			`12:9: proxy.apps[0].kerberos: a kerberos section with pre_auth passthrough would sign anonymous users in to the upstream`},
	}} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}
	// SIDs need no directory.
	if _, err, _, _ := parse(t, proxyApp("iwa", "      allowed_groups: [S-1-5-32-544]\n")); err != nil {
		t.Errorf("SID without a directory: %v", err)
	}
}

// oidcSecret is a file with one OIDC app whose client secret is given by lines.
func oidcSecret(lines string) string {
	return proxyApp("oidc", `      oidc:
        issuer: https://login.example.com
        client_id: kerbgate
`+lines)
}

// Issue 14: the OIDC client secret is read like every other secret. It used to look at
// the environment first, accept an empty secret and skip the file's permission check.
func TestOIDCClientSecretIsCheckedLikeEverySecret(t *testing.T) {
	t.Setenv("KERBGATE_TEST_EMPTY", "")
	for _, tc := range []invalidCase{{
		name: "empty environment variable",
		src:  oidcSecret("        client_secret_env: KERBGATE_TEST_EMPTY\n"),
		want: []string{`14:28: proxy.apps[0].oidc.client_secret_env: "KERBGATE_TEST_EMPTY" is set but empty; expected the name of an environment variable holding the client secret`},
	}, {
		name: "unset environment variable",
		src:  oidcSecret("        client_secret_env: KERBGATE_TEST_UNSET_XYZ\n"),
		want: []string{`14:28: proxy.apps[0].oidc.client_secret_env: "KERBGATE_TEST_UNSET_XYZ" is not set in kerbgate's environment`},
	}, {
		name:  "file readable by everyone",
		src:   oidcSecret("        client_secret_file: public.password\n"),
		want:  []string{`14:29: proxy.apps[0].oidc.client_secret_file: `},
		hints: []string{`public.password) is readable by everyone; chmod 600 it`},
	}} {
		t.Run(tc.name, func(t *testing.T) { checkInvalid(t, tc) })
	}

	c, err, file, _ := parse(t, oidcSecret("        client_secret_file: ldap.password\n"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's contents without the trailing newline.
	if s, err := c.Proxy.Apps[0].OIDC.Secret(); s != "s3cret" || err != nil {
		t.Errorf("Secret() = %q, %v", s, err)
	}
	// Checked again when read: a file emptied, or opened to others, since load.
	path := filepath.Join(filepath.Dir(file), "ldap.password")
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Proxy.Apps[0].OIDC.Secret(); err == nil || !strings.Contains(err.Error(), "readable by its group; chmod 600 it") {
		t.Errorf("group-readable secret file: %v", err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Proxy.Apps[0].OIDC.Secret(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty secret file: %v", err)
	}
	// An environment variable emptied since load.
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "x")
	c, err, _, _ = parse(t, oidcSecret("        client_secret_env: KERBGATE_TEST_OIDC_SECRET\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KERBGATE_TEST_OIDC_SECRET", "")
	if _, err := c.Proxy.Apps[0].OIDC.Secret(); err == nil || !strings.Contains(err.Error(), "environment variable KERBGATE_TEST_OIDC_SECRET is empty") {
		t.Errorf("empty secret variable: %v", err)
	}
}

// A secret file its group can read is refused at load, like one everyone can read.
func TestSecretFileReadableByItsGroup(t *testing.T) {
	dir, file, keytab := setup(t)
	pw := filepath.Join(dir, "group.password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o640); err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(oidcSecret("        client_secret_file: group.password\n"), "KEYTAB", keytab)
	_, err := Parse(file, []byte(src))
	if err == nil || !strings.Contains(err.Error(), "group.password) is readable by its group; chmod 600 it") {
		t.Errorf("group-readable secret file: %v", err)
	}
}
