package diagnose

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/spncheck"
)

// Env is a doctor run: the settings it checks and what it checks them against.
type Env struct {
	Options Options
	// Dir is the directory client; nil without a directory section.
	Dir *directory.Directory
	// KDC is the KDC address host:port the clock and round trip checks probe;
	// Options.KDCs[0] when empty (the directory's host on port 88 by default).
	KDC string
	// Resolver answers the DNS checks; net.DefaultResolver when nil.
	Resolver *net.Resolver
	// DNSServer (host:port) is asked for CNAME records directly; the first
	// nameserver of /etc/resolv.conf when empty. (The Go resolver would answer
	// from /etc/hosts, where an alias is not a CNAME.)
	DNSServer string
	// User is a test user (sAMAccountName or UPN) for the token size check and the
	// delegation dry run; "" skips them.
	User string
	// Now is kerbgate's clock; time.Now when nil (tests shift it).
	Now func() time.Time
}

// kdc is the KDC address probed; "" when none is known.
func (e *Env) kdc() string {
	if e.KDC == "" && len(e.Options.KDCs) > 0 {
		return e.Options.KDCs[0]
	}
	return e.KDC
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Run runs every check that applies to the configuration.
func Run(ctx context.Context, env *Env) []Finding {
	var out []Finding
	o := &env.Options
	kr, fs := CheckKeytabs(o.Realm, o.Keytabs, o.SPNs)
	out = append(out, fs...)
	if env.Dir == nil {
		out = append(out, Finding{Status: Warn, Check: "directory", Subject: "directory",
			Message: "no directory section: SPN registration, key versions, delegation and token sizes cannot be checked",
			Fix:     "add a directory section (docs/handoff.md) so kerbgate and doctor can read AD"})
	} else {
		out = append(out, spncheck.CheckDirectoryCA(o.Directory.CAFile)...)
		dirOK := CheckDirectory(ctx, env)
		out = append(out, dirOK...)
		if Worst(dirOK) != Fail {
			if kr != nil {
				out = append(out, spncheck.CheckSPNs(ctx, env.Dir, kr, o.Realm, o.SPNs)...)
			}
			out = append(out, spncheck.CheckEPAAccounts(ctx, env.Dir, o.EPA)...)
			if env.User != "" {
				out = append(out, CheckTokenSize(ctx, env))
			}
		}
	}
	if env.kdc() != "" {
		out = append(out, CheckClock(ctx, env))
		if kr != nil && env.Dir != nil {
			out = append(out, CheckRoundTrip(ctx, env, kr)...)
		}
	}
	out = append(out, CheckDNS(ctx, env)...)
	out = append(out, CheckDelegation(ctx, env)...)
	if o.Password != nil {
		out = append(out, CheckPassword(ctx, env)...)
	}
	return out
}

// CheckKeytabs loads every keytab and reports its keys, and each accepted SPN
// (service/host, in realm) without a key.
func CheckKeytabs(realm string, keytabs, spns []string) (*keyring.Keyring, []Finding) {
	var out []Finding
	ok := true
	for _, p := range keytabs {
		kr, err := keyring.Load(p)
		if err != nil {
			ok = false
			out = append(out, Finding{Status: Fail, Check: "keytab_readable", Subject: p,
				Message: "the keytab cannot be loaded", Facts: map[string]any{"error": err.Error()},
				Fix: "export it again (samba-tool domain exportkeytab FILE --principal=SPN, or ktpass /out FILE ...) and make it readable by kerbgate's user only (chmod 600)"})
			continue
		}
		out = append(out, Finding{Status: OK, Check: "keytab_readable", Subject: p,
			Message: "loaded", Facts: map[string]any{"keys": kr.Summary(), "enctypes": etypeNames(kr)}})
	}
	if !ok {
		return nil, out
	}
	kr, err := keyring.Load(keytabs...)
	if err != nil {
		return nil, out
	}
	for _, spn := range spns {
		if !kr.HasPrincipal(spn, realm) {
			out = append(out, Finding{Status: Fail, Check: "spn_in_keytab", Subject: spn,
				Message: "no keytab holds keys for this accepted SPN: its tickets are refused with spn_not_in_keytab",
				Fix:     fmt.Sprintf("export a keytab with --principal=%s and add it to kerberos.keytabs, or remove the SPN from kerberos.spns", spn)})
		}
	}
	return kr, out
}

func etypeNames(kr *keyring.Keyring) string {
	seen := map[int32]bool{}
	var names []string
	for _, e := range kr.Entries() {
		if !seen[e.EType] {
			seen[e.EType] = true
			names = append(names, kcrypto.EnctypeName(e.EType))
		}
	}
	return strings.Join(names, ",")
}

// CheckDirectory connects, verifies TLS, binds and reads the base DN.
func CheckDirectory(ctx context.Context, env *Env) []Finding {
	d := env.Options.Directory
	if err := env.Dir.Ping(ctx); err != nil {
		msg, fix := "cannot reach, verify or bind to the directory", "check directory.url and that the domain controller is up"
		s := err.Error()
		switch {
		case strings.Contains(s, "x509") || strings.Contains(s, "certificate"):
			msg = "the directory's TLS certificate does not verify"
			fix = fmt.Sprintf("set directory.ca_file to the CA that issued the domain controller's certificate (now %s), and directory.server_name to the name in it", d.CAFile)
		case strings.Contains(s, "Invalid Credentials") || strings.Contains(s, "bind"):
			msg = "the bind to the directory is refused"
			fix = "check directory.bind.dn and its password file / variable; the account must be enabled"
		}
		return []Finding{{Status: Fail, Check: "directory", Subject: d.URL, Message: msg,
			Facts: map[string]any{"error": s}, Fix: fix}}
	}
	out := []Finding{{Status: OK, Check: "directory", Subject: d.URL, Message: "reachable, TLS verified, bind accepted"}}
	if _, err := env.Dir.Attribute(ctx, d.BaseDN, "objectClass"); err != nil {
		out = append(out, Finding{Status: Fail, Check: "directory_base_dn", Subject: d.BaseDN,
			Message: "the base DN cannot be read", Facts: map[string]any{"error": err.Error()},
			Fix: "set directory.base_dn to the domain's DN, like DC=example,DC=test"})
	}
	return out
}

// CheckClock measures the offset between kerbgate's clock and the KDC's, from the
// server time in the KDC's answer to an AS-REQ without pre-authentication (every KDC
// answers PREAUTH_REQUIRED with its stime).
func CheckClock(ctx context.Context, env *Env) Finding {
	realm, kdcAddr := env.Options.Realm, env.kdc()
	cfg := krbconfig.New()
	cfg.LibDefaults.DefaultRealm = realm
	req, err := messages.NewASReqForTGT(realm, cfg, types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "kerbgate-doctor-clock-probe"))
	if err != nil {
		return Finding{Status: Fail, Check: "clock_offset", Subject: kdcAddr, Message: "cannot build the probe", Facts: map[string]any{"error": err.Error()}}
	}
	b, err := req.Marshal()
	if err != nil {
		return Finding{Status: Fail, Check: "clock_offset", Subject: kdcAddr, Message: "cannot build the probe", Facts: map[string]any{"error": err.Error()}}
	}
	sent := env.now()
	reply, err := kdc.Exchange(ctx, kdcAddr, b, 5*time.Second)
	received := env.now()
	if err != nil {
		return Finding{Status: Fail, Check: "kdc_reachable", Subject: kdcAddr, Message: "the KDC does not answer over TCP",
			Facts: map[string]any{"error": err.Error()}, Fix: "check the KDC address (kerbgate doctor --kdc HOST:88) and that TCP port 88 is open from this host"}
	}
	var kerr messages.KRBError
	if err := kerr.Unmarshal(reply); err != nil {
		return Finding{Status: Warn, Check: "clock_offset", Subject: kdcAddr, Message: "the KDC's answer carries no error with a time", Facts: map[string]any{"error": err.Error()}}
	}
	mid := sent.Add(received.Sub(sent) / 2)
	offset := kerr.STime.Add(time.Duration(kerr.Susec) * time.Microsecond).Sub(mid)
	skew := env.Options.ClockSkew
	facts := map[string]any{"offset_seconds": math.Round(offset.Seconds()*10) / 10, "allowed_skew_seconds": skew.Seconds(),
		"kdc_time": kerr.STime.UTC().Format(time.RFC3339), "kdc_error": errorcode.Lookup(kerr.ErrorCode)}
	switch a := offset.Abs(); {
	case a > skew:
		return Finding{Status: Fail, Check: "clock_offset", Subject: kdcAddr, Facts: facts,
			Message: "kerbgate's clock differs from the KDC's by more than kerberos.clock_skew: every sign-in fails with clock_skew or ticket_not_yet_valid",
			Fix:     "synchronise this host's clock with the domain (chrony/ntpd pointed at a domain controller)"}
	case a > skew/2:
		return Finding{Status: Warn, Check: "clock_offset", Subject: kdcAddr, Facts: facts,
			Message: "the clock offset to the KDC is more than half the allowed skew",
			Fix:     "synchronise this host's clock with the domain (chrony/ntpd pointed at a domain controller)"}
	}
	return Finding{Status: OK, Check: "clock_offset", Subject: kdcAddr, Message: "clocks agree", Facts: facts}
}

