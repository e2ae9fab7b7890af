package server

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/krbtest"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/testrealm"
)

// Issue 13, item 2: users of another realm must not become the local user with the
// same name. A user of a trusted forest reaches kerbgate with a service ticket from
// our own KDC (the referral ends there) whose client realm is the user's realm; no
// second realm exists in the test domain, so such a ticket is forged here with the
// gateway's real service key (read from the realm's keytab, as the gateway reads it)
// and a PAC signed with that key. Everything else is real: the gateway, the
// directory over LDAPS and the KDC.

const (
	partnerRealm     = "PARTNER.TEST"
	partnerDomainSID = "S-1-5-21-1-2-3"
)

// partnerAdminHeader is the Negotiate header of administrator@PARTNER.TEST (RID
// 500 of the partner domain, Domain Users and Domain Admins there) for
// HTTP/sso.example.test.
func partnerAdminHeader(t *testing.T, r *testrealm.Realm) string {
	t.Helper()
	kr, err := keyring.Load(r.GatewayKeytab)
	if err != nil {
		t.Fatal(err)
	}
	var key *kcrypto.Key
	var kvno uint32
	for _, e := range kr.Entries() {
		if e.Principal == testrealm.GatewaySPN && e.EType == kcrypto.AES256SHA1 && e.KVNO >= kvno {
			key, kvno = e.Key, e.KVNO
		}
	}
	if key == nil {
		t.Fatalf("no AES256 key for %s in %s", testrealm.GatewaySPN, r.GatewayKeytab)
	}
	authTime := time.Now().Add(-time.Minute).Truncate(time.Second)
	p, err := krbtest.PAC(krbtest.PACOptions{
		UserName: "administrator", FullName: "Partner Administrator", Domain: "PARTNER", DNSDomain: "partner.test",
		UPN: "administrator@partner.test", DomainSID: partnerDomainSID, UserRID: 500, GroupRIDs: []uint32{512, 513},
		AuthTime: authTime,
	}, key, krbtest.RandomKey(kcrypto.AES256SHA1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := krbtest.Forge(krbtest.TicketSpec{ServiceKey: key, KVNO: kvno, SPN: strings.Split(testrealm.GatewaySPN, "/"),
		Realm: "EXAMPLE.TEST", Client: []string{"administrator"}, CRealm: partnerRealm, AuthTime: authTime, PAC: p})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := c.APReq(initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gss := spnego.WrapKerberos(spnego.OIDKerberos, [2]byte{0x01, 0x00}, ap)
	return "Negotiate " + base64.StdEncoding.EncodeToString(spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, gss))
}

// do sends a GET to host/path on the gateway with an Authorization header and does
// not follow redirects.
func (g *gateway) do(host, path, authorization string) *http.Response {
	g.t.Helper()
	resp, _ := g.fetch(host, path, authorization)
	return resp
}

// fetch is do, and returns the body too.
func (g *gateway) fetch(host, path, authorization string) (*http.Response, string) {
	g.t.Helper()
	req, err := http.NewRequest("GET", g.url(host, path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Without kerberos.trusted_realms, a user of another realm is refused at sign-in.
func TestForeignRealmUserIsRefusedAtSignIn(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	g := startGateway(t, baseConfig(r))
	resp := g.do("sso.example.test", "/whoami", partnerAdminHeader(t, r))
	wantReason(t, resp, 403, "foreign_realm")
	if l := g.logs.String(); !strings.Contains(l, `"client_realm":"PARTNER.TEST"`) || !strings.Contains(l, "kerberos.trusted_realms") {
		t.Errorf("log does not name the realm and the setting:\n%s", grepLines(l, "foreign_realm"))
	}
	// Alice of the gateway's own realm still signs in.
	if c := g.curl(r, r.Kinit(t, "alice"), "", g.url("sso.example.test", "/whoami")); c.status != 200 {
		t.Fatalf("alice: %d %s", c.status, c.headers.Get("Kerbgate-Reason"))
	}
}

// With the partner realm trusted, its administrator signs in as who they are, and
// the handoff's directory check looks them up by SID: the local Administrator's
// account (same name) is not theirs, so no token is issued and no local group is
// handed to the application.
func TestHandoffForeignRealmUserDoesNotGetLocalAccount(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	cfg := handoffConfig(t, r, "http://app.example.test:9")
	cfg.Kerberos.TrustedRealms = []string{partnerRealm}
	g := startGateway(t, cfg)
	h := partnerAdminHeader(t, r)

	who := g.get("/whoami", h)
	var id struct {
		Principal string   `json:"user"`
		SID       string   `json:"sid"`
		Realm     string   `json:"realm"`
		Groups    []string `json:"groups"`
		Names     []string `json:"group_names"`
	}
	json.NewDecoder(who.Body).Decode(&id)
	who.Body.Close()
	if who.StatusCode != 200 || id.Principal != "administrator@PARTNER.TEST" || id.SID != partnerDomainSID+"-500" || id.Realm != partnerRealm {
		t.Fatalf("whoami of the trusted partner: %d %+v", who.StatusCode, id)
	}
	// Names go by the whole SID: the partner's Domain Admins (its -512) is not ours.
	if len(id.Names) != 0 {
		t.Errorf("the partner's groups %v were named %q by the local directory", id.Groups, id.Names)
	}

	resp := g.do("sso.example.test", "/sso/login?app=demo&state=x", partnerAdminHeader(t, r))
	if resp.StatusCode == http.StatusFound {
		loc, _ := url.Parse(resp.Header.Get("Location"))
		_, body := g.redeem("demo", demoSecret, loc.Query().Get("ssoToken"))
		var got sso.Response
		json.Unmarshal(body, &got)
		local := r.SID(t, "Administrator")
		t.Fatalf("administrator@PARTNER.TEST was handed off as %s (SID %s, local Administrator %s), groups %v (local Domain Admins: %v)",
			got.Identity.Principal, got.Identity.SID, local, got.Identity.Groups,
			slices.Contains(got.Identity.Groups, local[:strings.LastIndexByte(local, '-')]+"-512"))
	}
	wantReason(t, resp, 403, "user_not_found")
	if l := g.logs.String(); !strings.Contains(l, `"sid":"`+partnerDomainSID+`-500"`) {
		t.Errorf("log does not name the SID looked up:\n%s", grepLines(l, "user_not_found"))
	}
}

// A name-only login identity (here sam_account_name) of a partner user is refused
// with a named reason, and the KDC is never asked to delegate: kerbgate would
// otherwise delegate as the local account with the same name.
func TestProxyForeignRealmNameOnlyLoginIdentityIsRefused(t *testing.T) {
	r := testrealm.Require(t)
	r.LockGateway(t, false)
	apache := r.StartApache(t, testrealm.ApacheOptions{})
	cfg := kcdConfig(t, r, apache.URL, "svc-gw", r.GatewayAccountKeytab)
	cfg.Kerberos.TrustedRealms = []string{partnerRealm}
	g := startGateway(t, cfg)
	for _, app := range []string{"sam", "upnpart"} {
		resp, body := g.fetch("sso.example.test", "/apps/"+app+"/whoami", partnerAdminHeader(t, r))
		if resp.StatusCode != 403 || resp.Header.Get("Kerbgate-Reason") != "login_identity_foreign_realm" {
			t.Fatalf("%s: got %d %q, want 403 login_identity_foreign_realm; upstream saw:\n%s", app, resp.StatusCode, resp.Header.Get("Kerbgate-Reason"), body)
		}
	}
	if k := kdcRequests(t, g); k["s4u2self"] != 0 || k["s4u2proxy"] != 0 {
		t.Errorf("the KDC was asked to delegate: %v", k)
	}
	if l := g.logs.String(); !strings.Contains(l, "map_foreign_realms") {
		t.Errorf("log does not name the setting:\n%s", grepLines(l, "login_identity_foreign_realm"))
	}
}
