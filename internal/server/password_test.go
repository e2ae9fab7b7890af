package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/oidcprovider"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// passwordConfig is the handoff's configuration (directory, two sso apps) with the
// password fallback: kerbgate's own account svc-gw armours the users' exchanges.
func passwordConfig(t testing.TB, r *testrealm.Realm) *config.Config {
	t.Helper()
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.PasswordSignIn = config.PasswordSignIn{Enabled: true, Principal: "svc-gw", Keytab: r.GatewayAccountKeytab,
		KDCs: []string{r.KDC}, SPN: testrealm.GatewaySPN, FAST: "auto",
		Lockout: config.PasswordLockout{DomainThreshold: -1}, MinAnswerTime: 50 * time.Millisecond}
	return cfg
}

// formClient is a browser without a Kerberos ticket, as a Go client: a cookie jar,
// redirects not followed so that each step can be looked at.
type formClient struct {
	t testing.TB
	c *http.Client
	// ua is the User-Agent sent; a browser's by default.
	ua      string
	headers http.Header
}

func newFormClient(t testing.TB, roots *x509.CertPool) *formClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return &formClient{t: t, ua: "Mozilla/5.0 (X11; Linux x86_64) kerbgate-test", headers: http.Header{},
		c: &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func (f *formClient) do(req *http.Request) page {
	f.t.Helper()
	req.Header.Set("User-Agent", f.ua)
	for k, v := range f.headers {
		req.Header[k] = v
	}
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), url: req.URL}
}

func (f *formClient) get(u string) page {
	f.t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(req)
}

var (
	formActionRe = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	formCSRFRe   = regexp.MustCompile(`name="kerbgate_csrf" value="([^"]*)"`)
)

