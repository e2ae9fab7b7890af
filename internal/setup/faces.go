package setup

import (
	"fmt"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/forwardauth"
	"github.com/kerbgate/kerbgate/internal/idheaders"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/oidcauth"
	"github.com/kerbgate/kerbgate/internal/oidcprovider"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/returnurl"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/sso"
)

// SSOPlan is the sso section, typed: the handoff's apps and browser session
// cookie. The apps' group policies resolve names through the directory, so Options
// makes them once it is connected.
type SSOPlan struct {
	CookieName        string
	BrowserSessionTTL time.Duration
	Apps              []SSOApp
}

// SSOApp is one app of the handoff: App (its Groups left to Options) and the groups
// it allows, SIDs or names.
type SSOApp struct {
	App           sso.App
	AllowedGroups []string
}

// SSO translates the sso section into the handoff's plan.
func SSO(c *config.Config) SSOPlan {
	p := SSOPlan{CookieName: c.SSO.CookieName, BrowserSessionTTL: c.SSO.BrowserSessionTTL}
	for _, a := range c.SSO.Apps {
		p.Apps = append(p.Apps, SSOApp{
			App: sso.App{
				ID: a.ID, RedirectURIs: a.RedirectURIs, SecretHash: a.SecretHash,
				TokenTTL: a.TokenTTL, SessionTTL: a.SessionTTL, RequireDirectory: a.RequireDirectory,
			},
			AllowedGroups: a.AllowedGroups,
		})
	}
	return p
}

// Options returns the handoff's options: its apps, with their group policies (names
// resolved through dir, nil without a directory section), the browser session
// cookie's name and lifetime. The caller adds what runs (the sign-in, the store,
// keys, logs, metrics).
func (p SSOPlan) Options(dir *directory.Directory) (sso.Options, error) {
	o := sso.Options{CookieName: p.CookieName, BrowserSessionTTL: p.BrowserSessionTTL}
	for _, a := range p.Apps {
		groups, err := signin.NewGroups(a.App.ID, a.AllowedGroups, resolver(dir))
		if err != nil {
			return sso.Options{}, err
		}
		app := a.App
		app.Groups = groups
		o.Apps = append(o.Apps, app)
	}
	return o, nil
}

// ProxyPlan is the proxy section, typed: the application proxy's apps, session
// cookie and realm, and the KDC client of constrained delegation. The apps'
// pre-authenticators and group policies need what runs (the Negotiate middleware,
// the cookie keys, the directory), so Options makes them.
type ProxyPlan struct {
	CookieName string
	SessionTTL time.Duration
	Realm      string
	Apps       []ProxyApp
	// Delegation is proxy.delegation; nil without a delegation principal.
	Delegation *Delegation
	// AssertionKeys is the OpenID Provider's signing keys file, which signs the
	// apps' identity assertions ("" without an oidc_provider section).
	AssertionKeys string
}

// ProxyApp is one app of the application proxy: App (its PreAuth and Groups left to
// Options), how its users sign in, and the groups it allows.
type ProxyApp struct {
	App     proxy.App
	PreAuth signin.Method
	// OIDC is the OpenID Connect flow's configuration with MethodOIDC (its
	// CookieKeys left to Options); nil otherwise.
	OIDC          *oidcauth.Config
	AllowedGroups []string
}

// Delegation is proxy.delegation: the KDC client kerbgate asks for delegated
// tickets.
type Delegation struct {
	// KeytabFile holds the service account's own keys (proxy.delegation.keytab).
	KeytabFile string
	// Client is the KDC client's configuration (principal, kerberos.realm, KDCs,
	// ticket cache size); the caller loads its Keytab from KeytabFile.
	Client s4u.Config
}

