// Package directory owns confirming a signed-in user in Active Directory over
// LDAP: that the account exists (found by the SID from the user's PAC, never by a
// bare name, so that a user of a trusted realm is not the local account of the same
// name), its state (disabled, locked out, expired) and its
// groups including nested ones (tokenGroups), with pooled connections and a small
// cache; and naming group SIDs (GroupNames: batched searches, cached per SID).
//
// It must not decide application policy (which groups an app allows: callers
// compare User.Groups with their own lists) and must not read configuration files
// other than the CA certificate named in Config. It never logs; failures are
// *reason.Error values whose facts never include the bind password.
//
// # Binds that work against Samba AD (4.17, measured with go-ldap v3.4.15)
//
//   - simple bind with a proxy account over LDAPS (ldaps://…:636): works.
//   - simple bind over StartTLS on 389: works.
//   - simple bind over plain 389: refused by the DC ("Strong Auth Required:
//     BindSimple: Transport encryption required") and would expose the password;
//     New rejects it.
//   - GSSAPI (go-ldap's gokrb5-based ldap/v3/gssapi client, svc-gw's keytab,
//     service ldap/dc1.example.test): refused on every transport with
//     `LDAP Result Code 8 "Strong Auth Required": SASL:[GSSAPI]: Sign or Seal are
//     required.` — on plain 389, after StartTLS and over LDAPS alike. go-ldap's
//     client always selects "no security layer" in the SASL handshake and cannot
//     sign or seal the LDAP stream, which Samba demands. New rejects
//     BindMethod "gssapi" with ErrGSSAPIUnsupported.
//
// # TLS
//
// Samba's self-generated LDAPS certificate names the DC only in its subject
// Common Name (no subjectAltName). Go's crypto/x509 refuses such certificates
// ("x509: certificate relies on legacy Common Name field, use SANs instead") and
// offers no switch. Config.LegacyCommonName accepts them: the chain is still
// verified against CACertFile, and the host name must then equal the CN exactly
// (case-insensitive, no wildcards) — used only when the certificate has no SANs
// at all. Certificates from AD Certificate Services carry SANs and need no flag.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Config configures a Directory. The caller reads it from wherever it likes; this
// package reads only CACertFile.
type Config struct {
	URL        string // "ldaps://dc1.example.test:636" or "ldap://dc1.example.test:389"
	StartTLS   bool   // with ldap://: upgrade with StartTLS before binding
	CACertFile string // PEM; TLS verifies against it ("" = system roots)
	ServerName string // TLS name to verify; default: host of URL
	// LegacyCommonName accepts a server certificate without any subjectAltName
	// whose subject CN equals ServerName (Samba's self-generated certificate).
	// The chain is verified against CACertFile either way.
	LegacyCommonName bool
	BaseDN           string // "DC=example,DC=test"
	BindMethod       string // "simple" (default); "gssapi" is rejected, see package doc
	BindDN           string // simple: the proxy account's DN
	BindPassword     string // simple: given by the caller, never logged or reported
	// Realm is the Kerberos realm of this directory's users (kerberos.realm): only
	// identities of this realm without a SID are looked up by name (LookupIdentity).
	Realm string
	// GSSAPI settings; kept for configuration compatibility, currently rejected.
	Keytab, Principal, Krb5Conf string
	Timeout                     time.Duration    // per operation (dial, TLS, bind, search); default 5s
	CacheTTL                    time.Duration    // 0 (or negative) disables the cache; configuration's default is DefaultCacheTTL
	MaxConns                    int              // pool size, default 4
	MaxCacheEntries             int              // default 10000
	Now                         func() time.Time // tests; default time.Now
}