// CheckRoundTrip gets a real ticket for each accepted SPN with kerbgate's own keys
// (signing in as the account that owns the SPN) and accepts it as a browser's would
// be: the end-to-end proof that keytab, SPN registration and enctypes agree.
func CheckRoundTrip(ctx context.Context, env *Env, kr *keyring.Keyring) []Finding {
	var out []Finding
	realm := env.Options.Realm
	kcfg, err := kdc.Client{Realm: realm, KDCs: []string{env.kdc()},
		Enctypes: []int32{kcrypto.AES256SHA1, kcrypto.AES128SHA1, kcrypto.RC4HMAC}}.Config()
	if err != nil {
		return []Finding{{Status: Fail, Check: "ticket_round_trip", Subject: realm, Message: "cannot configure the Kerberos client", Facts: map[string]any{"error": err.Error()}}}
	}
	for _, spn := range env.Options.SPNs {
		owners, err := env.Dir.SPNOwners(ctx, spn)
		if err != nil || len(owners) != 1 || !kr.HasPrincipal(spn, realm) {
			continue // reported by the SPN checks
		}
		account := owners[0].SAMAccountName
		f := roundTrip(ctx, env, kr, kcfg, spn, account)
		out = append(out, f)
	}
	return out
}

func roundTrip(ctx context.Context, env *Env, kr *keyring.Keyring, kcfg *krbconfig.Config, spn, account string) Finding {
	realm := env.Options.Realm
	fail := func(msg, fix string, err error) Finding {
		return Finding{Status: Fail, Check: "ticket_round_trip", Subject: spn, Message: msg,
			Facts: map[string]any{"account": account, "error": err.Error()}, Fix: fix}
	}
	// The SPN's keys are the account's keys (same password and salt): sign in as the
	// account with them.
	kt := keytab.New()
	for _, p := range env.Options.Keytabs {
		one, err := keytab.Load(p)
		if err != nil {
			return fail("cannot read the keytab", "", err)
		}
		for _, e := range one.Entries {
			if strings.EqualFold(strings.Join(e.Principal.Components, "/"), spn) {
				e.Principal.Components = []string{account}
				e.Principal.NumComponents = 1
				e.Principal.NameType = 1
				kt.Entries = append(kt.Entries, e)
			}
		}
	}
	cl := krbclient.NewWithKeytab(account, realm, kt, kcfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return fail("kerbgate's keys for the SPN do not sign in as its account (wrong password / kvno, or enctype the account does not have)",
			fmt.Sprintf("export a new keytab for %s from the account %s", spn, account), err)
	}
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		return fail("the KDC does not issue a ticket for the SPN", "check the SPN registration (see spn_registered)", err)
	}
	der, err := tkt.Marshal()
	if err != nil {
		return fail("cannot encode the ticket", "", err)
	}
	sk, err := kcrypto.NewKey(key.KeyType, key.KeyValue)
	if err != nil {
		return fail("the ticket's session key enctype is not supported", "", err)
	}
	cred := &initiator.Credential{Ticket: der, SessionKey: sk, Client: wire.PrincipalName{NameType: 1, Components: []string{account}}, ClientRealm: realm}
	ap, err := cred.APReq(initiator.Options{})
	if err != nil {
		return fail("cannot build the AP-REQ", "", err)
	}
	acc, err := acceptor.New(acceptor.Config{Keyring: kr, SPNs: env.Options.SPNs, Realm: realm,
		Enctypes: env.Options.Enctypes, ClockSkew: env.Options.ClockSkew, Replay: replay.NewMemory(1000)})
	if err != nil {
		return fail("cannot configure the acceptor", "", err)
	}
	res, err := acc.Accept(ctx, ap)
	if err != nil {
		return fail("kerbgate refuses a real ticket for its own SPN", "see the reason in the error (docs/reasons.md)", err)
	}
	return Finding{Status: OK, Check: "ticket_round_trip", Subject: spn,
		Message: "a real ticket for the SPN is accepted",
		Facts:   map[string]any{"account": account, "enctype": kcrypto.EnctypeName(res.EType), "kvno": res.KVNO}}
}

