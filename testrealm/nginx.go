package testrealm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nginx is Debian's nginx serving static pages for one test on a loopback port, with
// a private configuration (no file of the system's nginx is read or written):
//
//   - /admin/secret: a static page ("admin secret"), what a proxy test protects;
//   - /public/: a static page ("public page").
//
// nginx normalises request paths before it serves them (merge_slashes, dot
// segments, percent-decoding), as production upstreams do: that is what path tests
// need from it. Its access log records every request line as received.
type Nginx struct {
	Port int
	URL  string // http://127.0.0.1:PORT
	dir  string
	cmd  *exec.Cmd
}

// NginxConfig replaces what StartNginx serves.
type NginxConfig struct {
	// HTTP is added to the http block (buffer settings, say).
	HTTP string
	// Server replaces the server block's contents after its listen line (server
	// names, locations); the string PORT in it is nginx's own port.
	Server string
}

// StartNginx starts nginx in the foreground (daemon off) with its prefix, pid file,
// logs and temporary directories in a directory of its own, and stops it by its pid
// when the test ends.
func StartNginx(t testing.TB) *Nginx {
	t.Helper()
	return StartNginxWith(t, NginxConfig{})
}

// StartNginxWith is StartNginx serving c instead of the static pages.
func StartNginxWith(t testing.TB, c NginxConfig) *Nginx {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Fatalf("testrealm: nginx is not installed (testrealm/realm.sh up installs it): %v", err)
	}
	dir, err := os.MkdirTemp("", "kerbgate-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"htdocs/admin", "htdocs/public", "logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("htdocs/admin/secret", "admin secret\n")
	write("htdocs/public/index.html", "public page\n")
	// The workers run as www-data: they read htdocs and write the temporary files.
	if out, err := exec.Command("chown", "-R", "www-data:www-data", filepath.Join(dir, "tmp")).CombinedOutput(); err != nil {
		t.Fatalf("testrealm: chown: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	server := fmt.Sprintf(`
    server_name app.example.test;
    root %s/htdocs;
    index index.html;
`, dir)
	if c.Server != "" {
		server = strings.ReplaceAll(c.Server, "PORT", strconv.Itoa(port))
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
user www-data;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 256; }
http {
  default_type text/plain;
  log_format kerbgate '$status "$request"';
  access_log %[1]s/logs/access.log kerbgate;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
%[3]s
  server {
    listen 127.0.0.1:%[2]d;
%[4]s
  }
}
`, dir, port, c.HTTP, server)
	write("nginx.conf", conf)

	n := &Nginx{Port: port, URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	n.cmd = exec.Command("nginx", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "logs", "error.log"))
	// SIGQUIT to the master: a graceful stop of it and its workers.
	startDaemon(t, daemon{name: "nginx", cmd: n.cmd, output: filepath.Join(dir, "stdout.log"), port: port,
		stop: syscall.SIGQUIT, logs: func() string { return n.read("stdout.log") + "\nerror.log:\n" + n.ErrorLog() }})
	return n
}

func (n *Nginx) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, name))
	return string(b)
}

// AccessLog returns nginx's access log: one line per request, `STATUS "REQUEST
// LINE"`, the request line exactly as nginx received it.
func (n *Nginx) AccessLog() string { return n.read("logs/access.log") }

// ErrorLog returns nginx's error log.
func (n *Nginx) ErrorLog() string { return n.read("logs/error.log") }

// CPU returns the processor time (user and system) nginx's processes have used so
// far, master and workers (its process group), for benchmarks that say where the
// time of a request goes. It reads /proc at the kernel's 100 ticks a second.
func (n *Nginx) CPU() time.Duration {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After "pid (comm) ": state ppid pgrp ... utime (14th field) stime (15th).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 13 || f[2] != strconv.Itoa(n.cmd.Process.Pid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