// form reads the sign-in form of p: where it posts and its CSRF token.
func (p page) form(t testing.TB) (action *url.URL, token string) {
	t.Helper()
	a, c := formActionRe.FindStringSubmatch(p.body), formCSRFRe.FindStringSubmatch(p.body)
	if a == nil || c == nil {
		t.Fatalf("no sign-in form in the %d page of %s:\n%s", p.status, p.url, p.body)
	}
	u, err := p.url.Parse(html.UnescapeString(a[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u, html.UnescapeString(c[1])
}

// post submits the form of p with fields.
func (f *formClient) post(p page, fields url.Values) page {
	f.t.Helper()
	action, token := p.form(f.t)
	v := url.Values{"kerbgate_signin": {"password"}, "kerbgate_csrf": {token}}
	for k, vs := range fields {
		v[k] = vs
	}
	req, err := http.NewRequest("POST", action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", action.Scheme+"://"+action.Host)
	return f.do(req)
}

// signIn opens u, fills the form with user and password, and follows the answer's
// redirects on kerbgate's host; it returns the last page.
func (f *formClient) signIn(u, user, password string) page {
	f.t.Helper()
	p := f.get(u)
	p = f.post(p, url.Values{"username": {user}, "password": {password}})
	for i := 0; i < 5 && p.status/100 == 3; i++ {
		next, err := p.url.Parse(p.header.Get("Location"))
		if err != nil {
			f.t.Fatal(err)
		}
		if next.Host != p.url.Host {
			break // back to an application: the caller looks at it
		}
		p = f.get(next.String())
	}
	return p
}

// Without a ticket, GET /whoami answers 401 Negotiate with the form as the page;
// signing in with alice's password gives the identity a Negotiate sign-in gives,
// named groups included, with auth_method pwd; the session then holds.
func TestPasswordFormWhoAmIIsTheNegotiateIdentity(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	g := startGateway(t, passwordConfig(t, r))
	f := newFormClient(t, nil)

	p := f.get(g.url("sso.example.test", "/whoami"))
	if p.status != http.StatusUnauthorized || p.header.Get("WWW-Authenticate") != "Negotiate" ||
		!strings.Contains(p.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("first GET: %d %v", p.status, p.header)
	}
	for _, want := range []string{`autocomplete="username"`, `autocomplete="current-password"`, `<label for="username">`, `<label for="password">`, `lang="en"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") || strings.Contains(p.body, "<script") {
		t.Errorf("the form loads or links something:\n%s", p.body)
	}
	// A Windows browser without a ticket offers NTLM: it gets the form too.
	ntlm := newFormClient(t, nil)
	ntlm.headers.Set("Authorization", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")
	if q := ntlm.get(g.url("sso.example.test", "/whoami")); q.status != http.StatusUnauthorized || q.header.Get("Kerbgate-Reason") != "ntlm_offered" {
		t.Errorf("NTLM offered: %d %s", q.status, q.header.Get("Kerbgate-Reason"))
	} else {
		q.form(t)
	}
	p = f.post(p, url.Values{"username": {"bob"}, "password": {testrealm.Password("bob")}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/whoami" {
		t.Fatalf("POST: %d %v\n%s", p.status, p.header, p.body)
	}
	p = f.get(g.url("sso.example.test", "/whoami"))
	if p.status != 200 {
		t.Fatalf("after sign-in: %d\n%s", p.status, p.body)
	}
	got := decodeIdentity(t, p.body)

	bob := r.Kinit(t, "bob")
	c := g.curl(r, bob, "", g.url("sso.example.test", "/whoami"))
	want := decodeIdentity(t, c.body)
	if got.SID != want.SID || got.Principal != want.Principal || !slices.Equal(got.Groups, want.Groups) ||
		!slices.Equal(got.GroupNames, want.GroupNames) || !slices.Contains(got.GroupNames, "staff") {
		t.Errorf("password identity %+v\nnegotiate identity %+v", got, want)
	}
	if got.AuthMethod != "pwd" || want.AuthMethod != "kerberos" {
		t.Errorf("auth methods %q and %q", got.AuthMethod, want.AuthMethod)
	}
}

// passwordKCDConfig adds to passwordConfig a proxy route to the Apache +
// mod_auth_gssapi application by constrained delegation, for members of staff.
func passwordKCDConfig(t testing.TB, r *testrealm.Realm, apacheURL string) *config.Config {
	t.Helper()
	cfg := passwordConfig(t, r)
	cfg.Proxy = config.Proxy{CookieName: "kerbgate_proxy", SessionTTL: time.Hour,
		Delegation: config.Delegation{Keytab: r.GatewayAccountKeytab, Principal: "svc-gw", KDCs: []string{r.KDC}, TicketCacheSize: 100},
		Apps: []config.ProxyApp{{ID: "kcd", Host: "sso.example.test", PathPrefix: "/apps/kcd/", Upstream: mustURL(t, apacheURL),
			Timeout: 10 * time.Second, PreAuth: "iwa", AllowedGroups: []string{"staff"},
			Kerberos: &config.ProxyKerberos{SPN: testrealm.AppSPN, LoginIdentity: "sam_account_name", TokenFormat: "spnego", Send: "always", MaxReplayBody: 1 << 20}}}}
	return cfg
}

// fillForm signs in on the form the browser shows.
func fillForm(t *testing.T, b *testrealm.Browser, user, password string) {
	t.Helper()
	b.WaitFor(`document.querySelector('form input[name=username]')`, 30*time.Second)
	b.Fill("#username", user)
	b.Fill("#password", password)
	b.Click("button[type=submit]")
}

// Headless Chromium without a ticket is shown the form (no pop-up: it is the page
// of the 401), signs in as bob, and reaches /whoami, a handoff application and a
// proxy route (constrained delegation to Apache, for staff) with the identity and
// groups of a Negotiate sign-in. With a ticket it never sees the form.
func TestPasswordBrowserWithoutTicket(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	demoPort := freePort(t)
	cfg := passwordKCDConfig(t, r, apache.URL)
	cfg.SSO.Apps[0].RedirectURIs = []string{"http://app.example.test:" + strconv.Itoa(demoPort) + "/callback"}
	g := startGateway(t, cfg)
	demo := exampleApp(t, g, "demo", demoSecret, demoPort)
	bob := r.Kinit(t, "bob")
	want := decodeIdentity(t, g.curl(r, bob, "", g.url("sso.example.test", "/whoami")).body)

	b := r.StartBrowser(t, "")
	b.Navigate(g.url("sso.example.test", "/whoami"))
	fillForm(t, b, "bob", testrealm.Password("bob"))
	b.WaitFor(`document.body && document.body.innerText.includes('"sid"')`, 30*time.Second)
	got := decodeIdentity(t, b.Text())
	if got.SID != want.SID || !slices.Equal(got.Groups, want.Groups) || !slices.Equal(got.GroupNames, want.GroupNames) || got.AuthMethod != "pwd" {
		t.Errorf("browser's identity %+v\nnegotiate identity %+v", got, want)
	}

	b.Navigate(demo + "/login")
	fillForm(t, b, `EXAMPLE\bob`, testrealm.Password("bob"))
	b.WaitFor(`document.body && document.body.innerText.includes('Welcome, bob')`, 30*time.Second)
	if !strings.Contains(b.Text(), want.SID) {
		t.Errorf("handoff app page:\n%s", b.Text())
	}

	b.Navigate(g.url("sso.example.test", "/apps/kcd/whoami"))
	fillForm(t, b, "bob@example.test", testrealm.Password("bob"))
	b.WaitFor(`document.body && document.body.innerText.includes('user=bob@EXAMPLE.TEST')`, 30*time.Second)

	// alice is not in staff: the proxy route refuses her, as it refuses her
	// Negotiate sign-in.
	f := newFormClient(t, nil)
	if p := f.signIn(g.url("sso.example.test", "/apps/kcd/whoami"), "alice", testrealm.Password("alice")); p.status != http.StatusForbidden ||
		p.header.Get("Kerbgate-Reason") != "not_in_group" {
		t.Errorf("alice at the staff route: %d %s\n%s", p.status, p.header.Get("Kerbgate-Reason"), p.body)
	}

	// With a ticket: Negotiate answers the challenge, and the form is never shown.
	before := strings.Count(g.logs.String(), `"msg":"password sign-in"`)
	tb := r.StartBrowser(t, bob)
	tb.Navigate(g.url("sso.example.test", "/whoami"))
	tb.WaitFor(`document.body && document.body.innerText.includes('"sid"')`, 30*time.Second)
	if id := decodeIdentity(t, tb.Text()); id.AuthMethod != "kerberos" || id.SID != want.SID {
		t.Errorf("with a ticket: %+v", id)
	}
	if n := strings.Count(g.logs.String(), `"msg":"password sign-in"`); n != before {
		t.Errorf("a password sign-in happened with a ticket")
	}
}

// curlBasic runs curl -u user:password (Basic, sent at once) to u.
func curlBasic(t testing.TB, g *gateway, u, user, password string, extra ...string) curlResult {
	t.Helper()
	args := append([]string{"-sS", "-u", user + ":" + password, "-D", "-", "-o", "/dev/stderr"}, extra...)
	cmd := exec.Command("curl", append(args, u)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v\n%s", u, err, stderr.String())
	}
	return parseCurl(t, stdout.String(), stderr.String())
}

// Basic, opted in by one app: curl -u bob:… over TLS reaches the app (delegated to
// Apache as bob); over plain http it is refused before the KDC is asked; an app
// without basic_auth does not take it; only programs are offered Basic.
func TestPasswordBasicOverTLSOnly(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	ca := testrealm.NewTestCA(t)
	cert := ca.Issue(t, "kerbgate", "sso.example.test")
	cfg := passwordKCDConfig(t, r, apache.URL)
	cfg.Proxy.Apps[0].BasicAuth = true
	plain := startGateway(t, cfg)
	tlsCfg := *cfg
	tlsCfg.TLS = config.TLS{Enabled: true, CertFile: cert.CertFile, KeyFile: cert.KeyFile}
	g := startGateway(t, &tlsCfg)

	c := curlBasic(t, g, g.url("sso.example.test", "/apps/kcd/whoami"), "bob", testrealm.Password("bob"), "--cacert", ca.CAFile)
	if c.status != 200 || !strings.Contains(c.body, "user=bob@EXAMPLE.TEST") {
		t.Fatalf("Basic over TLS: %d %s\n%s", c.status, c.headers.Get("Kerbgate-Reason"), c.body)
	}
	// A POST's body reaches the application whole, with Basic and with Negotiate
	// (the fallback reads a form body only to tell whether it is the sign-in form).
	c = curlBasic(t, g, g.url("sso.example.test", "/apps/kcd/whoami"), "bob", testrealm.Password("bob"), "--cacert", ca.CAFile, "--data", "kind=basic&x=1")
	if c.status != 200 || !strings.Contains(c.body, "method=POST\nbody=kind=basic&x=1") {
		t.Errorf("Basic POST: %d\n%s", c.status, c.body)
	}
	bob := r.Kinit(t, "bob")
	big := strings.Repeat("z", 20000)
	for _, data := range []string{"kind=negotiate&y=2", "kind=big&v=" + big} {
		c = g.curl(r, bob, "", g.url("sso.example.test", "/apps/kcd/whoami"), "--cacert", ca.CAFile, "--data", data)
		if c.status != 200 || !strings.Contains(c.body, "method=POST\nbody="+data) {
			t.Errorf("Negotiate POST of %d bytes: %d\n%.300s", len(data), c.status, c.body)
		}
	}
	c = curlBasic(t, g, g.url("sso.example.test", "/apps/kcd/whoami"), "bob", "Wrong#Pass1", "--cacert", ca.CAFile)
	if c.status != 401 || c.headers.Get("Kerbgate-Reason") != "password_wrong" || !strings.HasPrefix(c.headers.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("wrong password over Basic: %d %s %v", c.status, c.headers.Get("Kerbgate-Reason"), c.headers)
	}

	c = curlBasic(t, plain, plain.url("sso.example.test", "/apps/kcd/whoami"), "bob", testrealm.Password("bob"))
	if c.status != http.StatusForbidden || c.headers.Get("Kerbgate-Reason") != "basic_over_http" {
		t.Errorf("Basic over http: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}
	if n := plain.counter(t, "kerbgate_password_kdc_requests_total", "kind", "as"); n != 0 {
		t.Errorf("%v AS exchanges for a password sent over http", n)
	}

	// /whoami does not take Basic (no basic_auth there): it answers the challenge.
	c = curlBasic(t, g, g.url("sso.example.test", "/whoami"), "bob", testrealm.Password("bob"), "--cacert", ca.CAFile)
	if c.status != 401 || c.headers.Get("WWW-Authenticate") != "Negotiate" {
		t.Errorf("Basic where not enabled: %d %v", c.status, c.headers)
	}

	// Programs are offered Basic with Negotiate on the app; browsers only Negotiate.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for ua, want := range map[string][]string{
		"curl/7.88.1": {"Negotiate", `Basic realm="kerbgate", charset="UTF-8"`},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/156": {"Negotiate"},
	} {
		f := newFormClient(t, pool)
		f.ua = ua
		p := f.get(g.url("sso.example.test", "/apps/kcd/whoami"))
		if got := p.header.Values("WWW-Authenticate"); p.status != 401 || !slices.Equal(got, want) {
			t.Errorf("%s: %d challenges %q, want %q", ua, p.status, got, want)
		}
	}
}

// badPwdCount reads the account's badPwdCount and lockoutTime over LDAP (LDAPS, as
// svc-ldap), as the domain controller keeps them.
func badPwdCount(t testing.TB, r *testrealm.Realm, user string) (count int, lockoutTime string) {
	t.Helper()
	caPEM, err := os.ReadFile(r.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	// Samba's certificate names the DC in its Common Name only.
	l, err := ldap.DialURL(testrealm.LDAPSURL, ldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool})
			return err
		}}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pw, err := os.ReadFile(r.LDAPBindPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(r.LDAPBindDN, string(pw)); err != nil {
		t.Fatal(err)
	}
	res, err := l.Search(ldap.NewSearchRequest(testrealm.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 10, false,
		"(sAMAccountName="+ldap.EscapeFilter(user)+")", []string{"badPwdCount", "lockoutTime"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("search %s: %v", user, err)
	}
	count, _ = strconv.Atoi(res.Entries[0].GetAttributeValue("badPwdCount"))
	return count, res.Entries[0].GetAttributeValue("lockoutTime")
}

// setLockoutThreshold sets the domain's lockoutThreshold and puts the old value back
// when the test ends (other tests share the domain: keep the window short).
func setLockoutThreshold(t *testing.T, r *testrealm.Realm, n int) {
	t.Helper()
	out := r.SambaTool(t, "domain", "passwordsettings", "show")
	m := regexp.MustCompile(`Account lockout threshold \(attempts\): (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no lockout threshold in:\n%s", out)
	}
	r.SambaTool(t, "domain", "passwordsettings", "set", "--account-lockout-threshold="+strconv.Itoa(n))
	t.Cleanup(func() {
		cmd := exec.Command("samba-tool", "domain", "passwordsettings", "set", "--account-lockout-threshold="+m[1], "-s", r.SmbConf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("restoring the lockout threshold %s: %v\n%s", m[1], err, out)
		}
	})
}

// With the domain's lockoutThreshold at 5, a flood of wrong passwords from one
// address stops at kerbgate's own threshold (2 for unfamiliar sources, read from
// the domain), and AD's badPwdCount stays below 5: the account is not locked in
// Windows. The user still signs in from a familiar address while the unfamiliar
// one is blocked, even with the right password; the familiar sources have their
// own, as small, budget.
func TestPasswordSmartLockoutStaysBelowADThreshold(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	user := r.TempUser(t, "lock")
	setLockoutThreshold(t, r, 5)
	cfg := passwordConfig(t, r)
	cfg.Listen.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.PasswordSignIn.Lockout.Backoff, cfg.PasswordSignIn.Lockout.MaxBackoff = 10*time.Millisecond, time.Second
	g := startGateway(t, cfg)
	if !strings.Contains(g.logs.String(), `"domain_lockout_threshold":5`) || !strings.Contains(g.logs.String(), `"unfamiliar_threshold":2,"familiar_threshold":2`) {
		t.Fatalf("kerbgate did not read the domain's threshold:\n%s", grepLines(g.logs.String(), "lockout"))
	}
	whoami := g.url("sso.example.test", "/whoami")
	from := func(addr string) *formClient {
		f := newFormClient(t, nil)
		f.headers.Set("X-Forwarded-For", addr)
		return f
	}
	const home, elsewhere = "192.0.2.10", "203.0.113.66"
	if p := from(home).signIn(whoami, user, testrealm.TempUserPassword); p.status != 200 {
		t.Fatalf("first sign-in from home: %d %s", p.status, p.header.Get("Kerbgate-Reason"))
	}

	attacker := from(elsewhere)
	reasons := map[string]int{}
	for i := 0; i < 12; i++ {
		p := attacker.signIn(whoami, user, "Wrong#Pass"+strconv.Itoa(i))
		reasons[p.header.Get("Kerbgate-Reason")]++
		if p.header.Get("Kerbgate-Reason") == "password_backoff" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if reasons["password_wrong"] != 2 || reasons["password_locked_out"] == 0 {
		t.Errorf("12 wrong passwords from an unfamiliar address: %v, want 2 password_wrong then password_locked_out", reasons)
	}
	if n, lt := badPwdCount(t, r, user); n != 2 || (lt != "" && lt != "0") {
		t.Errorf("AD's badPwdCount %d lockoutTime %q after the flood, want 2 and not locked", n, lt)
	}
	if p := attacker.signIn(whoami, user, testrealm.TempUserPassword); p.header.Get("Kerbgate-Reason") != "password_locked_out" {
		t.Errorf("right password from the unfamiliar address: %d %s, want password_locked_out", p.status, p.header.Get("Kerbgate-Reason"))
	}
	if p := from(home).signIn(whoami, user, testrealm.TempUserPassword); p.status != 200 {
		t.Errorf("from home while the unfamiliar address is blocked: %d %s", p.status, p.header.Get("Kerbgate-Reason"))
	}

	// The familiar address's own budget: 2 failures, then blocked too; AD never
	// reaches 5 (the success above reset its count).
	reasons = map[string]int{}
	home2 := from(home)
	for i := 0; i < 8; i++ {
		p := home2.signIn(whoami, user, "Wrong#Pass"+strconv.Itoa(i))
		reasons[p.header.Get("Kerbgate-Reason")]++
		time.Sleep(50 * time.Millisecond)
	}
	if reasons["password_wrong"] != 2 || reasons["password_locked_out"] == 0 {
		t.Errorf("wrong passwords from home: %v", reasons)
	}
	if n, lt := badPwdCount(t, r, user); n >= 5 || (lt != "" && lt != "0") {
		t.Errorf("AD's badPwdCount %d lockoutTime %q, want below 5 and not locked", n, lt)
	}
}

// A disabled account, an expired account and one whose password must change each
// get their own reason and page; an expired or to-be-changed password links the
// organisation's password-change page.
func TestPasswordAccountStatesHaveTheirReasons(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	cfg := passwordConfig(t, r)
	cfg.PasswordSignIn.PasswordChangeURL = "https://password.example.test/change"
	g := startGateway(t, cfg)
	filetime := func(at time.Time) string { return strconv.FormatInt(at.UnixNano()/100+116444736000000000, 10) }
	for _, tc := range []struct {
		name   string
		set    func(user string)
		status int
		reason string
		link   bool
	}{
		{"disabled", func(u string) { r.SambaTool(t, "user", "disable", u) }, 403, "user_disabled", false},
		{"expired", func(u string) {
			r.LDBModify(t, "dn: "+r.DN(t, u)+"\nchangetype: modify\nreplace: accountExpires\naccountExpires: "+filetime(time.Now().Add(-time.Hour))+"\n")
		}, 403, "user_expired", false},
		{"must change", func(u string) { r.MustChangePassword(t, u) }, 403, "password_must_change", true},
		{"password expired", func(u string) { r.ExpirePassword(t, u) }, 403, "password_expired", true},
	} {
		user := r.TempUser(t, "state")
		tc.set(user)
		p := newFormClient(t, nil).signIn(g.url("sso.example.test", "/whoami"), user, testrealm.TempUserPassword)
		if p.status != tc.status || p.header.Get("Kerbgate-Reason") != tc.reason {
			t.Errorf("%s: %d %s, want %d %s", tc.name, p.status, p.header.Get("Kerbgate-Reason"), tc.status, tc.reason)
		}
		if got := strings.Contains(p.body, `href="https://password.example.test/change"`); got != tc.link {
			t.Errorf("%s: password change link shown %v, want %v", tc.name, got, tc.link)
		}
		if !strings.Contains(p.body, `role="alert"`) || !strings.Contains(p.body, `aria-invalid="true"`) {
			t.Errorf("%s: the refusal is not announced on the form", tc.name)
		}
	}
}

// Two nodes of a farm on one Redis count one account's failures together: wrong
// passwords spread over both meet one threshold, and a source made familiar on one
// node is familiar on the other.
func TestPasswordFarmSharesCounts(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	user := r.TempUser(t, "farm")
	redis := redistest.Start(t, redistest.Options{})
	cfg := passwordConfig(t, r)
	cfg.Listen.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.PasswordSignIn.Lockout = config.PasswordLockout{DomainThreshold: -1, UnfamiliarThreshold: 3, Backoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	nodes := []*gateway{startGateway(t, withRedis(cfg, redis)), startGateway(t, withRedis(cfg, redis))}

	from := func(addr string) *formClient {
		f := newFormClient(t, nil)
		f.headers.Set("X-Forwarded-For", addr)
		return f
	}
	if p := from("192.0.2.20").signIn(nodes[0].url("sso.example.test", "/whoami"), user, testrealm.TempUserPassword); p.status != 200 {
		t.Fatalf("sign-in on node 1: %d %s", p.status, p.header.Get("Kerbgate-Reason"))
	}
	reasons := map[string]int{}
	for i := 0; i < 8; i++ {
		n := nodes[i%2]
		p := from("203.0.113.7").signIn(n.url("sso.example.test", "/whoami"), user, "Wrong#Pass"+strconv.Itoa(i))
		reasons[p.header.Get("Kerbgate-Reason")]++
		time.Sleep(50 * time.Millisecond)
	}
	if reasons["password_wrong"] != 3 || reasons["password_locked_out"] != 5 {
		t.Errorf("8 wrong passwords over two nodes: %v, want 3 password_wrong (one count for the farm) then 5 password_locked_out", reasons)
	}
	// The address node 1 saw the user sign in from is familiar on node 2 too.
	if p := from("192.0.2.20").signIn(nodes[1].url("sso.example.test", "/whoami"), user, testrealm.TempUserPassword); p.status != 200 {
		t.Fatalf("sign-in on node 2 from the familiar address: %d %s", p.status, p.header.Get("Kerbgate-Reason"))
	}
	if !strings.Contains(nodes[1].logs.String(), `"typed":"`+user+`","source":"192.0.2.20","familiar":true`) {
		t.Errorf("node 2 did not see the source node 1 made familiar:\n%s", grepLines(nodes[1].logs.String(), "password sign-in"))
	}
}

// kdcRelay is a TCP relay in front of the test domain's KDC that counts the
// messages reaching it, by kind: what kerbgate really sends to the KDC.
type kdcRelay struct {
	addr    string
	as, tgs atomic.Int64
}

func startKDCRelay(t testing.TB, kdc string) *kdcRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	k := &kdcRelay{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go k.relay(c, kdc)
		}
	}()
	return k
}

func (k *kdcRelay) relay(c net.Conn, kdc string) {
	defer c.Close()
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	msg := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(c, msg); err != nil || len(msg) == 0 {
		return
	}
	switch msg[0] {
	case 0x6a: // [APPLICATION 10] AS-REQ
		k.as.Add(1)
	case 0x6c: // [APPLICATION 12] TGS-REQ
		k.tgs.Add(1)
	}
	up, err := net.Dial("tcp", kdc)
	if err != nil {
		return
	}
	defer up.Close()
	up.Write(append(n[:], msg...))
	io.Copy(c, up)
}

// postRaw posts body (a form already encoded) to u with the client's cookies.
func (f *formClient) postRaw(u, body string, header http.Header) page {
	f.t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return f.do(req)
}

// The hostile battery: every case is a clean 4xx with its reason, no AS exchange
// reaches the KDC for any of them, and (the harness checks it at cleanup) no
// password is in the log.
func TestPasswordHostileBattery(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	relay := startKDCRelay(t, r.KDC)
	cfg := passwordConfig(t, r)
	cfg.PasswordSignIn.KDCs = []string{relay.addr}
	g := startGateway(t, cfg)
	u := g.url("sso.example.test", "/whoami")
	f := newFormClient(t, nil)
	_, token := f.get(u).form(t)
	armor := relay.as.Load() // kerbgate's own TGT, at start-up
	form := func(user, password, csrf string) string {
		return url.Values{"kerbgate_signin": {"password"}, "kerbgate_csrf": {csrf}, "username": {user}, "password": {password}}.Encode()
	}
	sameOrigin := http.Header{"Origin": {"http://sso.example.test:" + strconv.Itoa(g.port)}}
	long := strings.Repeat("a", 10000)
	for _, c := range []struct {
		name   string
		client *formClient
		body   string
		header http.Header
		status int
		reason string
	}{
		{"no CSRF token", f, form("alice", "Wrong#Pass1", ""), sameOrigin, 403, "form_token_invalid"},
		{"another browser's token", newFormClient(t, nil), form("alice", "Wrong#Pass1", token), sameOrigin, 403, "form_token_invalid"},
		{"forged token", f, form("alice", "Wrong#Pass1", "x."+strings.Repeat("A", 22)), sameOrigin, 403, "form_token_invalid"},
		{"posted from another site", f, form("alice", "Wrong#Pass1", token), http.Header{"Origin": {"https://evil.example"}}, 403, "cross_site_request"},
		{"very long user name", f, form(long, "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"very long password", f, form("alice", long, token), sameOrigin, 400, "password_form_invalid"},
		// Not read as the sign-in form (it is 16 KiB at most): the challenge again.
		{"body over the bound", f, form("alice", strings.Repeat("b", 20000), token), sameOrigin, 401, "no_token"},
		{"another realm", f, form("alice@EVIL.TEST", "Wrong#Pass1", token), sameOrigin, 400, "password_name_foreign"},
		{"another domain", f, form(`EVIL\alice`, "Wrong#Pass1", token), sameOrigin, 400, "password_name_foreign"},
		{"two backslashes", f, form(`EXAMPLE\alice\x`, "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"at sign alone", f, form("@", "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"a service principal", f, form("HTTP/sso.example.test", "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"NUL in the user name", f, form("alice\x00admin", "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"NUL in the password", f, form("alice", "Wrong#Pass1\x00", token), sameOrigin, 400, "password_form_invalid"},
		{"not UTF-8", f, form("alice\xff", "Wrong#Pass1", token), sameOrigin, 400, "password_form_invalid"},
		{"empty password", f, form("alice", "", token), sameOrigin, 400, "password_form_invalid"},
	} {
		p := c.client.postRaw(u, c.body, c.header)
		if p.status != c.status || p.header.Get("Kerbgate-Reason") != c.reason {
			t.Errorf("%s: %d %s, want %d %s", c.name, p.status, p.header.Get("Kerbgate-Reason"), c.status, c.reason)
		}
		if strings.Contains(p.body, "Wrong#Pass1") {
			t.Errorf("%s: the password is in the page", c.name)
		}
	}
	if n := relay.as.Load() - armor; n != 0 {
		t.Errorf("%d AS exchanges reached the KDC for the hostile battery, want 0", n)
	}
}

// Ten thousand parallel wrong-password attempts: half against one account from
// 5,000 addresses (a botnet), half with made-up names from one address. Smart
// lockout and the per-source limit stop them at kerbgate: the KDC sees a few dozen
// AS exchanges, every answer is a clean 4xx, and the heap stays bounded (the figure
// for a separate kerbgate process is BenchmarkPasswordSignIn's).
func TestPasswordParallelWrongPasswords(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	user := r.TempUser(t, "flood")
	relay := startKDCRelay(t, r.KDC)
	cfg := passwordConfig(t, r)
	cfg.PasswordSignIn.KDCs = []string{relay.addr}
	cfg.Listen.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Log.Level = slog.LevelInfo
	g := startGateway(t, cfg)
	u := g.url("sso.example.test", "/whoami")
	f := newFormClient(t, nil)
	f.c.Transport = &http.Transport{MaxConnsPerHost: 1000, MaxIdleConnsPerHost: 1000}
	_, token := f.get(u).form(t)
	before := relay.as.Load()

	const attempts = 10000
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var mu sync.Mutex
	answers := map[string]int{}
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, src := user, fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)
			if i%2 == 1 {
				name, src = fmt.Sprintf("nobody-%d", i), "198.51.100.1"
			}
			body := url.Values{"kerbgate_signin": {"password"}, "kerbgate_csrf": {token}, "username": {name}, "password": {"Wrong#Pass1"}}.Encode()
			req, _ := http.NewRequest("POST", u, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", src)
			req.Header.Set("User-Agent", f.ua)
			resp, err := f.c.Do(req)
			key := "error"
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				key = strconv.Itoa(resp.StatusCode) + " " + resp.Header.Get("Kerbgate-Reason")
			}
			mu.Lock()
			answers[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	as := relay.as.Load() - before
	t.Logf("%d parallel wrong-password attempts in %s: answers %v; %d AS exchanges reached the KDC; peak heap in use %.0f MiB (client and server); %d sources remembered by the rate limit",
		attempts, elapsed.Round(time.Millisecond), answers, as, float64(peak.Load())/(1<<20), g.srv.pw().Sources())
	for k, n := range answers {
		if k == "error" || !strings.HasPrefix(k, "4") {
			t.Errorf("%d answers %q, want only 4xx", n, k)
		}
	}
	// The account: at most 5 attempts (its unfamiliar threshold; fewer within the
	// back-off), two AS exchanges each; made-up names from one address: the rate
	// limit's burst of 20 and one more a second (one AS exchange each: the KDC does
	// not know them). A loaded machine takes longer, which lets the refill add a few.
	if bound := int64(2*5 + 20 + int(elapsed.Seconds()) + 1); as > bound {
		t.Errorf("%d AS exchanges reached the KDC in %s, want at most %d", as, elapsed, bound)
	}
	if peak.Load() > 1<<30 {
		t.Errorf("peak heap %d MiB", peak.Load()>>20)
	}
}

// The OpenID Provider's login step takes the form too: a relying party's user
// without a ticket signs in with a password, and the ID token says amr ["pwd"] and
// the password class (never the Kerberos one) with the subject of the account's
// SID, as after Negotiate. The OIDC browser session then answers without the form,
// unless the relying party asks for the Kerberos class: then the form again.
func TestPasswordOIDCProviderLogin(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	cfg, issuer := opConfig(t, r)
	cfg.PasswordSignIn = passwordConfig(t, r).PasswordSignIn
	startGateway(t, cfg)
	ctx := context.Background()
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	f := newFormClient(t, nil)
	f.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), opRPCallback) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	type claims struct {
		Sub      string
		Nonce    string
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	// flow runs one authorization; with a password it expects the form first.
	flow := func(what, password string, extra ...oauth2.AuthCodeOption) claims {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		p := f.get(rp.oauth.AuthCodeURL("st-pw", append(extra, oidc.Nonce("n-pw"), oauth2.S256ChallengeOption(verifier))...))
		if password != "" {
			if p.status != http.StatusUnauthorized {
				t.Fatalf("%s: login step without a ticket: %d", what, p.status)
			}
			p = f.post(p, url.Values{"username": {"alice"}, "password": {password}})
		}
		loc, err := url.Parse(p.header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), opRPCallback) || loc.Query().Get("code") == "" {
			t.Fatalf("%s: %d %q %s", what, p.status, p.header.Get("Location"), p.header.Get("Kerbgate-Reason"))
		}
		tok, err := rp.oauth.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var c claims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.Sub != signingkeys.Subject(issuer, r.SID(t, "alice")) || c.Nonce != "n-pw" || c.ACR != oidcprovider.ACRPassword ||
			!slices.Equal(c.AMR, []string{"pwd"}) || c.AuthTime == 0 {
			t.Errorf("%s: ID token claims %+v", what, c)
		}
		return c
	}
	first := flow("form sign-in", testrealm.Password("alice"))
	if again := flow("the OIDC browser session", ""); again.AuthTime != first.AuthTime {
		t.Errorf("the session's auth_time %d, want the form sign-in's %d", again.AuthTime, first.AuthTime)
	}
	flow("the Kerberos class asked for", testrealm.Password("alice"), oauth2.SetAuthURLParam("acr_values", oidcprovider.ACRKerberos))
	if m := discovery(t, rp); !slices.Contains(m.ACRValues, oidcprovider.ACRPassword) {
		t.Errorf("acr_values_supported %v", m.ACRValues)
	}
}

// Forward-auth takes the form at kerbgate's own sign-in page only: a browser
// without a ticket at a sign_in: redirect host behind nginx is sent there, signs in
// with the form, and comes back to the page nginx then passes with alice's identity
// headers. A sign_in: negotiate host answers 401 Negotiate through nginx, without
// the form: the proxy drops the auth endpoint's page and keeps request bodies.
func TestPasswordForwardAuthSignInPage(t *testing.T) {
	r := testrealm.Require(t)
	s := startForwardAuth(t, r, func(c *config.Config) { c.PasswordSignIn = passwordConfig(t, r).PasswordSignIn })
	n := s.nginx(t, true)
	f := newFormClient(t, nil)
	back := fmt.Sprintf("http://rbcd.example.test:%d/wiki?a=1", n.Port)
	p := f.get(back)
	if want := s.cfg.ForwardAuth.SignInURL + "?rd=" + url.QueryEscape(back); p.status != http.StatusFound || p.header.Get("Location") != want {
		t.Fatalf("redirect host: %d %q, want %q", p.status, p.header.Get("Location"), want)
	}
	p = f.get(p.header.Get("Location"))
	if p.status != http.StatusUnauthorized || p.header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("sign-in page without a ticket: %d %v", p.status, p.header)
	}
	p = f.post(p, url.Values{"username": {"alice"}, "password": {testrealm.Password("alice")}})
	if p.status != http.StatusFound || p.header.Get("Location") != back {
		t.Fatalf("after the form: %d %q %s", p.status, p.header.Get("Location"), p.header.Get("Kerbgate-Reason"))
	}
	p = f.get(back)
	if e := decodeEcho(t, p.body); p.status != http.StatusOK || e.Headers.Get("X-Auth-Request-User") != "alice" ||
		e.Headers.Get("X-Auth-Request-Sid") != r.SID(t, "alice") {
		t.Fatalf("alice back at the host: %d %s", p.status, p.body)
	}

	p = newFormClient(t, nil).get(fmt.Sprintf("http://app.example.test:%d/", n.Port))
	if p.status != http.StatusUnauthorized || p.header.Get("WWW-Authenticate") != "Negotiate" || strings.Contains(p.body, "kerbgate_csrf") {
		t.Errorf("negotiate host without a ticket: %d %v\n%s", p.status, p.header, p.body)
	}
}