// String describes the configuration without the bind password.
func (c Config) String() string {
	pw := ""
	if c.BindPassword != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("directory.Config{URL:%s StartTLS:%t BaseDN:%s BindMethod:%s BindDN:%s BindPassword:%s}",
		c.URL, c.StartTLS, c.BaseDN, c.BindMethod, c.BindDN, pw)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// User is a user object as the directory reports it.
type User struct {
	DN, SAMAccountName, UPN, DisplayName, Mail, SID string
	// Groups are the SIDs of all security groups the user is in, nested ones and
	// the primary group included (tokenGroups).
	Groups             []string
	UserAccountControl uint32
	LockoutTime        time.Time // zero if never locked out (lockoutTime 0)
	AccountExpires     time.Time // zero if the account never expires
	// LockedByDC is the DC's own view of the lockout (UF_LOCKOUT in
	// msDS-User-Account-Control-Computed, which honours lockoutDuration); nil if
	// the DC did not return the attribute.
	LockedByDC *bool
	// Disabled, Locked and Expired are computed at lookup time and again (with
	// Config.Now) by Check.
	Disabled, Locked, Expired bool
}

// DefaultCacheTTL is the cache lifetime configuration should default to.
const DefaultCacheTTL = 60 * time.Second

// ErrGSSAPIUnsupported is returned by New for BindMethod "gssapi".
var ErrGSSAPIUnsupported = errors.New(`directory: bind method "gssapi" is not supported: go-ldap's GSSAPI client offers no SASL sign/seal layer and the DC refuses the bind ("Strong Auth Required: SASL:[GSSAPI]: Sign or Seal are required." on ldap://, StartTLS and ldaps:// alike); use "simple" with a proxy account over ldaps:// or StartTLS`)

// ErrGroupNotFound is returned (wrapped) by GroupSID for an unknown group name.
var ErrGroupNotFound = errors.New("directory: group not found")

const (
	uacAccountDisable = 0x2
	ufLockout         = 0x10
	neverExpires      = 0x7FFFFFFFFFFFFFFF
)

// Directory confirms users in Active Directory. It is safe for concurrent use.
type Directory struct {
	cfg     Config
	u       *url.URL
	addr    string // host:port
	useTLS  bool   // ldaps://
	tlsConf *tls.Config

	slots chan struct{}     // one token per connection that may exist
	idle  chan *ldap.Conn   // bound connections ready for use
	mu    sync.Mutex        // guards cache and closed
	cache map[string]cached // lower-cased key → entry
	done  chan struct{}     // closed by Close
	once  sync.Once

	names             map[string]cached // group SID -> entry (group: its name, "" for none); guarded by mu
	groupNameSearches atomic.Int64      // searches GroupNames made (tests count them)
}

type cached struct {
	user    *User
	group   string // for group entries, and attribute values
	expires time.Time
}

// New validates cfg and returns a Directory. It does not connect: the first
// operation does, so kerbgate starts even when the DC is down.
func New(cfg Config) (*Directory, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	if cfg.MaxCacheEntries <= 0 {
		cfg.MaxCacheEntries = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BindMethod == "" {
		cfg.BindMethod = "simple"
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("directory: url %q: want ldaps://host[:port] or ldap://host[:port]", cfg.URL)
	}
	d := &Directory{cfg: cfg, u: u, done: make(chan struct{}), cache: map[string]cached{}, names: map[string]cached{}}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		d.useTLS = true
		if cfg.StartTLS {
			return nil, fmt.Errorf("directory: start_tls is for ldap:// URLs, not %s", cfg.URL)
		}
		if port == "" {
			port = "636"
		}
	case "ldap":
		if port == "" {
			port = "389"
		}
	default:
		return nil, fmt.Errorf("directory: url %q: scheme must be ldaps or ldap", cfg.URL)
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	if cfg.BaseDN == "" {
		return nil, errors.New("directory: base DN is required")
	}
	if _, err := ldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, fmt.Errorf("directory: base DN %q: %v", cfg.BaseDN, err)
	}
	switch cfg.BindMethod {
	case "simple":
		if cfg.BindDN == "" || cfg.BindPassword == "" {
			return nil, errors.New("directory: simple bind needs a bind DN and a password (AD refuses anonymous searches)")
		}
		if !d.useTLS && !cfg.StartTLS {
			return nil, fmt.Errorf("directory: simple bind over plain %s would send the password in clear and AD/Samba refuse it (\"Strong Auth Required: BindSimple: Transport encryption required\"): use ldaps:// or start_tls", cfg.URL)
		}
	case "gssapi":
		return nil, ErrGSSAPIUnsupported
	default:
		return nil, fmt.Errorf("directory: bind method %q: want \"simple\"", cfg.BindMethod)
	}
	if d.useTLS || cfg.StartTLS {
		tc, err := tlsConfig(cfg, u.Hostname())
		if err != nil {
			return nil, err
		}
		d.tlsConf = tc
	}
	d.slots = make(chan struct{}, cfg.MaxConns)
	d.idle = make(chan *ldap.Conn, cfg.MaxConns)
	return d, nil
}

func tlsConfig(cfg Config, host string) (*tls.Config, error) {
	name := cfg.ServerName
	if name == "" {
		name = host
	}
	var roots *x509.CertPool
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("directory: CA file: %v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: CA file %s holds no PEM certificate", cfg.CACertFile)
		}
	}
	tc := &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12}
	if !cfg.LegacyCommonName {
		return tc, nil
	}
	// Verify the chain ourselves, then the name, accepting the CN only when the
	// certificate has no SANs. Standard verification otherwise.
	tc.InsecureSkipVerify = true
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("tls: failed to verify certificate: %w", err)
		}
		noSANs := len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 && len(leaf.URIs) == 0 && len(leaf.EmailAddresses) == 0
		if noSANs {
			if strings.EqualFold(leaf.Subject.CommonName, name) {
				return nil
			}
			return fmt.Errorf("tls: certificate (no SANs) is for CN %q, not %q", leaf.Subject.CommonName, name)
		}
		if err := leaf.VerifyHostname(name); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		return nil
	}
	return tc, nil
}

