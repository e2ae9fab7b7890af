package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/oidcprovider"
)

// boundNegotiate answers kerbgate's Negotiate challenges with tokens the Go
// initiator builds from ccache with the options opts gives at that moment (channel
// bindings or none), as a Windows browser (bindings) or Chromium on Linux (none).
type boundNegotiate struct {
	ccache string
	opts   func() initiator.Options
	base   http.RoundTripper
}

func (n boundNegotiate) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.Header.Get("Authorization") != "" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Negotiate") {
		return resp, err
	}
	resp.Body.Close()
	h, err := tryNegotiateHeader(n.ccache, "HTTP/sso.example.test", n.opts())
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", h)
	return n.base.RoundTrip(r2)
}

// TestOIDCProviderACRSaysWhatTheSignInProved: acr names what kerbgate verified of the
// sign-in behind the ID token: a Kerberos ticket (the SAML Kerberos class), or a
// Kerberos ticket whose authenticator was bound to the TLS channel kerbgate served
// (Extended Protection's channel binding verified). acr_values asking for the
// channel-bound class are honoured with a fresh Negotiate when the browser session's
// sign-in was not bound; a browser that cannot bind still gets its code, with the
// acr it achieved (acr_values is voluntary, OIDC Core §3.1.2.1), as does a request
// for a class kerbgate does not know. amr is ["kerberos"] throughout; a refreshed ID
// token keeps the acr.
func TestOIDCProviderACRSaysWhatTheSignInProved(t *testing.T) {
	w := newEPAWorld(t)
	cfg, issuer := opConfig(t, w.r)
	issuer = strings.Replace(issuer, "http://", "https://", 1)
	cfg.OIDCProvider.Issuer = issuer
	cfg.TLS = config.TLS{Enabled: true, CertFile: w.kg.CertFile, KeyFile: w.kg.KeyFile}
	cfg.EPA.Policy = epa.Policy{TokenChecking: epa.Allow, SPNs: cfg.Kerberos.SPNs}
	g := startGateway(t, cfg)

	pool := x509.NewCertPool()
	pool.AddCert(w.ca.Cert)
	tlsTransport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: tlsTransport})
	rp := newOPRP(t, ctx, issuer, "rp", demoSecret)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")

	served := epa.BindingHash(g.srv.TLS.Current().Binding)
	var bind atomic.Bool
	var challenges atomic.Int64
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 20 * time.Second,
			Transport: boundNegotiate{ccache: w.alice, base: challengeCounter{n: &challenges, base: tlsTransport},
				opts: func() initiator.Options {
					if !bind.Load() {
						return initiator.Options{}
					}
					return initiator.Options{AuthorizationData: cbtSignal(t), ChannelBindingHash: served[:]}
				}},
			CheckRedirect: func(req *http.Request, _ []*http.Request) error {
				if strings.HasPrefix(req.URL.String(), opRPCallback) {
					return http.ErrUseLastResponse
				}
				return nil
			}}
	}
	b := browser()
	step := func(what string, fresh bool, wantACR string, extra ...oauth2.AuthCodeOption) *oauth2.Token {
		t.Helper()
		before := challenges.Load()
		tok, c := codeFlow(t, ctx, rp, b, extra...)
		if c.ACR != wantACR || !slices.Equal(c.AMR, []string{"kerberos"}) {
			t.Errorf("%s: acr %q amr %v, want acr %q amr [kerberos]", what, c.ACR, c.AMR, wantACR)
		}
		if negotiated := challenges.Load() > before; negotiated != fresh {
			t.Errorf("%s: fresh Negotiate %v, want %v", what, negotiated, fresh)
		}
		return tok
	}
	bound := param("acr_values", oidcprovider.ACRKerberosChannelBound)

	// A browser that sends no channel bindings (Chromium and curl on Linux).
	step("unbound sign-in", true, oidcprovider.ACRKerberos)
	// Asked for the channel-bound class: the session's sign-in was not bound, so a
	// fresh Negotiate; this time the browser binds.
	bind.Store(true)
	step("acr_values channel-bound over an unbound session", true, oidcprovider.ACRKerberosChannelBound, bound)
	tok := step("acr_values channel-bound over a bound session", false, oidcprovider.ACRKerberosChannelBound, bound)
	step("acr_values of a class kerbgate does not know", false, oidcprovider.ACRKerberosChannelBound, param("acr_values", "urn:example:mfa"))
	step("acr_values listing the Kerberos class first", false, oidcprovider.ACRKerberos,
		param("acr_values", oidcprovider.ACRKerberos+" "+oidcprovider.ACRKerberosChannelBound))
	refreshed, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if c := verifiedClaims(t, ctx, rp, refreshed); c.ACR != oidcprovider.ACRKerberosChannelBound || c.AuthTime == 0 {
		t.Errorf("refreshed ID token: acr %q auth_time %d", c.ACR, c.AuthTime)
	}
	// A browser that cannot bind, asked for the channel-bound class: the code, with
	// the acr it achieved.
	bind.Store(false)
	b = browser()
	step("acr_values channel-bound, a browser that cannot bind", true, oidcprovider.ACRKerberos, bound)

	if m := discovery(t, rp); !slices.Equal(m.ACRValues, []string{oidcprovider.ACRKerberos, oidcprovider.ACRKerberosChannelBound}) {
		t.Errorf("acr_values_supported %v", m.ACRValues)
	}
}