// Proxy translates the proxy section into the application proxy's plan: each app
// with its pre-authentication method (an oidc app with its flow's configuration,
// client secret read), its allowed groups and its Kerberos sign-in; the session
// cookie's name and lifetime; the realm; the delegation's KDC client.
func Proxy(c *config.Config) (ProxyPlan, error) {
	p := ProxyPlan{CookieName: c.Proxy.CookieName, SessionTTL: c.Proxy.SessionTTL, Realm: c.Kerberos.Realm}
	if c.OIDCProvider.Enabled {
		p.AssertionKeys = c.OIDCProvider.SigningKeysFile
	}
	for _, a := range c.Proxy.Apps {
		app := ProxyApp{
			App: proxy.App{
				ID: a.ID, Host: a.Host, PathPrefix: a.PathPrefix, Upstream: a.Upstream, UpstreamCAFile: a.UpstreamCAFile,
				PreserveHost: a.PreserveHost, Timeout: a.Timeout,
			},
			AllowedGroups: a.AllowedGroups,
		}
		if len(a.Headers) > 0 || a.Assertion != nil {
			app.App.Headers = headerPolicy(a.IdentityHeaders, c.OIDCProvider.Issuer)
		}
		switch a.PreAuth {
		case "iwa":
			app.PreAuth = signin.MethodIWA
		case "oidc":
			oc, err := OIDC(c, a)
			if err != nil {
				return ProxyPlan{}, err
			}
			app.PreAuth, app.OIDC = signin.MethodOIDC, &oc
		case "passthrough":
			app.PreAuth = signin.MethodPassthrough
		default:
			return ProxyPlan{}, fmt.Errorf("proxy.apps %s: pre_auth %q", a.ID, a.PreAuth)
		}
		if k := a.Kerberos; k != nil {
			app.App.Kerberos = &proxy.Kerberos{
				SPN: k.SPN, LoginIdentity: loginIdentities[k.LoginIdentity], AlternateUPNAttribute: k.AlternateUPNAttribute,
				TokenFormat: tokenFormats[k.TokenFormat], Send: sendModes[k.Send], MaxReplayBody: k.MaxReplayBody,
				MapForeignRealms: k.MapForeignRealms,
			}
		}
		p.Apps = append(p.Apps, app)
	}
	if d := c.Proxy.Delegation; d.Principal != "" {
		p.Delegation = &Delegation{KeytabFile: d.Keytab, Client: s4u.Config{
			Principal: d.Principal, Realm: c.Kerberos.Realm, KDCs: d.KDCs, CacheSize: d.TicketCacheSize,
		}}
	}
	return p, nil
}

// Options returns the application proxy's options: each app with its
// pre-authenticator (iwa through the Negotiate middleware signIn, oidc with its own
// flow sealing state with cookieKeys, passthrough) and its group policy (names
// resolved through dir); the session cookie's name and lifetime; the realm. The
// caller adds what runs (the delegator, the store, keys, logs, metrics).
func (p ProxyPlan) Options(signIn signin.PreAuthenticator, dir *directory.Directory, cookieKeys *keyset.Set) (proxy.Options, error) {
	o := proxy.Options{CookieName: p.CookieName, SessionTTL: p.SessionTTL, Realm: p.Realm}
	needKeys := false
	for _, a := range p.Apps {
		needKeys = needKeys || (a.App.Headers != nil && a.App.Headers.Assertion != nil)
	}
	keys, err := loadAssertionKeys(p.AssertionKeys, needKeys)
	if err != nil {
		return o, err
	}
	for _, a := range p.Apps {
		app := a.App
		if app.Headers != nil {
			if app.Headers, err = withKeys(app.Headers, keys); err != nil {
				return proxy.Options{}, fmt.Errorf("proxy.apps %s: %w", app.ID, err)
			}
		}
		switch a.PreAuth {
		case signin.MethodIWA:
			app.PreAuth = signIn
		case signin.MethodOIDC:
			oc := *a.OIDC
			oc.CookieKeys = cookieKeys
			flow, err := oidcauth.New(oc)
			if err != nil {
				return proxy.Options{}, fmt.Errorf("proxy.apps %s: %w", app.ID, err)
			}
			app.PreAuth = signin.OIDC{Flow: flow}
		case signin.MethodPassthrough:
			app.PreAuth = signin.Passthrough{}
		default:
			return proxy.Options{}, fmt.Errorf("proxy.apps %s: pre_auth %s", app.ID, a.PreAuth)
		}
		if len(a.AllowedGroups) > 0 {
			groups, err := signin.NewGroups(app.ID, a.AllowedGroups, resolver(dir))
			if err != nil {
				return proxy.Options{}, err
			}
			app.Groups = groups
		}
		o.Apps = append(o.Apps, app)
	}
	return o, nil
}

// OIDC translates proxy.apps[].oidc into the configuration of the app's OpenID
// Connect flow, its client secret read; the cookie keys are the caller's. Its
// callback is under the app's path prefix; its state cookie is Secure whenever
// kerbgate is reached over https (a tls section, or an https external_url).
func OIDC(c *config.Config, a config.ProxyApp) (oidcauth.Config, error) {
	secret, err := a.OIDC.Secret()
	if err != nil {
		return oidcauth.Config{}, fmt.Errorf("proxy.apps %s: %w", a.ID, err)
	}
	return oidcauth.Config{
		Issuer: a.OIDC.Issuer, ClientID: a.OIDC.ClientID, ClientSecret: secret,
		UsernameClaim: a.OIDC.UsernameClaim, Scopes: a.OIDC.Scopes,
		CallbackPath: strings.TrimSuffix(a.PathPrefix, "/") + "/_kerbgate/oidc/callback",
		Realm:        c.Kerberos.Realm,
		Secure:       c.TLS.Enabled || (c.Listen.ExternalURL != nil && c.Listen.ExternalURL.Scheme == "https"),
	}, nil
}

