package directory

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-ldap/ldap/v3/gssapi"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/testrealm"
)

func baseConfig(t testing.TB, r *testrealm.Realm) Config {
	t.Helper()
	pw, err := os.ReadFile(r.LDAPBindPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		URL:              testrealm.LDAPSURL,
		CACertFile:       r.CACert,
		LegacyCommonName: true, // Samba's certificate has no SANs
		BaseDN:           testrealm.BaseDN,
		Realm:            "EXAMPLE.TEST",
		BindMethod:       "simple",
		BindDN:           r.LDAPBindDN,
		BindPassword:     strings.TrimSpace(string(pw)),
		Timeout:          3 * time.Second,
	}
}

func newDir(t testing.TB, r *testrealm.Realm, mod func(*Config)) *Directory {
	t.Helper()
	cfg := baseConfig(t, r)
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func wantCode(t *testing.T, err error, code reason.Code) *reason.Error {
	t.Helper()
	var re *reason.Error
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want *reason.Error %s", err, err, code)
	}
	if re.Code != code {
		t.Fatalf("code = %s (%v), want %s", re.Code, re, code)
	}
	return re
}

func fact(e *reason.Error, key string) string {
	for _, f := range e.Facts {
		if f.Key == key {
			return f.Value.String()
		}
	}
	return ""
}

func TestLookupAlice(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, nil)
	ctx := context.Background()
	sid := r.SID(t, "alice")
	for _, c := range []struct{ upn, sam string }{
		{"alice@example.test", ""},
		{"ALICE@EXAMPLE.TEST", ""},
		{"alice@other.test", "alice"}, // no such UPN: sAMAccountName fallback
		{"", "alice"},
	} {
		u, err := d.LookupName(ctx, c.upn, c.sam)
		if err != nil {
			t.Fatalf("Lookup(%q, %q): %v", c.upn, c.sam, err)
		}
		if u.SID != sid || u.SAMAccountName != "alice" || !strings.EqualFold(u.UPN, "alice@example.test") ||
			!strings.HasPrefix(strings.ToLower(u.DN), "cn=alice,") {
			t.Errorf("Lookup(%q, %q) = %+v, want alice with SID %s", c.upn, c.sam, u, sid)
		}
		if u.Disabled || u.Locked || u.Expired {
			t.Errorf("alice state: %+v", u)
		}
		if !slices.Contains(u.Groups, strings.Join(strings.Split(sid, "-")[:7], "-")+"-513") {
			t.Errorf("alice groups %v lack Domain Users", u.Groups)
		}
	}
	if _, err := d.Check(ctx, &identity.Identity{Principal: "alice@EXAMPLE.TEST", Realm: "EXAMPLE.TEST"}); err != nil {
		t.Errorf("Check(alice by principal): %v", err)
	}
}