// ---------------------------------------------------------------- errors

// stage says where a connection attempt failed.
type stageError struct {
	stage string // "connect", "tls", "bind", "search"
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

var stageDetail = map[string]string{
	"connect": "cannot connect to the directory",
	"tls":     "TLS with the directory failed",
	"bind":    "directory bind failed",
	"search":  "directory search failed",
	"closed":  "directory client closed",
}

func (d *Directory) unavailable(err error) *reason.Error {
	stage := "search"
	var se *stageError
	if errors.As(err, &se) {
		stage = se.stage
		err = se.err
	}
	kv := []any{"url", d.cfg.URL, "stage", stage, "error", err.Error()}
	if stage == "tls" {
		kv = append(kv, "tls_server_name", d.tlsConf.ServerName)
	}
	return reason.New(reason.DirectoryUnavailable, stageDetail[stage], kv...)
}

// broken reports whether err leaves the connection unusable (anything but a
// result code sent by the server).
func broken(err error) bool {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode >= ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultUnavailable ||
			le.ResultCode == ldap.LDAPResultBusy || le.ResultCode == ldap.LDAPResultUnwillingToPerform
	}
	return true
}

// ---------------------------------------------------------------- pool

func (d *Directory) opTimeout(ctx context.Context) time.Duration {
	t := d.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			t = left
		}
	}
	if t <= 0 {
		t = time.Millisecond
	}
	return t
}

// dial opens, secures and binds a new connection.
func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opTimeout(ctx))
	defer cancel()
	deadline, _ := ctx.Deadline()
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, &stageError{"connect", err}
	}
	// The deadline covers TLS, StartTLS and bind; cleared once bound.
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn := raw
	if d.useTLS {
		tc := tls.Client(raw, d.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &stageError{"tls", err}
		}
		conn = tc
	}
	l := ldap.NewConn(conn, d.useTLS)
	l.Start()
	l.SetTimeout(time.Until(deadline))
	if d.cfg.StartTLS {
		if err := l.StartTLS(d.tlsConf); err != nil {
			l.Close()
			return nil, &stageError{"tls", err}
		}
	}
	if err := l.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
		l.Close()
		return nil, &stageError{"bind", err}
	}
	if !stop() {
		l.Close()
		return nil, &stageError{"connect", ctx.Err()}
	}
	_ = raw.SetDeadline(time.Time{})
	return l, nil
}

// get returns a bound connection (fresh reports a new one) holding a pool slot.
func (d *Directory) get(ctx context.Context) (l *ldap.Conn, fresh bool, err error) {
	select {
	case <-d.done:
		return nil, false, &stageError{"closed", errors.New("closed")}
	default:
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, &stageError{"connect", fmt.Errorf("waiting for a pooled connection: %w", ctx.Err())}
	case <-d.done:
		return nil, false, &stageError{"closed", errors.New("closed")}
	}
	for {
		select {
		case l := <-d.idle:
			if l.IsClosing() {
				l.Close()
				continue
			}
			return l, false, nil
		default:
		}
		break
	}
	l, err = d.dial(ctx)
	if err != nil {
		<-d.slots
		return nil, false, err
	}
	return l, true, nil
}