// The configuration file's words for the proxy's enums (config has checked them).
var (
	loginIdentities = map[string]proxy.LoginIdentity{
		"upn": proxy.LoginUPN, "alternate_upn": proxy.LoginAlternateUPN, "upn_user_part": proxy.LoginUPNUserPart,
		"alternate_upn_user_part": proxy.LoginAlternateUPNUserPart, "sam_account_name": proxy.LoginSAMAccountName,
	}
	tokenFormats = map[string]s4u.Format{"spnego": s4u.SPNEGO, "kerberos": s4u.RawKerberos}
	sendModes    = map[string]proxy.SendMode{"always": proxy.SendAlways, "on_401": proxy.SendOn401}
)

// GroupFilter translates a group_names setting into the filter a face applies.
func GroupFilter(g config.GroupNames) signin.GroupFilter {
	return signin.GroupFilter{Include: g.Include, Prefixes: g.Prefixes, Max: g.Max}
}

// resolver is dir as a group resolver: nil, not a typed nil, without a directory.
func resolver(dir *directory.Directory) signin.GroupResolver {
	if dir == nil {
		return nil
	}
	return dir
}

// OIDCProviderPlan is the oidc_provider section, typed; nil without one. The
// clients' group policies resolve names through the directory, so Options makes
// them once it is connected.
type OIDCProviderPlan struct {
	Issuer                                      string
	SigningKeysFile                             string
	IDTokenTTL, AccessTokenTTL, RefreshTokenTTL time.Duration
	Clients                                     []OIDCClient
}

// OIDCClient is one client of the provider: Client (its Groups left to Options) and
// the groups it allows.
type OIDCClient struct {
	Client        oidcprovider.Client
	AllowedGroups []string
}

// OIDCProvider translates the oidc_provider section; nil without one.
func OIDCProvider(c *config.Config) *OIDCProviderPlan {
	o := c.OIDCProvider
	if !o.Enabled {
		return nil
	}
	p := &OIDCProviderPlan{Issuer: o.Issuer, SigningKeysFile: o.SigningKeysFile,
		IDTokenTTL: o.IDTokenTTL, AccessTokenTTL: o.AccessTokenTTL, RefreshTokenTTL: o.RefreshTokenTTL}
	for _, cl := range o.Clients {
		p.Clients = append(p.Clients, OIDCClient{
			Client: oidcprovider.Client{
				ID: cl.ID, SecretHash: cl.SecretHash, RedirectURIs: cl.RedirectURIs,
				PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs, Scopes: cl.Scopes,
				RequireDirectory: cl.RequireDirectory, GroupNames: GroupFilter(cl.GroupNames),
			},
			AllowedGroups: cl.AllowedGroups,
		})
	}
	return p
}

// Options returns the provider's options: the issuer, the signing keys read from
// their file, the lifetimes and the clients with their group policies (names
// resolved through dir). The caller adds what runs.
func (p *OIDCProviderPlan) Options(dir *directory.Directory) (oidcprovider.Options, error) {
	keys, err := signingkeys.Load(p.SigningKeysFile)
	if err != nil {
		return oidcprovider.Options{}, fmt.Errorf("oidc_provider.signing_keys_file: %w", err)
	}
	o := oidcprovider.Options{Issuer: p.Issuer, SigningKeys: keys.Keys(), IDTokenTTL: p.IDTokenTTL, AccessTokenTTL: p.AccessTokenTTL, RefreshTokenTTL: p.RefreshTokenTTL}
	for _, c := range p.Clients {
		groups, err := signin.NewGroups(c.Client.ID, c.AllowedGroups, resolver(dir))
		if err != nil {
			return oidcprovider.Options{}, err
		}
		cl := c.Client
		cl.Groups = groups
		o.Clients = append(o.Clients, cl)
	}
	return o, nil
}

// ForwardAuthPlan is the forward_auth section, typed; nil without one. The hosts'
// group policies resolve names through the directory and the assertions need the
// signing keys, so Options makes them.
type ForwardAuthPlan struct {
	Options forwardauth.Options // Hosts, groups, sign-in, frontend, store... left to Build
	Hosts   []ForwardAuthHost
	// RequireDirectory confirms accounts at sign-in.
	RequireDirectory bool
	// Keys is the OpenID Provider's signing keys file and Issuer its issuer: the
	// assertions' (empty without an oidc_provider section).
	Keys, Issuer string
}