// Issue 13, item 2: a signed-in identity is looked up by its SID, never by a bare
// name, so that administrator@PARTNER.TEST is not the local Administrator; an
// identity without a SID is looked up by name only in the directory's own realm.
func TestLookupIdentityBySIDNeverByName(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, nil)
	ctx := context.Background()
	admin := r.SID(t, "Administrator")
	for _, id := range []*identity.Identity{
		{Principal: "administrator@EXAMPLE.TEST", SAMAccountName: "administrator", Realm: "EXAMPLE.TEST", SID: admin},
		{Principal: "someone-else@EXAMPLE.TEST", SAMAccountName: "someone-else", Realm: "EXAMPLE.TEST", SID: admin}, // the SID decides
	} {
		u, err := d.Check(ctx, id)
		if err != nil || u.SID != admin || !strings.EqualFold(u.SAMAccountName, "administrator") {
			t.Fatalf("Check(%s) = %+v, %v; want the local Administrator", id.Principal, u, err)
		}
	}
	partner := &identity.Identity{Principal: "administrator@PARTNER.TEST", UPN: "administrator@partner.test",
		SAMAccountName: "administrator", Realm: "PARTNER.TEST", SID: "S-1-5-21-1-2-3-500"}
	_, err := d.Check(ctx, partner)
	if e := wantCode(t, err, reason.UserNotFound); fact(e, "sid") != "S-1-5-21-1-2-3-500" {
		t.Errorf("refusal %v does not name the SID", e)
	}
	// Without a SID: a name of the own realm is looked up; of another realm, not.
	if u, err := d.Check(ctx, &identity.Identity{Principal: "alice@EXAMPLE.TEST", Realm: "EXAMPLE.TEST"}); err != nil || u.SAMAccountName != "alice" {
		t.Errorf("Check(alice without SID) = %+v, %v", u, err)
	}
	partner.SID = ""
	_, err = d.Check(ctx, partner)
	if e := wantCode(t, err, reason.UserNotFound); fact(e, "directory_realm") != "EXAMPLE.TEST" {
		t.Errorf("refusal %v does not name the realms", e)
	}
	// A malformed SID finds nobody (and never reaches the filter unescaped).
	for _, bad := range []string{"S-1-5-21-*", "S-1-5-21-1-2-3-500)(objectSid=*", "alice"} {
		_, err := d.LookupSID(ctx, bad)
		wantCode(t, err, reason.UserNotFound)
	}
}

func TestSIDBytesRoundTrip(t *testing.T) {
	for _, s := range []string{"S-1-5-21-4230208097-1678288143-3557321031-500", "S-1-5-32-544", "S-1-18-1", "S-1-0"} {
		b, ok := sidBytes(s)
		if !ok || sidString(b) != s {
			t.Errorf("sidBytes(%q) = %x %v, back %q", s, b, ok, sidString(b))
		}
	}
	if got := escapeBytes([]byte{1, 0x2a, 0xff}); got != `\01\2a\ff` {
		t.Errorf("escapeBytes = %q", got)
	}
}

func TestNestedGroups(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, nil)
	u, err := d.LookupName(context.Background(), "bob@example.test", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"sso-users", "staff"} {
		if sid := r.SID(t, g); !slices.Contains(u.Groups, sid) {
			t.Errorf("bob's groups %v lack %s (%s)", u.Groups, g, sid)
		}
	}
	dave, err := d.LookupName(context.Background(), "dave@example.test", "dave")
	if err != nil {
		t.Fatal(err)
	}
	if len(dave.Groups) < 130 {
		t.Errorf("dave has %d groups, want >= 130", len(dave.Groups))
	}
	if sid := r.SID(t, "dave-g130"); !slices.Contains(dave.Groups, sid) {
		t.Errorf("dave's groups lack dave-g130 %s", sid)
	}
}

func TestUserNotFound(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Minute })
	for _, c := range []struct{ upn, sam string }{
		{"nobody@example.test", "nobody"}, {"", ""}, {"a*", "*"}, {"x)(sAMAccountName=alice", "x)(|(cn=*"},
	} {
		_, err := d.LookupName(context.Background(), c.upn, c.sam)
		wantCode(t, err, reason.UserNotFound)
	}
}

func TestGroupSID(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.CacheTTL = time.Minute })
	for _, g := range []string{"staff", "Sso-Users", "dave-g001"} {
		got, err := d.GroupSID(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		if want := r.SID(t, strings.ToLower(g)); got != want {
			t.Errorf("GroupSID(%s) = %s, want %s", g, got, want)
		}
	}
	if _, err := d.GroupSID(context.Background(), "no-such-group"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("GroupSID(no-such-group) = %v, want ErrGroupNotFound", err)
	}
	if _, err := d.GroupSID(context.Background(), "alice"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("GroupSID(alice) = %v, want ErrGroupNotFound (a user, not a group)", err)
	}
}

func idOf(name string) *identity.Identity {
	return &identity.Identity{Principal: name + "@EXAMPLE.TEST", UPN: name + "@example.test",
		SAMAccountName: name, Realm: "EXAMPLE.TEST"}
}