func (d *Directory) put(l *ldap.Conn, bad bool) {
	if !bad {
		select {
		case <-d.done:
			bad = true
		default:
		}
	}
	if bad || l.IsClosing() {
		l.Close()
	} else {
		select {
		case d.idle <- l:
		default:
			l.Close()
		}
	}
	<-d.slots
}

// do runs op on a pooled connection. A network failure on a pooled connection
// discards it and retries once on a fresh one.
func (d *Directory) do(ctx context.Context, op func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		l, fresh, err := d.get(ctx)
		if err != nil {
			return err
		}
		l.SetTimeout(d.opTimeout(ctx))
		stop := context.AfterFunc(ctx, func() { l.Close() })
		err = op(l)
		stopped := stop()
		if err == nil {
			d.put(l, !stopped)
			return nil
		}
		bad := broken(err) || !stopped
		d.put(l, bad)
		if !bad {
			return err // the server's answer, e.g. noSuchObject
		}
		if fresh || attempt > 0 || ctx.Err() != nil {
			return &stageError{"search", err}
		}
	}
}

// ---------------------------------------------------------------- cache

func (d *Directory) cacheGet(key string) (cached, bool) {
	if d.cfg.CacheTTL <= 0 {
		return cached{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.cache[key]
	if !ok {
		return cached{}, false
	}
	if !d.cfg.Now().Before(e.expires) {
		delete(d.cache, key)
		return cached{}, false
	}
	return e, true
}

func (d *Directory) cachePut(key string, e cached) {
	if d.cfg.CacheTTL <= 0 {
		return
	}
	now := d.cfg.Now()
	e.expires = now.Add(d.cfg.CacheTTL)
	d.mu.Lock()
	defer d.mu.Unlock()
	makeRoom(d.cache, d.cfg.MaxCacheEntries, now)
	d.cache[key] = e
}

// makeRoom deletes from a full cache its expired entries, then any, until one more
// fits in max.
func makeRoom(cache map[string]cached, max int, now time.Time) {
	if len(cache) < max {
		return
	}
	for k, v := range cache {
		if !now.Before(v.expires) {
			delete(cache, k)
		}
	}
	for k := range cache {
		if len(cache) < max {
			break
		}
		delete(cache, k)
	}
}

// ---------------------------------------------------------------- operations

var userAttrs = []string{"sAMAccountName", "userPrincipalName", "displayName", "mail",
	"objectSid", "userAccountControl", "lockoutTime", "accountExpires",
	"msDS-User-Account-Control-Computed"}

// LookupIdentity finds the user object of a signed-in identity: by its SID (the PAC's
// user SID, matched against objectSid), never by a bare name, so that a user of a
// trusted realm is never taken for the local account of the same name. An identity
// without a SID (a ticket without a PAC) is looked up by UPN, then sAMAccountName,
// only when its realm is Config.Realm, the directory's own; of another realm it is
// refused with UserNotFound, since its name says nothing about this directory.
// Results are cached for CacheTTL; failures are not. Errors are *reason.Error with
// code UserNotFound or DirectoryUnavailable. The returned User is the caller's.
func (d *Directory) LookupIdentity(ctx context.Context, id *identity.Identity) (*User, error) {
	if id.SID != "" {
		return d.LookupSID(ctx, id.SID)
	}
	if d.cfg.Realm == "" || id.Realm != d.cfg.Realm {
		return nil, reason.New(reason.UserNotFound, "identity without a SID from another realm: it cannot be looked up by name",
			"user", id.Principal, "realm", id.Realm, "directory_realm", d.cfg.Realm)
	}
	sam := id.SAMAccountName
	if sam == "" {
		sam, _, _ = strings.Cut(id.Principal, "@")
	}
	return d.LookupName(ctx, id.UPN, sam)
}

// LookupSID finds the user whose objectSid is sid ("S-1-5-21-…"), cached like
// LookupName.
func (d *Directory) LookupSID(ctx context.Context, sid string) (*User, error) {
	bin, ok := sidBytes(sid)
	if !ok {
		return nil, reason.New(reason.UserNotFound, "the identity's SID is not a valid SID", "sid", sid)
	}
	key := "s\x00" + sid
	if e, ok := d.cacheGet(key); ok {
		return d.withState(e.user), nil
	}
	var u *User
	err := d.do(ctx, func(l *ldap.Conn) error {
		var err error
		u, err = d.lookup(l, []userFilter{{"objectSid", escapeBytes(bin)}})
		return err
	})
	if err != nil {
		return nil, d.unavailable(err)
	}
	if u == nil || u.SID != sid {
		return nil, reason.New(reason.UserNotFound, "no user object has the signed-in user's SID",
			"sid", sid, "base_dn", d.cfg.BaseDN)
	}
	d.cachePut(key, cached{user: u})
	return d.withState(u), nil
}

// LookupName finds a user by userPrincipalName, falling back to sAMAccountName,
// in this directory. It is for names an administrator types (kerbgate doctor
// --user) and for identities LookupIdentity has found to be of this realm; never
// for a signed-in identity as such (see LookupIdentity). Cached like LookupSID.
func (d *Directory) LookupName(ctx context.Context, upn, sam string) (*User, error) {
	key := "u\x00" + strings.ToLower(upn) + "\x00" + strings.ToLower(sam)
	if e, ok := d.cacheGet(key); ok {
		return d.withState(e.user), nil
	}
	var fs []userFilter
	for _, f := range []userFilter{{"userPrincipalName", upn}, {"sAMAccountName", sam}} {
		if f.val != "" {
			f.val = ldap.EscapeFilter(f.val)
			fs = append(fs, f)
		}
	}
	var u *User
	err := d.do(ctx, func(l *ldap.Conn) error {
		var err error
		u, err = d.lookup(l, fs)
		return err
	})
	if err != nil {
		return nil, d.unavailable(err)
	}
	if u == nil {
		return nil, reason.New(reason.UserNotFound, "no user object for the name",
			"upn", upn, "sam_account_name", sam, "base_dn", d.cfg.BaseDN)
	}
	d.cachePut(key, cached{user: u})
	return d.withState(u), nil
}

// userFilter is an attribute and its value, already escaped for a filter.
type userFilter struct{ attr, val string }

// lookup searches for a user object by each filter in turn; nil when none matches.
func (d *Directory) lookup(l *ldap.Conn, filters []userFilter) (*User, error) {
	var entry *ldap.Entry
	for _, f := range filters {
		filter := "(&(objectCategory=person)(objectClass=user)(" + f.attr + "=" + f.val + "))"
		res, err := l.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, 0, false, filter, userAttrs, nil))
		if err != nil {
			return nil, err
		}
		if len(res.Entries) > 0 {
			entry = res.Entries[0]
			break
		}
	}
	if entry == nil {
		return nil, nil
	}
	u := &User{
		DN:             entry.DN,
		SAMAccountName: entry.GetAttributeValue("sAMAccountName"),
		UPN:            entry.GetAttributeValue("userPrincipalName"),
		DisplayName:    entry.GetAttributeValue("displayName"),
		Mail:           entry.GetAttributeValue("mail"),
		SID:            sidString(entry.GetRawAttributeValue("objectSid")),
	}
	uac, _ := strconv.ParseUint(entry.GetAttributeValue("userAccountControl"), 10, 32)
	u.UserAccountControl = uint32(uac)
	u.LockoutTime = filetime(entry.GetAttributeValue("lockoutTime"))
	u.AccountExpires = filetime(entry.GetAttributeValue("accountExpires"))
	if v := entry.GetAttributeValue("msDS-User-Account-Control-Computed"); v != "" {
		n, _ := strconv.ParseUint(v, 10, 32)
		locked := n&ufLockout != 0
		u.LockedByDC = &locked
	}
	// tokenGroups is constructed: only a base-scope search returns it.
	res, err := l.Search(ldap.NewSearchRequest(entry.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"tokenGroups"}, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) > 0 {
		for _, raw := range res.Entries[0].GetRawAttributeValues("tokenGroups") {
			if s := sidString(raw); s != "" {
				u.Groups = append(u.Groups, s)
			}
		}
	}
	return u, nil
}