// CheckDNS resolves each SPN's host and reports CNAMEs: browsers canonicalise the
// name and ask for the ticket of the CNAME's target.
func CheckDNS(ctx context.Context, env *Env) []Finding {
	res := env.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	var out []Finding
	for _, spn := range env.Options.SPNs {
		_, host, _ := strings.Cut(spn, "/")
		host, _, _ = strings.Cut(host, ":")
		addrs, err := res.LookupHost(ctx, host)
		if err != nil {
			// The name may exist in DNS only as a CNAME whose target the server does
			// not resolve for us: report the CNAME if there is one.
			server := env.DNSServer
			if server == "" {
				server = systemNameserver()
			}
			if target, cerr := cnameOf(ctx, server, host); cerr == nil && target != "" {
				out = append(out, cnameFinding(host, target, server))
				continue
			}
			out = append(out, Finding{Status: Fail, Check: "dns", Subject: host, Message: "the SPN's host name does not resolve",
				Facts: map[string]any{"error": err.Error()}, Fix: fmt.Sprintf("add an A record for %s pointing at kerbgate (or its load balancer)", host)})
			continue
		}
		server := env.DNSServer
		if server == "" {
			server = systemNameserver()
		}
		target, err := cnameOf(ctx, server, host)
		if err == nil && target != "" && !strings.EqualFold(target, host) {
			out = append(out, cnameFinding(host, target, server))
			continue
		}
		out = append(out, Finding{Status: OK, Check: "dns", Subject: host, Message: "resolves to an address record",
			Facts: map[string]any{"addresses": strings.Join(addrs, ",")}})
	}
	return out
}

