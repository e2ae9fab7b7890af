package setup

import (
	"net/netip"
	"net/url"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/spncheck"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Plan is a whole configuration translated once into the typed options of every
// mechanism and face, in the order package server builds them. It holds no config
// type: what runs (the keyring, the replay cache, the directory client, the cookie
// keys, the sign-in middleware, the clock, logs and metrics) is left for the caller
// to fill in, field by field, or through the Options methods of the faces' plans.
type Plan struct {
	// ExposeReasons is log.expose_reasons: refusals carry their reason to the client.
	ExposeReasons bool
	// Keytabs are the kerberos section's keytabs.
	Keytabs Keytabs
	// Store is the store section; Log and Now are the caller's.
	Store store.Options
	// Acceptor is the acceptor's configuration; Keyring, Replay and Now are the
	// caller's. Its Realm and SPNs are those kerbgate serves.
	Acceptor acceptor.Config
	// TLS is the certificate kerbgate serves; nil without a tls section.
	TLS *TLS
	// EPA is the epa section's policy, validated.
	EPA epa.Policy
	// MaxTokenBytes is kerberos.max_token_bytes, the bound on a Negotiate token.
	MaxTokenBytes int
	// Directory is the directory section, its bind password read; nil without one.
	Directory *directory.Config
	// SPNCheck is the start-up check (kerberos.spn_check); Keys, Directory and Log
	// are the caller's.
	SPNCheck spncheck.Options
	// CookieKeys is the session cookies' key file.
	CookieKeys CookieKeyFile
	// SSO is the handoff.
	SSO SSOPlan
	// Proxy is the application proxy; it runs when it has apps.
	Proxy ProxyPlan
	// OIDCProvider is the OpenID Provider; nil without an oidc_provider section.
	OIDCProvider *OIDCProviderPlan
	// Password is the password fallback; nil without a password_signin section.
	Password *PasswordPlan
	// ForwardAuth is the reverse proxies' auth endpoint; nil without a
	// forward_auth section.
	ForwardAuth *ForwardAuthPlan
	// DebugTokenFile is log.debug_token_file, the bearer token of
	// /debug/last-failures.
	DebugTokenFile string
	// Frontend is what tells kerbgate how clients reach it.
	Frontend Frontend
	// Listen is the HTTP listener's limits.
	Listen Listen
}

// Keytabs are the keytab files, how long keys dropped from them stay usable, and how
// often to look for changed files (0: never).
type Keytabs struct {
	Paths          []string
	Retain         time.Duration
	ReloadInterval time.Duration
}

// Watcher returns a watcher of the keytabs on the clock now (time.Now when nil); its
// Set and OnError hooks are the caller's.
func (k Keytabs) Watcher(now func() time.Time) *keyring.Watcher {
	return &keyring.Watcher{Paths: k.Paths, Retain: k.Retain, Now: now}
}

// CookieKeyFile is the file of the session cookies' keys; Create says it may be made
// on first start.
type CookieKeyFile struct {
	Path   string
	Create bool
}

// Frontend is listen.external_url (nil when unset) and listen.trusted_proxies.
type Frontend struct {
	ExternalURL    *url.URL
	TrustedProxies []netip.Prefix
}

// Listen is the HTTP server's limits (listen.read_header_timeout,
// listen.max_header_bytes) and its drain on shutdown (listen.drain_delay,
// listen.shutdown_timeout).
type Listen struct {
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
	// DrainDelay is how long /readyz fails before the listener closes.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for requests in flight once it has closed.
	ShutdownTimeout time.Duration
}

// NewPlan translates a validated configuration into a Plan. It reads the secrets the
// configuration names (the Redis and directory bind passwords, the OpenID clients'
// secrets, the Redis TLS files) and checks the Extended Protection policy; it opens
// no connection and loads no key.
func NewPlan(cfg *config.Config) (*Plan, error) {
	w, reload := Keys(cfg, nil)
	p := &Plan{
		ExposeReasons:  cfg.Log.ExposeReasons,
		Keytabs:        Keytabs{Paths: w.Paths, Retain: w.Retain, ReloadInterval: reload},
		Acceptor:       Acceptor(cfg, nil, nil, nil),
		MaxTokenBytes:  cfg.Kerberos.MaxTokenBytes,
		SSO:            SSO(cfg),
		OIDCProvider:   OIDCProvider(cfg),
		ForwardAuth:    ForwardAuth(cfg),
		DebugTokenFile: DebugTokenFile(cfg),
		Frontend:       Frontend{ExternalURL: cfg.Listen.ExternalURL, TrustedProxies: cfg.Listen.TrustedProxies},
		Listen: Listen{ReadHeaderTimeout: cfg.Listen.ReadHeaderTimeout, MaxHeaderBytes: cfg.Listen.MaxHeaderBytes,
			DrainDelay: cfg.Listen.DrainDelay, ShutdownTimeout: cfg.Listen.ShutdownTimeout},
	}
	var err error
	if p.Store, err = Store(cfg); err != nil {
		return nil, err
	}
	if t, ok := TLSFiles(cfg); ok {
		p.TLS = &t
	}
	if p.EPA, err = EPA(cfg); err != nil {
		return nil, err
	}
	dc, ok, err := Directory(cfg)
	if err != nil {
		return nil, err
	}
	if ok {
		p.Directory = &dc
	}
	p.SPNCheck = SPNCheck(cfg, p.EPA)
	if p.CookieKeys.Path, p.CookieKeys.Create, err = CookieKeys(cfg); err != nil {
		return nil, err
	}
	if p.Proxy, err = Proxy(cfg); err != nil {
		return nil, err
	}
	if p.Password, err = Password(cfg); err != nil {
		return nil, err
	}
	return p, nil
}
