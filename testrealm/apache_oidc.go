package testrealm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	// Scope is the scope asked for; "openid profile email" when empty.
	Scope string
}

// OIDCRP is Apache + mod_auth_openidc running for one test on a loopback port:
// /protected/whoami (OpenID Connect sign-in required, PKCE S256) is a CGI answering
// the claims mod_auth_openidc hands it (from the ID token and userinfo), one
// "claim=value" line each (sub, preferred_username, upn, email, name, amr, groups,
// group_sids, _claim_names; a list comma-separated), and "user=<REMOTE_USER>".
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
		"for c in sub preferred_username upn email name amr groups group_sids _claim_names; do eval \"printf '%s=%s\\\\n' $c \\\"\\$OIDC_CLAIM_$c\\\"\"; done\n", 0o755)
	giveToApache(t, dir)
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
	scope := o.Scope
	if scope == "" {
		scope = "openid profile email"
	}
	conf := apacheHead(dir, port, "auth_openidc", "mpm_event", "authz_core", "authz_user", "authn_core", "auth_openidc", "cgid", "alias", "mime", "dir") + fmt.Sprintf(`<Directory />
  AllowOverride None
  Require all denied
</Directory>
OIDCProviderMetadataURL %[3]s/.well-known/openid-configuration
OIDCClientID %[4]s
OIDCClientSecret %[5]s
OIDCRedirectURI %[6]s
OIDCCryptoPassphrase %[7]s
OIDCScope "%[8]s"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
OIDCCookieSameSite On
OIDCPassClaimsAs environment
ScriptAlias /protected/whoami %[1]s/cgi/whoami
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
<Directory %[1]s/cgi>
  Options +ExecCGI
  Require all granted
</Directory>
`, dir, port, o.Issuer, o.ClientID, o.ClientSecret, OIDCRPRedirectURI(port), hex.EncodeToString(pass), scope)
	if o.PromptNone {
		conf += "OIDCAuthRequestParams prompt=none\n"
	}
	write("httpd.conf", conf, 0o644)
	a := r.runApache(t, dir, port)
	return &OIDCRP{Apache: a, RedirectURI: OIDCRPRedirectURI(port),
		Whoami: fmt.Sprintf("http://app.example.test:%d/protected/whoami", port)}
}
