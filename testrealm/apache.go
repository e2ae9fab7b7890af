package testrealm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ApacheOptions describe an IWA web application: Debian's Apache httpd with
// mod_auth_gssapi.
type ApacheOptions struct {
	// Keytab holds the application's keys; AppKeytab (HTTP/app.example.test) when
	// empty.
	Keytab string
}

// Apache is Apache httpd + mod_auth_gssapi running for one test on a loopback port:
//
//   - /whoami (Kerberos required): a CGI answering "identity_header=<the
//     X-Auth-Request-User header it received>", "user=<REMOTE_USER>", the
//     request method and the request body, with the header X-User;
//   - /private/ (Kerberos required): a static page, for benchmarks;
//   - /public/ (no authentication): a static page;
//   - /admin/secret (no authentication): a static page ("admin secret"), the file
//     a proxy test protects with kerbgate's pre-authentication.
//
// Every request is in its access log (AccessLog).
type Apache struct {
	Port int
	URL  string // http://127.0.0.1:PORT
	dir  string
	cmd  *exec.Cmd
}

const apacheModules = "/usr/lib/apache2/modules"

// StartApache starts Apache in the foreground and stops it (by its pid) when the
// test ends.
func (r *Realm) StartApache(t testing.TB, o ApacheOptions) *Apache {
	t.Helper()
	if o.Keytab == "" {
		o.Keytab = r.AppKeytab
	}
	dir, err := os.MkdirTemp("", "kerbgate-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Apache's children run as www-data: everything they read or write is theirs.
	for _, d := range []string{"htdocs", "htdocs/public", "htdocs/private", "htdocs/admin", "cgi", "rcache", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kt, err := os.ReadFile(o.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("http.keytab", string(kt), 0o640)
	write("htdocs/public/index.html", "public page\n", 0o644)
	write("htdocs/private/index.html", "private page\n", 0o644)
	write("htdocs/admin/secret", "admin secret\n", 0o644)
	write("cgi/whoami", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\nX-User: %s\\r\\n\\r\\n' \"$REMOTE_USER\"\n"+
		"printf 'identity_header=%s\\n' \"$HTTP_X_AUTH_REQUEST_USER\"\n"+
		"printf 'user=%s\\nmethod=%s\\nbody=' \"$REMOTE_USER\" \"$REQUEST_METHOD\"\ncat\n", 0o755)
	giveToApache(t, dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := apacheHead(dir, port, "auth_gssapi", "mpm_event", "authz_core", "authz_user", "authn_core", "auth_gssapi", "headers", "cgid", "alias", "mime", "dir") + fmt.Sprintf(`MaxRequestWorkers 64
KeepAlive On
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory %[1]s/htdocs>
  Require all granted
</Directory>
<Directory %[1]s/htdocs/private>
  AuthType GSSAPI
  AuthName "kerbgate test application"
  GssapiCredStore keytab:%[1]s/http.keytab
  GssapiAllowedMech krb5
  GssapiBasicAuth Off
  Require valid-user
</Directory>
ScriptAlias /whoami %[1]s/cgi/whoami
<Directory %[1]s/cgi>
  Options +ExecCGI
  AuthType GSSAPI
  AuthName "kerbgate test application"
  GssapiCredStore keytab:%[1]s/http.keytab
  GssapiAllowedMech krb5
  GssapiBasicAuth Off
  Require valid-user
  Header always set X-User "expr=%%{REMOTE_USER}"
</Directory>
`, dir, port)
	write("httpd.conf", conf, 0o644)

	return r.runApache(t, dir, port)
}

// runApache starts Apache with DIR/httpd.conf, listening on port, in the foreground,
// and stops it (by its pid) when the test ends.
func (r *Realm) runApache(t testing.TB, dir string, port int) *Apache {
	t.Helper()
	a := &Apache{Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	a.cmd = exec.Command("apache2", "-f", filepath.Join(dir, "httpd.conf"), "-DFOREGROUND")
	a.cmd.Env = append(os.Environ(), "KRB5_CONFIG="+r.Krb5Conf, "KRB5RCACHEDIR="+filepath.Join(dir, "rcache"),
		"APACHE_RUN_DIR="+filepath.Join(dir, "run"), "APACHE_LOG_DIR="+dir)
	// No graceful stop: the parent and its children are killed at once.
	startDaemon(t, daemon{name: "apache", cmd: a.cmd, output: filepath.Join(dir, "stdout.log"), port: port,
		logs: func() string { return a.output() + "\nerror.log:\n" + a.ErrorLog() }})
	return a
}

func (a *Apache) output() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "stdout.log"))
	return string(b)
}

// AccessLog returns Apache's access log: one line per request, `STATUS "REQUEST
// LINE"`, the request line exactly as Apache received it.
func (a *Apache) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "access.log"))
	return string(b)
}

// ErrorLog returns Apache's error log (mod_auth_gssapi's refusals are there).
func (a *Apache) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "error.log"))
	return string(b)
}

// apacheHead is the start of every test Apache's configuration: the modules, the
// server's own files under dir, its port, logs (access log lines "STATUS \"REQUEST\""
// for tests to read) at level warn with module at info, and everything denied
// until the caller's configuration grants it.
func apacheHead(dir string, port int, module string, modules ...string) string {
	var b strings.Builder
	for _, m := range modules {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	fmt.Fprintf(&b, `ServerRoot %[1]s
ServerName app.example.test
Listen 127.0.0.1:%[2]d
PidFile %[1]s/run/httpd.pid
DefaultRuntimeDir %[1]s/run
Mutex file:%[1]s/run default
ScriptSock %[1]s/run/cgisock
User www-data
Group www-data
ErrorLog %[1]s/error.log
LogFormat "%%>s \"%%r\"" kerbgate
CustomLog %[1]s/access.log kerbgate
LogLevel warn %[3]s:info
TypesConfig /etc/mime.types
DocumentRoot %[1]s/htdocs
`, dir, port, module)
	return b.String()
}

// giveToApache hands dir to www-data, which Apache's children run as.
func giveToApache(t testing.TB, dir string) {
	t.Helper()
	for _, args := range [][]string{{"chown", "-R", "www-data:www-data", dir}, {"chmod", "755", dir}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("testrealm: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
