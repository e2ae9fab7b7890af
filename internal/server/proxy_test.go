package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/testrealm"
)

// echoUpstream answers what it received (its headers among it), as JSON, and upgrades /ws to a raw echo
// connection (what a websocket server does after its handshake).
func echoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ws") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			hj, _ := w.(http.Hijacker)
			c, brw, err := hj.Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			io.Copy(c, brw) // echo until the client closes
			return
		}
		body, _ := io.ReadAll(r.Body)
		cookies := []string{}
		for _, c := range r.Cookies() {
			cookies = append(cookies, c.Name)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"path": r.URL.Path, "host": r.Host, "authorization": r.Header.Get("Authorization"),
			"x_forwarded_host": r.Header.Get("X-Forwarded-Host"), "x_forwarded_proto": r.Header.Get("X-Forwarded-Proto"),
			"x_forwarded_for": r.Header.Get("X-Forwarded-For"), "cookies": cookies, "body": string(body),
			"uri": r.URL.RequestURI(), "headers": r.Header,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type echoed struct {
	Path            string   `json:"path"`
	Host            string   `json:"host"`
	Authorization   string   `json:"authorization"`
	XForwardedHost  string   `json:"x_forwarded_host"`
	XForwardedProto string   `json:"x_forwarded_proto"`
	XForwardedFor   string   `json:"x_forwarded_for"`
	Cookies         []string `json:"cookies"`
	Body            string   `json:"body"`
	// URI is the request URI, query included; Headers every header received.
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
}

func decodeEcho(t testing.TB, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body[strings.Index(body, "{"):]), &e); err != nil {
		t.Fatalf("upstream answer %q: %v", body, err)
	}
	return e
}

func TestProxyPreAuthRoutesAndSession(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	up := echoUpstream(t)
	cfg := baseConfig(r)
	base := config.ProxyApp{Host: "sso.example.test", Upstream: mustURL(t, up.URL+"/base"), Timeout: 5 * time.Second}
	iwa, open, staff, kept, down := base, base, base, base, base
	iwa.ID, iwa.PathPrefix, iwa.PreAuth = "echo", "/apps/echo/", "iwa"
	open.ID, open.PathPrefix, open.PreAuth = "open", "/apps/open/", "passthrough"
	staff.ID, staff.PathPrefix, staff.PreAuth, staff.AllowedGroups = "staff", "/apps/staff/", "iwa", []string{r.SID(t, "staff")}
	kept.ID, kept.PathPrefix, kept.PreAuth, kept.PreserveHost = "kept", "/apps/kept/", "passthrough", true
	down.ID, down.PathPrefix, down.PreAuth, down.Upstream = "down", "/apps/down/", "passthrough", mustURL(t, "http://127.0.0.1:1")
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour, Apps: []config.ProxyApp{iwa, open, staff, kept, down}}
	g := startGateway(t, cfg)
	alice := r.Kinit(t, "alice")

	// No ticket: kerbgate challenges for itself; the upstream is not reached.
	resp := getURL(t, g.url("sso.example.test", "/apps/echo/x"))
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("no ticket: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// curl as alice: signed in at kerbgate, forwarded without her token, the prefix
	// mapped onto the upstream's base path, and a proxy session cookie set.
	jar := t.TempDir() + "/cookies"
	c := g.curl(r, alice, "", g.url("sso.example.test", "/apps/echo/page?q=1"), "-c", jar, "-b", "other=1")
	if c.status != 200 {
		t.Fatalf("curl: %d %s\n%s", c.status, c.headers.Get("Kerbgate-Reason"), c.body)
	}
	e := decodeEcho(t, c.body)
	if e.Path != "/base/page" || e.Authorization != "" || e.XForwardedProto != "http" ||
		!strings.HasPrefix(e.XForwardedHost, "sso.example.test:") || e.XForwardedFor != "127.0.0.1" || strings.Contains(e.Host, "sso.example.test") {
		t.Fatalf("upstream saw %+v", e)
	}
	if !strings.Contains(c.headers.Get("Set-Cookie"), "kerbgate_proxy=") || !strings.Contains(c.headers.Get("Set-Cookie"), "Path=/apps/echo/") {
		t.Fatalf("no proxy session cookie: %q", c.headers.Get("Set-Cookie"))
	}
	// The session spares Negotiate, and kerbgate's cookie never reaches the upstream.
	cmd := g.curlPlain(t, g.url("sso.example.test", "/apps/echo/again"), "-b", jar, "-b", "other=1")
	if cmd.status != 200 {
		t.Fatalf("with the session cookie: %d %s", cmd.status, cmd.headers.Get("Kerbgate-Reason"))
	}
	if e := decodeEcho(t, cmd.body); e.Path != "/base/again" || strings.Join(e.Cookies, ",") != "other" {
		t.Fatalf("upstream saw %+v", e)
	}

	// Routing is on the canonical path: dot segments inside the app stay under the
	// upstream's base path; a path that climbs out of the app is another path
	// (/etc/passwd, none of the apps), and the upstream never sees it.
	resp = getURL(t, g.url("sso.example.test", "/apps/open/x/../y"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := decodeEcho(t, string(body)); e.Path != "/base/y" {
		t.Fatalf("dot segments inside the app reached %q", e.Path)
	}
	resp = getURL(t, g.url("sso.example.test", "/apps/open/../../etc/passwd"))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || strings.Contains(string(body), "{") {
		t.Fatalf("climbing path: %d %q", resp.StatusCode, body)
	}

	// Groups: alice is not in staff; bob is, through a nested group.
	c = g.curl(r, alice, "", g.url("sso.example.test", "/apps/staff/"))
	if c.status != 403 || c.headers.Get("Kerbgate-Reason") != "not_in_group" {
		t.Fatalf("alice at staff app: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	if c := g.curl(r, r.Kinit(t, "bob"), "", g.url("sso.example.test", "/apps/staff/")); c.status != 200 {
		t.Fatalf("bob at staff app: %d %q", c.status, c.headers.Get("Kerbgate-Reason"))
	}

	// preserve_host sends the external Host.
	resp = getURL(t, g.url("sso.example.test", "/apps/kept/"))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := decodeEcho(t, string(body)); e.Host != fmt.Sprintf("sso.example.test:%d", g.port) {
		t.Fatalf("preserve_host: upstream saw Host %q", e.Host)
	}

	// A dead upstream is a named 502.
	wantReason(t, getURL(t, g.url("sso.example.test", "/apps/down/")), 502, "upstream_unavailable")

	// Websockets pass through (upgrade, then bytes both ways).
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /apps/open/ws HTTP/1.1\r\nHost: sso.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	wsResp, err := http.ReadResponse(br, nil)
	if err != nil || wsResp.StatusCode != 101 {
		t.Fatalf("websocket upgrade: %v %v", err, wsResp)
	}
	fmt.Fprint(conn, "ping through kerbgate")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len("ping through kerbgate"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping through kerbgate" {
		t.Fatalf("websocket echo: %q %v", buf, err)
	}
}

// curlPlain runs curl without Negotiate (cookies only).
func (g *gateway) curlPlain(t *testing.T, url string, extra ...string) curlResult {
	t.Helper()
	args := append([]string{"-sS", "-D", "-", "-o", "/dev/stderr"}, extra...)
	cmd := exec.Command("curl", append(args, url)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, stderr.String())
	}
	return parseCurl(t, stdout.String(), stderr.String())
}

func getURL(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