// withState returns a copy of u with Disabled, Locked and Expired computed now.
func (d *Directory) withState(u *User) *User {
	c := *u
	c.Groups = append([]string(nil), u.Groups...)
	now := d.cfg.Now()
	c.Disabled = c.UserAccountControl&uacAccountDisable != 0
	c.Locked = !c.LockoutTime.IsZero() && (c.LockedByDC == nil || *c.LockedByDC)
	c.Expired = !c.AccountExpires.IsZero() && c.AccountExpires.Before(now)
	if c.LockedByDC != nil {
		v := *c.LockedByDC
		c.LockedByDC = &v
	}
	return &c
}

// Check looks up the signed-in identity (LookupIdentity: by SID) and refuses a
// disabled, locked-out or expired account with UserDisabled, UserLocked or
// UserExpired.
func (d *Directory) Check(ctx context.Context, id *identity.Identity) (*User, error) {
	u, err := d.LookupIdentity(ctx, id)
	if err != nil {
		return nil, err
	}
	facts := func() []any {
		return []any{"user", u.SAMAccountName, "userAccountControl", u.UserAccountControl,
			"lockoutTime", rfc3339(u.LockoutTime), "accountExpires", rfc3339(u.AccountExpires)}
	}
	switch {
	case u.Disabled:
		return u, reason.New(reason.UserDisabled, "account is disabled (userAccountControl has ACCOUNTDISABLE)", facts()...)
	case u.Locked:
		return u, reason.New(reason.UserLocked, "account is locked out (lockoutTime set)", facts()...)
	case u.Expired:
		return u, reason.New(reason.UserExpired, "account has expired (accountExpires in the past)", facts()...)
	}
	return u, nil
}