// CheckTokenSize estimates the user's Kerberos token from their group count
// (tokenGroups) against the header limit.
func CheckTokenSize(ctx context.Context, env *Env) Finding {
	upn, sam := env.User, env.User
	if !strings.Contains(upn, "@") {
		upn = ""
	} else {
		sam = ""
	}
	u, err := env.Dir.LookupName(ctx, upn, sam)
	if err != nil {
		return Finding{Status: Fail, Check: "token_size", Subject: env.User, Message: "the user is not found in the directory", Facts: map[string]any{"error": err.Error()}}
	}
	domain := u.SID[:strings.LastIndexByte(u.SID, '-')+1]
	inDomain := 0
	for _, g := range u.Groups {
		if strings.HasPrefix(g, domain) {
			inDomain++
		}
	}
	est := EstimateTokenBytes(inDomain, len(u.Groups)-inDomain)
	limit := env.Options.MaxTokenBytes
	facts := map[string]any{"groups": len(u.Groups), "estimated_token_bytes": est, "max_token_bytes": limit,
		"max_header_bytes": env.Options.MaxHeaderBytes}
	switch {
	case est > limit:
		return Finding{Status: Fail, Check: "token_size", Subject: env.User, Facts: facts,
			Message: "the user's Kerberos token is larger than kerberos.max_token_bytes: sign-in fails with token_too_large",
			Fix:     fmt.Sprintf("raise kerberos.max_token_bytes to at least %d (and any proxy's header limit), or reduce the user's group memberships", roundUp(est*5/4, 1024))}
	case est > limit*3/4:
		return Finding{Status: Warn, Check: "token_size", Subject: env.User, Facts: facts,
			Message: "the user's Kerberos token is close to kerberos.max_token_bytes",
			Fix:     fmt.Sprintf("raise kerberos.max_token_bytes to %d", roundUp(est*2, 1024))}
	}
	return Finding{Status: OK, Check: "token_size", Subject: env.User, Message: "the token fits", Facts: facts}
}

