package server

// Path normalisation and pre-authentication (issue 13, item 1): every spelling of a
// protected path that a real upstream (Apache, nginx) would serve as that path gets
// the protected route's pre-authentication or a 400 path_not_canonical from kerbgate,
// never the passthrough route. The requests are written byte for byte on a TCP
// connection, so no client cleans the path first.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/testrealm"
)

// pathUpstream is a real upstream that serves a static /admin/secret, and its log.
type pathUpstream struct {
	name      string
	url       string
	accessLog func() string
}

// pathTestGateway publishes each upstream on three hosts:
//
//	sub-NAME.test:   /app/ passthrough (upstream /), /app/admin/ iwa (upstream /admin)
//	root-NAME.test:  / passthrough (upstream /),     /admin/ iwa (upstream /admin)
//	staff-NAME.test: / passthrough (upstream /),     /admin/ iwa, allowed_groups staff
func pathTestGateway(t *testing.T, r *testrealm.Realm, ups []pathUpstream) *gateway {
	t.Helper()
	cfg := baseConfig(r)
	staff := r.SID(t, "staff")
	var apps []config.ProxyApp
	for _, u := range ups {
		app := func(id, host, prefix, preauth, base string, groups []string) config.ProxyApp {
			return config.ProxyApp{ID: id + "-" + u.name, Host: host + "-" + u.name + ".test", PathPrefix: prefix,
				Upstream: mustURL(t, u.url+base), Timeout: 10 * time.Second, PreAuth: preauth, AllowedGroups: groups}
		}
		apps = append(apps,
			app("sub-open", "sub", "/app/", "passthrough", "", nil),
			app("sub-admin", "sub", "/app/admin/", "iwa", "/admin", nil),
			app("root-open", "root", "/", "passthrough", "", nil),
			app("root-admin", "root", "/admin/", "iwa", "/admin", nil),
			app("staff-open", "staff", "/", "passthrough", "", nil),
			app("staff-admin", "staff", "/admin/", "iwa", "/admin", []string{staff}),
		)
	}
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour, Apps: apps}
	return startGateway(t, cfg)
}

func startPathUpstreams(t *testing.T, r *testrealm.Realm) []pathUpstream {
	t.Helper()
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	nginx := testrealm.StartNginx(t)
	ups := []pathUpstream{
		{name: "apache", url: apache.URL, accessLog: apache.AccessLog},
		{name: "nginx", url: nginx.URL, accessLog: nginx.AccessLog},
	}
	// Each upstream serves the protected file to a direct request: what a bypass
	// would get.
	for _, u := range ups {
		resp := getURL(t, u.url+"/admin/secret")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "admin secret\n" {
			t.Fatalf("%s /admin/secret: %d %q", u.name, resp.StatusCode, body)
		}
	}
	return ups
}

// rawResponse is what kerbgate answered to a request written byte for byte.
type rawResponse struct {
	status          int
	reason, negoAll string
	body            string
}

// rawGet writes "GET target HTTP/1.1" with Host host (and Authorization, if any) on
// a new connection to the gateway and reads the answer.
func rawGet(t *testing.T, g *gateway, host, target, authorization string) rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/plain\r\nConnection: close\r\n"
	if authorization != "" {
		req += "Authorization: " + authorization + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q on %s: %v", target, host, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return rawResponse{status: resp.StatusCode, reason: resp.Header.Get("Kerbgate-Reason"),
		negoAll: strings.Join(resp.Header.Values("WWW-Authenticate"), ","), body: string(body)}
}

// received returns what the upstream logged since its log was before: a request
// straight to the upstream marks the end (access logs are written after the answer,
// so the mark is waited for), and is not part of the result.
func (u pathUpstream) received(t *testing.T, before string) string {
	t.Helper()
	mark := fmt.Sprintf("/public/?mark=%d", time.Now().UnixNano())
	resp := getURL(t, u.url+mark)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l := strings.TrimPrefix(u.accessLog(), before)
		if strings.Contains(l, "GET "+mark+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %s:\n%s", u.name, mark, l)
		}
	}
	// Apache's children log when a request ends, each on its own: the line of a
	// request answered before the marker can still land after the marker's. Wait
	// until the log has been quiet a moment, then take every line but the marker's.
	l := u.accessLog()
	for quiet := 0; quiet < 3; time.Sleep(50 * time.Millisecond) {
		if now := u.accessLog(); now != l {
			l, quiet = now, 0
			continue
		}
		quiet++
	}
	var seen strings.Builder
	for _, line := range strings.SplitAfter(strings.TrimPrefix(l, before), "\n") {
		if line != "" && !strings.Contains(line, "GET "+mark+" ") {
			seen.WriteString(line)
		}
	}
	return seen.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// protectedVariants are spellings of /app/admin/secret (sub host) and /admin/secret
