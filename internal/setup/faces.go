package setup

import (
	"fmt"
	"strings"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/oidcauth"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/sso"
)

// SSO translates the sso section into the handoff's options: its apps, with their
// group policies (names resolved through dir, nil without a directory section), the
// browser session cookie's name and lifetime. The caller adds what runs (the sign-in,
// the store, keys, logs, metrics).
func SSO(c *config.Config, dir *directory.Directory) (sso.Options, error) {
	o := sso.Options{CookieName: c.SSO.CookieName, BrowserSessionTTL: c.SSO.BrowserSessionTTL}
	for _, a := range c.SSO.Apps {
		groups, err := signin.NewGroups(a.ID, a.AllowedGroups, resolver(dir))
		if err != nil {
			return sso.Options{}, err
		}
		o.Apps = append(o.Apps, sso.App{
			ID: a.ID, RedirectURIs: a.RedirectURIs, SecretHash: a.SecretHash,
			TokenTTL: a.TokenTTL, SessionTTL: a.SessionTTL, Groups: groups,
			RequireDirectory: a.RequireDirectory,
		})
	}
	return o, nil
}

// Proxy translates the proxy section into the application proxy's options: each app
// with its pre-authenticator (iwa through the Negotiate middleware signIn, oidc with
// its own flow sealing state with cookieKeys, passthrough), its group policy (names
// resolved through dir) and its Kerberos sign-in; the session cookie's name and
// lifetime; the realm. The caller adds what runs (the delegator, the store, keys,
// logs, metrics).
func Proxy(c *config.Config, signIn signin.PreAuthenticator, dir *directory.Directory, cookieKeys *keyset.Set) (proxy.Options, error) {
	o := proxy.Options{CookieName: c.Proxy.CookieName, SessionTTL: c.Proxy.SessionTTL, Realm: c.Kerberos.Realm}
	for _, a := range c.Proxy.Apps {
		app := proxy.App{
			ID: a.ID, Host: a.Host, PathPrefix: a.PathPrefix, Upstream: a.Upstream, UpstreamCAFile: a.UpstreamCAFile,
			PreserveHost: a.PreserveHost, Timeout: a.Timeout,
		}
		switch a.PreAuth {
		case "iwa":
			app.PreAuth = signIn
		case "oidc":
			flow, err := OIDC(c, a, cookieKeys)
			if err != nil {
				return proxy.Options{}, err
			}
			app.PreAuth = flow
		case "passthrough":
			app.PreAuth = signin.Passthrough{}
		default:
			return proxy.Options{}, fmt.Errorf("proxy.apps %s: pre_auth %q", a.ID, a.PreAuth)
		}
		if len(a.AllowedGroups) > 0 {
			groups, err := signin.NewGroups(a.ID, a.AllowedGroups, resolver(dir))
			if err != nil {
				return proxy.Options{}, err
			}
			app.Groups = groups
		}
		if k := a.Kerberos; k != nil {
			app.Kerberos = &proxy.Kerberos{
				SPN: k.SPN, LoginIdentity: loginIdentities[k.LoginIdentity], AlternateUPNAttribute: k.AlternateUPNAttribute,
				TokenFormat: tokenFormats[k.TokenFormat], Send: sendModes[k.Send], MaxReplayBody: k.MaxReplayBody,
				MapForeignRealms: k.MapForeignRealms,
			}
		}
		o.Apps = append(o.Apps, app)
	}
	return o, nil
}

// OIDC translates proxy.apps[].oidc into the app's OpenID Connect pre-authenticator.
// Its callback is under the app's path prefix; its state cookie is Secure whenever
// kerbgate is reached over https (a tls section, or an https external_url).
func OIDC(c *config.Config, a config.ProxyApp, cookieKeys *keyset.Set) (signin.OIDC, error) {
	secret, err := a.OIDC.Secret()
	if err != nil {
		return signin.OIDC{}, fmt.Errorf("proxy.apps %s: %w", a.ID, err)
	}
	flow, err := oidcauth.New(oidcauth.Config{
		Issuer: a.OIDC.Issuer, ClientID: a.OIDC.ClientID, ClientSecret: secret,
		UsernameClaim: a.OIDC.UsernameClaim, Scopes: a.OIDC.Scopes,
		CallbackPath: strings.TrimSuffix(a.PathPrefix, "/") + "/_kerbgate/oidc/callback",
		Realm:        c.Kerberos.Realm, CookieKeys: cookieKeys,
		Secure: c.TLS.Enabled || (c.Listen.ExternalURL != nil && c.Listen.ExternalURL.Scheme == "https"),
	})
	if err != nil {
		return signin.OIDC{}, fmt.Errorf("proxy.apps %s: %w", a.ID, err)
	}
	return signin.OIDC{Flow: flow}, nil
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

// resolver is dir as a group resolver: nil, not a typed nil, without a directory.
func resolver(dir *directory.Directory) signin.GroupResolver {
	if dir == nil {
		return nil
	}
	return dir
}