// EstimateTokenBytes estimates the base64 Negotiate token of a user in inDomain
// groups of their own domain and outside groups of other domains (or well-known,
// or SID history). Microsoft's sizing rule gives the PAC 8 bytes per group SID of
// the domain and 40 per other SID; the rest (ticket, PAC headers and signatures,
// authenticator, SPNEGO framing) is 1,420 bytes, fitted to this suite's real
// tokens: alice (2 groups) sends 1,908 base64 bytes, dave (130 groups) 3,284.
func EstimateTokenBytes(inDomain, outside int) int {
	raw := 1420 + 8*inDomain + 40*outside
	return (raw + 2) / 3 * 4
}

func roundUp(v, to int) int { return (v + to - 1) / to * to }

func cnameFinding(host, target, server string) Finding {
	return Finding{Status: Warn, Check: "dns_cname", Subject: host,
		Message: "the host is a CNAME: browsers ask for a ticket for the target's SPN, not this one",
		Facts:   map[string]any{"cname_target": target, "dns_server": server},
		Fix:     fmt.Sprintf("replace the CNAME by an A record for %s, or register HTTP/%s on the service account and add it to kerberos.spns", host, target)}
}

// systemNameserver is the first nameserver of /etc/resolv.conf.
func systemNameserver() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "127.0.0.1:53"
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			return net.JoinHostPort(f[1], "53")
		}
	}
	return "127.0.0.1:53"
}

// cnameOf asks server for host's A record and returns the CNAME target in the
// answer, if any ("" when host is an address record).
func cnameOf(ctx context.Context, server, host string) (string, error) {
	name, err := dnsmessage.NewName(strings.TrimSuffix(host, ".") + ".")
	if err != nil {
		return "", err
	}
	var id [2]byte
	rand.Read(id[:])
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: binary.BigEndian.Uint16(id[:]), RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	q, err := msg.Pack()
	if err != nil {
		return "", err
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(q); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	var resp dnsmessage.Message
	if err := resp.Unpack(buf[:n]); err != nil {
		return "", err
	}
	if resp.Header.ID != msg.Header.ID {
		return "", errors.New("DNS answer for another query")
	}
	for _, a := range resp.Answers {
		if cn, ok := a.Body.(*dnsmessage.CNAMEResource); ok {
			return strings.TrimSuffix(cn.CNAME.String(), "."), nil
		}
	}
	return "", nil
}

// CheckDelegation is the delegation dry run: for every published application with
// a kerberos section, S4U2Self then S4U2Proxy for env.User, each KDC refusal mapped
// to the AD setting at fault.
func CheckDelegation(ctx context.Context, env *Env) []Finding {
	d := env.Options.Delegation
	if d == nil || env.User == "" {
		return nil
	}
	kt, err := s4u.Keytab(d.Keytab)
	if err != nil {
		return []Finding{{Status: Fail, Check: "delegation", Subject: d.Keytab, Message: "the delegation keytab cannot be read", Facts: map[string]any{"error": err.Error()}}}
	}
	c, err := s4u.New(s4u.Config{Keytab: kt, Principal: d.Principal, Realm: env.Options.Realm, KDCs: d.KDCs})
	if err != nil {
		return []Finding{{Status: Fail, Check: "delegation", Subject: d.Principal, Message: err.Error()}}
	}
	user := s4u.User{Name: env.User, Enterprise: strings.Contains(env.User, "@")}
	var out []Finding
	for _, a := range env.Options.Apps {
		if a.UpstreamSPN == "" {
			continue
		}
		subject := a.ID + " → " + a.UpstreamSPN
		if _, err := c.Token(ctx, user, a.UpstreamSPN, s4u.SPNEGO); err != nil {
			f := Finding{Status: Fail, Check: "delegation", Subject: subject, Message: err.Error(),
				Facts: map[string]any{"service_account": d.Principal, "user": env.User}}
			var re *reason.Error
			if errors.As(err, &re) {
				f.Message = re.Detail
				f.Facts["reason"] = string(re.Code)
				for _, a := range re.Facts {
					f.Facts[a.Key] = a.Value.Any()
				}
				f.Fix = reason.Lookup(re.Code).Admin
			}
			out = append(out, f)
			continue
		}
		out = append(out, Finding{Status: OK, Check: "delegation", Subject: subject,
			Message: "S4U2Self and S4U2Proxy succeed for the test user", Facts: map[string]any{"service_account": d.Principal, "user": env.User}})
	}
	return out
}