// (root and staff hosts) that some upstream serves as that file.
var (
	subVariants = []string{
		"/app/admin/secret",
		"/app//admin/secret",
		"///app/admin/secret",
		"/app/./admin/secret",
		"/app/./admin/./secret",
		"/app/x/../admin/secret",
		"/app/x/../../app/admin/secret",
		"/app/%2e/admin/secret",
		"/app/%2E/admin/secret",
		"/app/x/%2e%2e/admin/secret",
		"/app/x/%2E%2E/admin/secret",
		"/app/x/%2E%2e/admin/secret",
		"/app/x/.%2e/admin/secret",
		"/app/%252e/admin/secret",
		"/app%2fadmin/secret",
		"/app%2Fadmin%2Fsecret",
		"/app/x/..%2fadmin/secret",
		"/app%5cadmin%5csecret",
		"/app/x/..%5Cadmin/secret",
		`/app\admin\secret`,
		`/app/x\..\admin/secret`,
		"/app/%61dmin/secret",
		"/app/adm%69n/secret",
		"/app/%41DMIN/secret",
		"/app/ADMIN/secret",
		"/app/Admin/secret",
		"/APP/admin/secret",
		"/app/admin./secret",
		"/app/adm%C4%B1n/secret",
		"/app/admin::$INDEX_ALLOCATION/secret",
		"/app/admin../secret",
		"/app/admin%20/secret",
		"/app/admin;x/secret",
		"/app/admin;/secret",
		"/app/public/..;/admin/secret",
		"/app/admin%00/secret",
		"/app/%00/../admin/secret",
	}
	rootVariants = []string{
		"/admin/secret",
		"//admin/secret",
		"///admin//secret",
		"/./admin/secret",
		"/x/../admin/secret",
		"/../admin/secret",
		"/%2e/admin/secret",
		"/x/%2e%2e/admin/secret",
		"/%2fadmin/secret",
		"/admin%2fsecret",
		`\admin\secret`,
		"/%5cadmin/secret",
		"/%61dmin/secret",
		"/ADMIN/secret",
		"/Admin/Secret",
		"/AdMiN/secret",
		"/admin./secret",
		"/adm%C4%B1n/secret",
		"/admin::$INDEX_ALLOCATION/secret",
		"/admin%20/secret",
		"/admin;/secret",
		"/public/..;/admin/secret",
		"/%252e/admin/secret",
		"/admin%00/secret",
	}
)

// absoluteForm adds the request-target forms that carry a scheme and host.
func absoluteForm(host string, paths ...string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, "http://"+host+p)
	}
	return out
}