func TestDisabled(t *testing.T) {
	r := testrealm.Require(t)
	ctx := context.Background()
	name := r.TempUser(t, "carol")

	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	uncached := newDir(t, r, nil)
	cachedDir := newDir(t, r, func(c *Config) { c.CacheTTL = time.Minute; c.Now = clock })

	if _, err := uncached.Check(ctx, idOf(name)); err != nil {
		t.Fatalf("Check(%s) before disable: %v", name, err)
	}
	if _, err := cachedDir.Check(ctx, idOf(name)); err != nil {
		t.Fatalf("cached Check(%s) before disable: %v", name, err)
	}
	r.SambaTool(t, "user", "disable", name)

	_, err := uncached.Check(ctx, idOf(name))
	e := wantCode(t, err, reason.UserDisabled)
	if fact(e, "user") != name || fact(e, "userAccountControl") != "66050" { // NORMAL_ACCOUNT|DONT_EXPIRE_PASSWD|ACCOUNTDISABLE
		t.Errorf("facts = %v", e.Facts)
	}

	if _, err := cachedDir.Check(ctx, idOf(name)); err != nil {
		t.Errorf("cached Check within TTL = %v, want the cached (enabled) account", err)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	_, err = cachedDir.Check(ctx, idOf(name))
	wantCode(t, err, reason.UserDisabled)
}

// filetimeOf is the AD FILETIME of t.
func filetimeOf(t time.Time) int64 { return t.UnixNano()/100 + 116444736000000000 }

func TestExpired(t *testing.T) {
	r := testrealm.Require(t)
	name := r.TempUser(t, "carol")
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: accountExpires\naccountExpires: %d\n",
		r.DN(t, name), filetimeOf(past)))
	d := newDir(t, r, nil)
	_, err := d.Check(context.Background(), idOf(name))
	e := wantCode(t, err, reason.UserExpired)
	if got := fact(e, "accountExpires"); got != past.UTC().Format(time.RFC3339) {
		t.Errorf("accountExpires fact = %q, want %s", got, past.UTC().Format(time.RFC3339))
	}

	// An expiry in the future is not expired yet, but is once Now passes it.
	future := time.Now().Add(time.Hour)
	r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: accountExpires\naccountExpires: %d\n",
		r.DN(t, name), filetimeOf(future)))
	later := newDir(t, r, func(c *Config) { c.Now = func() time.Time { return future.Add(time.Minute) } })
	if _, err := d.Check(context.Background(), idOf(name)); err != nil {
		t.Errorf("Check with accountExpires in an hour: %v", err)
	}
	_, err = later.Check(context.Background(), idOf(name))
	wantCode(t, err, reason.UserExpired)
}

func TestLocked(t *testing.T) {
	r := testrealm.Require(t)
	name := r.TempUser(t, "carol")
	at := time.Now().Truncate(time.Second)
	r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: %d\n",
		r.DN(t, name), filetimeOf(at)))
	d := newDir(t, r, nil)
	u, err := d.Check(context.Background(), idOf(name))
	e := wantCode(t, err, reason.UserLocked)
	if got := fact(e, "lockoutTime"); got != at.UTC().Format(time.RFC3339) {
		t.Errorf("lockoutTime fact = %q", got)
	}
	if u.LockedByDC == nil {
		t.Logf("DC returned no msDS-User-Account-Control-Computed")
	} else {
		t.Logf("DC's own lockout view (UF_LOCKOUT): %v", *u.LockedByDC)
	}

	// A lockout older than the domain's lockoutDuration (Samba default 30 min)
	// has ended: the DC's computed flag says so.
	old := time.Now().Add(-24 * time.Hour)
	r.LDBModify(t, fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: %d\n",
		r.DN(t, name), filetimeOf(old)))
	u, err = d.Check(context.Background(), idOf(name))
	if u != nil && u.LockedByDC != nil {
		if err != nil {
			t.Errorf("Check with a day-old lockoutTime = %v, want allowed (lockout duration over)", err)
		}
	} else {
		wantCode(t, err, reason.UserLocked)
	}
}

