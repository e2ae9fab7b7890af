package testrealm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OIDCRPOptions describe a web application that signs its users in with OpenID
// Connect: Debian's Apache httpd with mod_auth_openidc.
type OIDCRPOptions struct {
	// Issuer is the OpenID Provider's issuer URL (its discovery document is
	// ISSUER/.well-known/openid-configuration).
	Issuer       string
	ClientID     string
	ClientSecret string
	// Port is the port to listen on (its redirect URI is registered with the
	// provider before Apache starts); a free one when 0.
	Port int
	// PromptNone makes every sign-in request prompt=none (a silent sign-in or an
	// error, never a login page).
	PromptNone bool
}

// OIDCRP is Apache + mod_auth_openidc running for one test on a loopback port:
// /protected/whoami (OpenID Connect sign-in required, PKCE S256) is a CGI answering
// the claims mod_auth_openidc hands it, one "claim=value" line each (sub,
// preferred_username, upn, email, name, amr), and "user=<REMOTE_USER>".
type OIDCRP struct {
	*Apache
	// RedirectURI is mod_auth_openidc's callback, to register with the provider.
	RedirectURI string
	// Whoami is the protected page's URL, by the name app.example.test.
	Whoami string
}

// OIDCRPRedirectURI is the redirect URI of an OIDCRP on port.
func OIDCRPRedirectURI(port int) string {
	return fmt.Sprintf("http://app.example.test:%d/protected/redirect_uri", port)
}

// StartOIDCRP starts Apache with mod_auth_openidc and stops it when the test ends.
func (r *Realm) StartOIDCRP(t testing.TB, o OIDCRPOptions) *OIDCRP {
	t.Helper()
	dir, err := os.MkdirTemp("", "kerbgate-oidcrp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"htdocs", "cgi", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("cgi/whoami", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"+
		"printf 'user=%s\\n' \"$REMOTE_USER\"\n"+
		"for c in sub preferred_username upn email name amr; do eval \"printf '%s=%s\\\\n' $c \\\"\\$OIDC_CLAIM_$c\\\"\"; done\n", 0o755)
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("testrealm: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("chown", "-R", "www-data:www-data", dir)
	run("chmod", "755", dir)
	port := o.Port
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	pass := make([]byte, 16)
	rand.Read(pass)
	mods := ""
	for _, m := range []string{"mpm_event", "authz_core", "authz_user", "authn_core", "auth_openidc", "cgid", "alias", "mime", "dir"} {
		mods += fmt.Sprintf("LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	conf := fmt.Sprintf(`%s
ServerRoot %[2]s
ServerName app.example.test
Listen 127.0.0.1:%[3]d
PidFile %[2]s/run/httpd.pid
DefaultRuntimeDir %[2]s/run
Mutex file:%[2]s/run default
ScriptSock %[2]s/run/cgisock
User www-data
Group www-data
ErrorLog %[2]s/error.log
LogFormat "%%>s \"%%r\"" kerbgate
CustomLog %[2]s/access.log kerbgate
LogLevel warn auth_openidc:info
TypesConfig /etc/mime.types
DocumentRoot %[2]s/htdocs
<Directory />
  AllowOverride None
  Require all denied
</Directory>
OIDCProviderMetadataURL %[4]s/.well-known/openid-configuration
OIDCClientID %[5]s
OIDCClientSecret %[6]s
OIDCRedirectURI %[7]s
OIDCCryptoPassphrase %[8]s
OIDCScope "openid profile email"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
OIDCCookieSameSite On
OIDCPassClaimsAs environment
ScriptAlias /protected/whoami %[2]s/cgi/whoami
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
<Directory %[2]s/cgi>
  Options +ExecCGI
  Require all granted
</Directory>
`, mods, dir, port, o.Issuer, o.ClientID, o.ClientSecret, OIDCRPRedirectURI(port), hex.EncodeToString(pass))
	if o.PromptNone {
		conf += "OIDCAuthRequestParams prompt=none\n"
	}
	write("httpd.conf", conf, 0o644)
	a := r.runApache(t, dir, port)
	return &OIDCRP{Apache: a, RedirectURI: OIDCRPRedirectURI(port),
		Whoami: fmt.Sprintf("http://app.example.test:%d/protected/whoami", port)}
}