func TestProxyPathVariantsGetPreAuthentication(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	ups := startPathUpstreams(t, r)
	g := pathTestGateway(t, r, ups)
	n, outcomes := 0, map[string]int{}
	for _, u := range ups {
		before := u.accessLog()
		sub, root := "sub-"+u.name+".test", "root-"+u.name+".test"
		targets := map[string][]string{
			sub:  append(append([]string{}, subVariants...), absoluteForm(sub, "/app//admin/secret", "/app/x/../admin/secret")...),
			root: append(append([]string{}, rootVariants...), absoluteForm(root, "//admin/secret", "/ADMIN/secret")...),
		}
		for _, host := range []string{sub, root} {
			for _, target := range targets[host] {
				n++
				got := rawGet(t, g, host, target, "")
				outcomes[fmt.Sprintf("%d %s", got.status, got.reason)]++
				if testing.Verbose() {
					t.Logf("%s GET %s: %d %s", host, target, got.status, got.reason)
				}
				switch {
				case got.status == 401 && got.reason == "no_token" && got.negoAll == "Negotiate":
				case got.status == 400 && got.reason == "path_not_canonical":
				case strings.HasPrefix(target, `\`) && got.status == 400 && firstLine(got.body) == "400 Bad Request":
					// Not a request-target at all: net/http refuses it before any handler.
				default:
					t.Errorf("%s GET %s: got %d %q %q, want 401 no_token (kerbgate's challenge) or 400 path_not_canonical",
						host, target, got.status, got.reason, firstLine(got.body))
				}
			}
		}
		// The upstream received nothing: no variant passed kerbgate unauthenticated.
		if seen := u.received(t, before); seen != "" {
			t.Errorf("%s received requests without sign-in:\n%s", u.name, seen)
		}
	}
	// kerbgate's own endpoints (a host with no app): net/http's ServeMux redirects
	// unclean paths to the clean one, and each endpoint checks its own sign-in, so no
	// spelling of /whoami answers without a ticket.
	for _, target := range []string{"/whoami", "//whoami", "/./whoami", "/x/../whoami", "/%77hoami", "/whoami/", "/WHOAMI", "/whoami%2f", "/whoami;x"} {
		got := rawGet(t, g, "sso.example.test", target, "")
		if testing.Verbose() {
			t.Logf("sso.example.test GET %s: %d %s", target, got.status, got.reason)
		}
		if got.status == 200 {
			t.Errorf("kerbgate's own GET %s answered without sign-in: %q", target, firstLine(got.body))
		}
	}
	// Every refusal is logged with the raw path and why.
	logs := g.logs.String()
	for _, want := range []string{`"reason":"path_not_canonical"`, `"raw_path":"/app%2fadmin/secret"`, `"detail":"path not canonical: encoded / (%2F)"`,
		`"raw_path":"/app/ADMIN/secret"`, `"detail":"the path selects app sub-open-apache, but app sub-admin-apache where case`} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the gateway log", want)
		}
	}
	t.Logf("%d requests (variants of a protected path on 2 hosts, 2 upstreams): %v", n, outcomes)
}

// allowed_groups is the protected route's check too: alice (not in staff) signs in,
// and no spelling of the path takes her to the passthrough route instead.
func TestProxyPathVariantsKeepAllowedGroups(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	ups := startPathUpstreams(t, r)
	g := pathTestGateway(t, r, ups)
	alice := r.Kinit(t, "alice")
	r.Kvno(t, alice, testrealm.GatewaySPN)
	for _, u := range ups {
		before := u.accessLog()
		host := "staff-" + u.name + ".test"
		for _, target := range rootVariants {
			got := rawGet(t, g, host, target, negotiateHeader(t, alice, testrealm.GatewaySPN, initiator.Options{}))
			switch {
			case got.status == 403 && got.reason == "not_in_group":
			case got.status == 400 && got.reason == "path_not_canonical":
			case strings.HasPrefix(target, `\`) && got.status == 400 && firstLine(got.body) == "400 Bad Request":
			default:
				t.Errorf("%s GET %s as alice: got %d %q %q, want 403 not_in_group or 400 path_not_canonical",
					host, target, got.status, got.reason, firstLine(got.body))
			}
		}
		if seen := u.received(t, before); seen != "" {
			t.Errorf("%s received requests from a user outside allowed_groups:\n%s", u.name, seen)
		}
	}
}

// A request that is only spelled differently is routed and forwarded as its
// canonical form: the signed-in user gets the file, and the upstream's access log
// shows exactly the canonical path.
func TestProxyPathCanonicalFormIsForwarded(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	ups := startPathUpstreams(t, r)
	g := pathTestGateway(t, r, ups)
	alice, bob := r.Kinit(t, "alice"), r.Kinit(t, "bob")
	r.Kvno(t, alice, testrealm.GatewaySPN)
	r.Kvno(t, bob, testrealm.GatewaySPN)
	for _, u := range ups {
		for _, c := range []struct {
			host, target, ccache, upstreamSees string
		}{
			{"sub", "/app//admin/secret", alice, "/admin/secret"},
			{"sub", "/app/x/../admin/./secret", alice, "/admin/secret"},
			{"sub", "/app/%2e/%61dmin/secret?q=%2e%2e", alice, "/admin/secret?q=%2e%2e"},
			{"root", "//admin//secret", alice, "/admin/secret"},
			{"root", "/x/%2E%2E/admin/secret", alice, "/admin/secret"},
			{"staff", "/./admin/secret", bob, "/admin/secret"},
			{"root", "/public//index.html", "", "/public/index.html"},
			{"sub", "/app/public/x/../", "", "/public/"},
		} {
			host := c.host + "-" + u.name + ".test"
			before := u.accessLog()
			auth := ""
			if c.ccache != "" {
				auth = negotiateHeader(t, c.ccache, testrealm.GatewaySPN, initiator.Options{})
			}
			got := rawGet(t, g, host, c.target, auth)
			if got.status != 200 {
				t.Errorf("%s GET %s: %d %q %q", host, c.target, got.status, got.reason, firstLine(got.body))
				continue
			}
			want := fmt.Sprintf("200 \"GET %s HTTP/1.1\"\n", c.upstreamSees)
			if seen := u.received(t, before); seen != want {
				t.Errorf("%s GET %s: upstream %s logged %q, want %q", host, c.target, u.name, seen, want)
			}
		}
	}
}