// ForwardAuthHost is one host: Host (its Groups left to Build; its Headers' assertion
// keys too), and the groups it allows.
type ForwardAuthHost struct {
	Host          forwardauth.Host
	AllowedGroups []string
}

// ForwardAuth translates the forward_auth section; nil without one.
func ForwardAuth(c *config.Config) *ForwardAuthPlan {
	fa := c.ForwardAuth
	if !fa.Enabled {
		return nil
	}
	p := &ForwardAuthPlan{
		Options: forwardauth.Options{
			CookieName: fa.CookieName, CookieDomain: fa.CookieDomain, SessionTTL: fa.SessionTTL,
			SessionCacheTTL: fa.SessionCacheTTL, ReturnURLs: returnurl.New(fa.ReturnDomains), SignInURL: fa.SignInURL,
		},
		RequireDirectory: fa.RequireDirectory,
	}
	if c.OIDCProvider.Enabled {
		p.Keys, p.Issuer = c.OIDCProvider.SigningKeysFile, c.OIDCProvider.Issuer
	}
	for _, h := range fa.Hosts {
		si := forwardauth.SignInNegotiate
		if h.SignIn == "redirect" {
			si = forwardauth.SignInRedirect
		}
		p.Hosts = append(p.Hosts, ForwardAuthHost{
			Host:          forwardauth.Host{Name: h.Host, SignIn: si, Headers: headerPolicy(h.IdentityHeaders, p.Issuer)},
			AllowedGroups: h.AllowedGroups,
		})
	}
	return p
}

// Build returns the face's options: the hosts with their group policies (names
// resolved through dir) and header policies (assertions signed with the provider's
// keys, loaded here). The caller adds what runs (sign-in, directory, store, keys,
// frontend, logs, metrics).
func (p *ForwardAuthPlan) Build(dir *directory.Directory) (forwardauth.Options, error) {
	o := p.Options
	o.Hosts = nil
	keys, err := loadAssertionKeys(p.Keys, p.hasAssertion())
	if err != nil {
		return o, err
	}
	for _, h := range p.Hosts {
		host := h.Host
		if len(h.AllowedGroups) > 0 {
			if host.Groups, err = signin.NewGroups(host.Name, h.AllowedGroups, resolver(dir)); err != nil {
				return o, err
			}
		}
		if host.Headers, err = withKeys(host.Headers, keys); err != nil {
			return o, fmt.Errorf("forward_auth.hosts %s: %w", host.Name, err)
		}
		o.Hosts = append(o.Hosts, host)
	}
	return o, nil
}

func (p *ForwardAuthPlan) hasAssertion() bool {
	for _, h := range p.Hosts {
		if h.Host.Headers.Assertion != nil {
			return true
		}
	}
	return false
}

// loadAssertionKeys loads the OpenID Provider's signing keys when an assertion needs
// them.
func loadAssertionKeys(path string, needed bool) (*signingkeys.Set, error) {
	if !needed {
		return nil, nil
	}
	keys, err := signingkeys.Load(path)
	if err != nil {
		return nil, fmt.Errorf("oidc_provider.signing_keys_file (signs the identity assertions): %w", err)
	}
	return keys, nil
}

// headerPolicy translates identity headers into an idheaders.Policy whose assertion
// names issuer; withKeys adds the signing keys and prepares it.
func headerPolicy(ih config.IdentityHeaders, issuer string) *idheaders.Policy {
	p := &idheaders.Policy{Groups: signin.GroupFilter{Include: ih.GroupNames.Include, Prefixes: ih.GroupNames.Prefixes, Max: ih.GroupNames.Max}}
	for _, m := range ih.Headers {
		c, _ := idheaders.ParseClaim(m.Claim) // config checked the names
		p.Headers = append(p.Headers, idheaders.Mapping{Claim: c, Header: m.Header})
	}
	if a := ih.Assertion; a != nil {
		p.Assertion = &idheaders.Assertion{Header: a.Header, TTL: a.TTL, Issuer: issuer}
	}
	return p
}

// withKeys returns a prepared copy of p, its assertion (if any) signed with keys.
func withKeys(p *idheaders.Policy, keys *signingkeys.Set) (*idheaders.Policy, error) {
	c := *p
	if a := p.Assertion; a != nil {
		c.Assertion = &idheaders.Assertion{Header: a.Header, TTL: a.TTL, Issuer: a.Issuer, Keys: keys}
	}
	return &c, c.Prepare()
}