func TestTLSAndBindFailures(t *testing.T) {
	r := testrealm.Require(t)
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	writeSelfSignedCA(t, otherCA)
	for _, c := range []struct {
		name, stage, detail, errPart string
		mod                          func(*Config)
	}{
		{"wrong CA", "tls", "TLS with the directory failed", "x509", func(c *Config) { c.CACertFile = otherCA }},
		{"wrong server name", "tls", "TLS with the directory failed", "sso.example.test", func(c *Config) { c.ServerName = "sso.example.test" }},
		{"CN-only certificate without LegacyCommonName", "tls", "TLS with the directory failed", "legacy Common Name", func(c *Config) { c.LegacyCommonName = false }},
		{"wrong password", "bind", "directory bind failed", "Invalid Credentials", func(c *Config) { c.BindPassword = "wrong" }},
		{"nothing listening", "connect", "cannot connect to the directory", "refused", func(c *Config) { c.URL = "ldaps://127.0.0.1:1" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDir(t, r, c.mod)
			start := time.Now()
			_, err := d.LookupName(context.Background(), "alice@example.test", "alice")
			e := wantCode(t, err, reason.DirectoryUnavailable)
			if fact(e, "stage") != c.stage || e.Detail != c.detail || !strings.Contains(fact(e, "error"), c.errPart) ||
				fact(e, "url") == "" {
				t.Errorf("got %v, want stage %s, detail %q, error containing %q", e, c.stage, c.detail, c.errPart)
			}
			if strings.Contains(e.Error(), "SvcLdap") {
				t.Errorf("error reveals the password: %v", e)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("took %v", el)
			}
			if err := d.Ping(context.Background()); err == nil {
				t.Errorf("Ping succeeded")
			}
		})
	}
}

func TestStartTLS(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, func(c *Config) { c.URL = testrealm.LDAPURL; c.StartTLS = true })
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := d.LookupName(context.Background(), "bob@example.test", "bob")
	if err != nil || !slices.Contains(u.Groups, r.SID(t, "staff")) {
		t.Fatalf("Lookup bob over StartTLS = %+v, %v", u, err)
	}
}

func TestNewRejects(t *testing.T) {
	r := testrealm.Require(t)
	for _, c := range []struct {
		name, want string
		mod        func(*Config)
	}{
		{"gssapi", "Sign or Seal", func(c *Config) {
			c.BindMethod = "gssapi"
			c.Keytab, c.Principal, c.Realm, c.Krb5Conf = r.GatewayAccountKeytab, "svc-gw", "EXAMPLE.TEST", r.Krb5Conf
		}},
		{"simple over plain ldap", "Transport encryption required", func(c *Config) { c.URL = testrealm.LDAPURL }},
		{"starttls with ldaps", "start_tls", func(c *Config) { c.StartTLS = true }},
		{"no password", "password", func(c *Config) { c.BindPassword = "" }},
		{"bad scheme", "scheme", func(c *Config) { c.URL = "http://dc1.example.test" }},
		{"no base DN", "base DN", func(c *Config) { c.BaseDN = "" }},
		{"missing CA file", "CA file", func(c *Config) { c.CACertFile = "/nonexistent/ca.pem" }},
	} {
		cfg := baseConfig(t, r)
		c.mod(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want error containing %q", c.name, err, c.want)
		}
	}
	cfg := baseConfig(t, r)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		if strings.Contains(s, cfg.BindPassword) {
			t.Errorf("Config formatting reveals the password: %s", s)
		}
	}
}