// GroupSID resolves a group's sAMAccountName to its SID (cached like users). An
// unknown name yields an error wrapping ErrGroupNotFound; a directory failure a
// *reason.Error DirectoryUnavailable.
func (d *Directory) GroupSID(ctx context.Context, name string) (string, error) {
	key := "g\x00" + strings.ToLower(name)
	if e, ok := d.cacheGet(key); ok {
		return e.group, nil
	}
	var sid string
	err := d.do(ctx, func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, 0, false, "(&(objectClass=group)(sAMAccountName="+ldap.EscapeFilter(name)+"))",
			[]string{"objectSid"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) > 0 {
			sid = sidString(res.Entries[0].GetRawAttributeValue("objectSid"))
		}
		return nil
	})
	if err != nil {
		return "", d.unavailable(err)
	}
	if sid == "" {
		return "", fmt.Errorf("%w: %q under %s", ErrGroupNotFound, name, d.cfg.BaseDN)
	}
	d.cachePut(key, cached{group: sid})
	return sid, nil
}

// Attribute reads one attribute of the object at dn (an alternate UPN, say),
// cached like users. A missing attribute is "" with no error; a directory failure
// a *reason.Error DirectoryUnavailable.
func (d *Directory) Attribute(ctx context.Context, dn, attr string) (string, error) {
	key := "a\x00" + strings.ToLower(dn) + "\x00" + strings.ToLower(attr)
	if e, ok := d.cacheGet(key); ok {
		return e.group, nil
	}
	var val string
	err := d.do(ctx, func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", []string{attr}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) > 0 {
			val = res.Entries[0].GetAttributeValue(attr)
		}
		return nil
	})
	if err != nil {
		return "", d.unavailable(err)
	}
	d.cachePut(key, cached{group: val})
	return val, nil
}

// Account is a directory account as far as Kerberos service configuration goes.
type Account struct {
	DN, SAMAccountName string
	// KVNO is msDS-KeyVersionNumber: the version of the account's current keys.
	KVNO uint32
	// SupportedEncryptionTypes is msDS-SupportedEncryptionTypes (0 when unset,
	// which the KDC treats as RC4 only for service tickets).
	SupportedEncryptionTypes uint32
	UserAccountControl       uint32
	SPNs                     []string
	// AllowedToDelegateTo is msDS-AllowedToDelegateTo (classic constrained
	// delegation targets).
	AllowedToDelegateTo []string
	// HasRBCD reports whether msDS-AllowedToActOnBehalfOfOtherIdentity is set
	// (resource-based constrained delegation granted to someone).
	HasRBCD bool
}

// userAccountControl flags of service accounts.
const (
	UACTrustedForDelegation       = 0x80000
	UACTrustedToAuthForDelegation = 0x1000000 // protocol transition (S4U2Self to any)
	UACNotDelegated               = 0x100000
	UACUseDESKeyOnly              = 0x200000
)

var accountAttrs = []string{"sAMAccountName", "msDS-KeyVersionNumber", "msDS-SupportedEncryptionTypes",
	"userAccountControl", "servicePrincipalName", "msDS-AllowedToDelegateTo", "msDS-AllowedToActOnBehalfOfOtherIdentity"}