// TestGSSAPIBindRefusedBySamba records why New rejects "gssapi": go-ldap's
// GSSAPI client (no SASL security layer) is refused on every transport.
func TestGSSAPIBindRefusedBySamba(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, nil) // for its TLS configuration
	for _, c := range []struct {
		name     string
		url      string
		starttls bool
	}{{"ldap 389", testrealm.LDAPURL, false}, {"StartTLS", testrealm.LDAPURL, true}, {"LDAPS", testrealm.LDAPSURL, false}} {
		l, err := ldap.DialURL(c.url, ldap.DialWithTLSConfig(d.tlsConf))
		if err != nil {
			t.Fatalf("%s: dial: %v", c.name, err)
		}
		if c.starttls {
			if err := l.StartTLS(d.tlsConf); err != nil {
				t.Fatalf("%s: StartTLS: %v", c.name, err)
			}
		}
		cl, err := gssapi.NewClientWithKeytab("svc-gw", testrealm.RealmName, r.GatewayAccountKeytab, r.Krb5Conf)
		if err != nil {
			t.Fatal(err)
		}
		err = l.GSSAPIBind(cl, testrealm.LDAPSPN, "")
		cl.Close()
		l.Close()
		if err == nil {
			t.Errorf("%s: GSSAPI bind succeeded: go-ldap's GSSAPI now works here, New could allow it", c.name)
		} else if !ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) || !strings.Contains(err.Error(), "Sign or Seal are required") {
			t.Errorf("%s: GSSAPI bind error = %v, want Strong Auth Required / Sign or Seal are required", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// proxy forwards TCP connections to target until stopped; in blackhole mode it
// accepts connections and never answers.
type proxy struct {
	ln        net.Listener
	target    string
	blackhole bool
	mu        sync.Mutex
	conns     []net.Conn
	wg        sync.WaitGroup
}

func startProxy(t testing.TB, addr, target string, blackhole bool) *proxy {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a just-stopped proxy may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, blackhole: blackhole}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil && p.ln == nil {
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.blackhole {
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// stop closes the listener and every connection, as a DC going down would.
func (p *proxy) stop() {
	p.ln.Close()
	p.wg.Wait()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

func TestUnreachableThenBack(t *testing.T) {
	r := testrealm.Require(t)
	p := startProxy(t, "127.0.0.1:0", "127.0.0.1:636", false)
	addr := p.ln.Addr().String()
	timeout := 2 * time.Second
	d := newDir(t, r, func(c *Config) {
		c.URL = "ldaps://" + addr
		c.ServerName = "dc1.example.test"
		c.Timeout = timeout
		c.CacheTTL = time.Minute
	})
	ctx := context.Background()
	if _, err := d.LookupName(ctx, "alice@example.test", "alice"); err != nil {
		t.Fatal(err)
	}

	p.stop()
	start := time.Now()
	_, err := d.LookupName(ctx, "bob@example.test", "bob")
	e := wantCode(t, err, reason.DirectoryUnavailable)
	if el := time.Since(start); el > timeout {
		t.Errorf("DirectoryUnavailable after %v, want within %v", el, timeout)
	}
	t.Logf("DC down: %v after %v", e, time.Since(start))
	if err := d.Ping(ctx); err == nil {
		t.Error("Ping succeeded with the DC down")
	}
	// Cached users stay available; failures are not cached.
	if _, err := d.LookupName(ctx, "alice@example.test", "alice"); err != nil {
		t.Errorf("cached alice while down: %v", err)
	}

	startProxy(t, addr, "127.0.0.1:636", false)
	if _, err := d.LookupName(ctx, "bob@example.test", "bob"); err != nil {
		t.Fatalf("Lookup after the DC is back: %v", err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping after the DC is back: %v", err)
	}
}

func TestUnresponsiveDirectory(t *testing.T) {
	r := testrealm.Require(t)
	p := startProxy(t, "127.0.0.1:0", "", true)
	timeout := 500 * time.Millisecond
	d := newDir(t, r, func(c *Config) {
		c.URL = "ldaps://" + p.ln.Addr().String()
		c.ServerName = "dc1.example.test"
		c.Timeout = timeout
	})
	start := time.Now()
	_, err := d.LookupName(context.Background(), "alice@example.test", "alice")
	wantCode(t, err, reason.DirectoryUnavailable)
	if el := time.Since(start); el > timeout+300*time.Millisecond {
		t.Errorf("took %v with Timeout %v", el, timeout)
	}
	// A context deadline shorter than Timeout wins.
	d2 := newDir(t, r, func(c *Config) {
		c.URL = "ldaps://" + p.ln.Addr().String()
		c.ServerName = "dc1.example.test"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = d2.LookupName(ctx, "alice@example.test", "alice")
	wantCode(t, err, reason.DirectoryUnavailable)
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("took %v with a 200ms context", el)
	}
}

// TestBrokenPooledConnection: the DC drops idle connections (restart, idle
// timeout); the next operation retries on a fresh connection and succeeds.
func TestBrokenPooledConnection(t *testing.T) {
	r := testrealm.Require(t)
	p := startProxy(t, "127.0.0.1:0", "127.0.0.1:636", false)
	addr := p.ln.Addr().String()
	d := newDir(t, r, func(c *Config) { c.URL = "ldaps://" + addr; c.ServerName = "dc1.example.test" })
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.stop()
	startProxy(t, addr, "127.0.0.1:636", false)
	if _, err := d.LookupName(context.Background(), "alice@example.test", "alice"); err != nil {
		t.Fatalf("Lookup on a dropped pooled connection: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	r := testrealm.Require(t)
	for _, ttl := range []time.Duration{0, time.Minute} {
		d := newDir(t, r, func(c *Config) { c.MaxConns = 4; c.CacheTTL = ttl })
		users := []string{"alice", "bob", "carol", "dave"}
		var wg sync.WaitGroup
		errs := make(chan error, 20*5)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 5; j++ {
					name := users[(i+j)%len(users)]
					u, err := d.Check(context.Background(), idOf(name))
					if err == nil && u.SAMAccountName != name {
						err = fmt.Errorf("asked for %s, got %s", name, u.SAMAccountName)
					}
					if err != nil {
						errs <- err
					}
					if j == 2 {
						if _, err := d.GroupSID(context.Background(), "staff"); err != nil {
							errs <- err
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("ttl %v: %v", ttl, err)
		}
		if n := len(d.idle); n > 4 {
			t.Errorf("%d idle connections, pool size 4", n)
		}
	}
}

func TestClose(t *testing.T) {
	r := testrealm.Require(t)
	d := newDir(t, r, nil)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, err := d.LookupName(context.Background(), "alice@example.test", "alice")
	wantCode(t, err, reason.DirectoryUnavailable)
}

func TestEncodings(t *testing.T) {
	b := []byte{1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x50, 0x04, 0, 0}
	if got := sidString(b); got != "S-1-5-21-1-2-1104" {
		t.Errorf("sidString = %s", got)
	}
	if sidString(b[:10]) != "" || sidString(nil) != "" {
		t.Error("malformed SID accepted")
	}
	for _, v := range []string{"0", "9223372036854775807", "", "x"} {
		if !filetime(v).IsZero() {
			t.Errorf("filetime(%q) not zero", v)
		}
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := filetime(fmt.Sprint(filetimeOf(at))); !got.Equal(at) {
		t.Errorf("filetime round trip = %v, want %v", got, at)
	}
}

func writeSelfSignedCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkLookupCached(b *testing.B) {
	r := testrealm.Require(b)
	d := newDir(b, r, func(c *Config) { c.CacheTTL = time.Hour })
	ctx := context.Background()
	if _, err := d.LookupName(ctx, "bob@example.test", "bob"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.LookupName(ctx, "bob@example.test", "bob"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupUncached(b *testing.B) {
	r := testrealm.Require(b)
	d := newDir(b, r, nil) // CacheTTL 0: every lookup asks the DC (pooled connection)
	ctx := context.Background()
	if err := d.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := d.LookupName(ctx, "bob@example.test", "bob"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupCold(b *testing.B) {
	r := testrealm.Require(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ { // new Directory: dial, TLS, bind, two searches
		d := newDir(b, r, nil)
		if _, err := d.LookupName(ctx, "bob@example.test", "bob"); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}