func accountOf(e *ldap.Entry) Account {
	a := Account{
		DN:                  e.DN,
		SAMAccountName:      e.GetAttributeValue("sAMAccountName"),
		SPNs:                e.GetAttributeValues("servicePrincipalName"),
		AllowedToDelegateTo: e.GetAttributeValues("msDS-AllowedToDelegateTo"),
		HasRBCD:             len(e.GetRawAttributeValue("msDS-AllowedToActOnBehalfOfOtherIdentity")) > 0,
	}
	v, _ := strconv.ParseUint(e.GetAttributeValue("msDS-KeyVersionNumber"), 10, 32)
	a.KVNO = uint32(v)
	v, _ = strconv.ParseUint(e.GetAttributeValue("msDS-SupportedEncryptionTypes"), 10, 32)
	a.SupportedEncryptionTypes = uint32(v)
	v, _ = strconv.ParseUint(e.GetAttributeValue("userAccountControl"), 10, 32)
	a.UserAccountControl = uint32(v)
	return a
}

// SPNOwners returns every account that has spn in servicePrincipalName (never
// cached: it is for start-up checks and diagnosis). More than one is AD's "duplicate
// SPN" failure.
func (d *Directory) SPNOwners(ctx context.Context, spn string) ([]Account, error) {
	var out []Account
	err := d.do(ctx, func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "(servicePrincipalName="+ldap.EscapeFilter(spn)+")", accountAttrs, nil))
		if err != nil {
			return err
		}
		out = out[:0]
		for _, e := range res.Entries {
			out = append(out, accountOf(e))
		}
		return nil
	})
	if err != nil {
		return nil, d.unavailable(err)
	}
	return out, nil
}

// AccountByName returns the account whose sAMAccountName is name, or nil.
func (d *Directory) AccountByName(ctx context.Context, name string) (*Account, error) {
	var out *Account
	err := d.do(ctx, func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, 0, false, "(sAMAccountName="+ldap.EscapeFilter(name)+")", accountAttrs, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) > 0 {
			a := accountOf(res.Entries[0])
			out = &a
		}
		return nil
	})
	if err != nil {
		return nil, d.unavailable(err)
	}
	return out, nil
}

// Ping connects (or reuses a connection), binds and reads the root DSE.
func (d *Directory) Ping(ctx context.Context) error {
	err := d.do(ctx, func(l *ldap.Conn) error {
		_, err := l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", []string{"dnsHostName"}, nil))
		return err
	})
	if err != nil {
		return d.unavailable(err)
	}
	return nil
}

// Close closes idle connections; connections in use close when returned. Later
// operations fail with DirectoryUnavailable.
func (d *Directory) Close() error {
	d.once.Do(func() { close(d.done) })
	for {
		select {
		case l := <-d.idle:
			l.Close()
		default:
			return nil
		}
	}
}

// ---------------------------------------------------------------- encodings

// sidString renders a binary SID (MS-DTYP 2.4.2) as "S-1-5-21-…"; "" if malformed.
func sidString(b []byte) string {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return ""
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var s strings.Builder
	s.WriteString("S-1-")
	s.WriteString(strconv.FormatUint(auth, 10))
	for i := 0; i < int(b[1]); i++ {
		s.WriteByte('-')
		s.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10))
	}
	return s.String()
}

// sidBytes encodes "S-1-5-21-…" as a binary SID (MS-DTYP 2.4.2): revision,
// sub-authority count, the 48-bit authority big-endian, then each sub-authority
// as a little-endian uint32.
func sidBytes(s string) ([]byte, bool) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || parts[1] != "1" || len(parts)-3 > 15 {
		return nil, false
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, false
	}
	b := []byte{1, byte(len(parts) - 3), byte(auth >> 40), byte(auth >> 32), byte(auth >> 24), byte(auth >> 16), byte(auth >> 8), byte(auth)}
	for _, p := range parts[3:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, false
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, true
}

// escapeBytes writes every byte as \xx, the filter form of a binary value (RFC 4515).
func escapeBytes(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '\\', hex[c>>4], hex[c&15])
	}
	return string(out)
}

// filetime converts an AD FILETIME (100 ns since 1601-01-01 UTC) string; zero
// for 0, "never" (0x7FFFFFFFFFFFFFFF) and unparsable values.
func filetime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n == neverExpires {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601 → 1970 in 100 ns
	n -= epochDiff
	return time.Unix(n/1e7, (n%1e7)*100).UTC()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
