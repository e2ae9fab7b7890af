// Package server wires kerbgate together from a loaded configuration: keys, acceptor,
// middleware, handlers, metrics and the HTTP listener.
//
// It owns construction and the endpoint map. It must not hold protocol logic: every
// check lives in a mechanism or flow package, and this package only connects them.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kerbgate/kerbgate/internal/clientauth"
	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/negotiate"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/setup"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/tlsserve"
)

// Server is a configured kerbgate instance.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	handler  http.Handler
	Acceptor *acceptor.Acceptor
	Registry *prometheus.Registry
	// TLS serves kerbgate's certificate; nil without a tls section.
	TLS *tlsserve.Files
	// Keys reloads the keytabs.
	Keys    *keyring.Watcher
	closers []io.Closer
}

// Options carry what tests inject.
type Options struct {
	// Now replaces the clock of the acceptor (tests only).
	Now func() time.Time
	// Delegator replaces the KDC client of the application proxy (tests only).
	Delegator proxy.Delegator
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	keys := &keyring.Watcher{Paths: cfg.Kerberos.Keytabs, Retain: cfg.Kerberos.RetainOldKeys, Now: opts.Now}
	kr, err := keys.Start()
	if err != nil {
		return nil, err
	}
	for _, spn := range cfg.Kerberos.SPNs {
		if !kr.HasPrincipal(spn, cfg.Kerberos.Realm) {
			// Not fatal: an SPN may be listed ahead of its keytab, and tickets for it
			// are then refused with spn_not_in_keytab. Say so at start-up.
			log.Warn("accepted SPN has no key in any keytab", "spn", spn, "realm", cfg.Kerberos.Realm,
				"fix", "export a keytab for it and add it to kerberos.keytabs")
		}
	}
	// The store comes first: with Redis, it is also the acceptor's replay cache.
	st, replayCache, err := openStore(cfg, log, opts.Now)
	if err != nil {
		return nil, err
	}
	closers := []io.Closer{st}
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, err
	}
	acc, err := acceptor.New(acceptor.Config{
		Keyring: kr,
		SPNs:    cfg.Kerberos.SPNs,
		Realm:   cfg.Kerberos.Realm,
		// Users of trusted realms only: kerberos.trusted_realms.
		TrustedRealms: cfg.Kerberos.TrustedRealms,
		Enctypes:      cfg.Kerberos.Enctypes,
		ClockSkew:     cfg.Kerberos.ClockSkew,
		Replay:        replayCache,
		Now:           opts.Now,
	})
	if err != nil {
		return fail(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rep, err := refusal.NewReporter(log, reg, cfg.Log.ExposeReasons)
	if err != nil {
		return fail(err)
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_keytab_reloads_total", Help: "Keytab reloads after a file changed (or retained keys expired), by result.",
	}, []string{"result"})
	reg.MustRegister(reloads)
	keys.Set = func(kr *keyring.Keyring) {
		acc.SetKeyring(kr)
		reloads.WithLabelValues("ok").Inc()
		log.Info("keytabs reloaded", "keys", kr.Summary())
	}
	keys.OnError = func(err error) {
		reloads.WithLabelValues("error").Inc()
		log.Error("keytab reload failed; the previous keys stay in use", "error", err.Error())
	}
	if cfg.Kerberos.KeytabReloadInterval > 0 {
		stop := make(chan struct{})
		go keys.Run(cfg.Kerberos.KeytabReloadInterval, stop)
		closers = append(closers, closerFunc(func() error { close(stop); return nil }))
	}
	var tlsFiles *tlsserve.Files
	if cfg.TLS.Enabled {
		if tlsFiles, err = tlsserve.Load(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ReloadInterval, log); err != nil {
			return fail(err)
		}
		closers = append(closers, tlsFiles)
		if c := tlsFiles.Current(); c.BindingErr != nil && cfg.EPA.Policy.TokenChecking != epa.None {
			return fail(c.BindingErr)
		}
	}
	policy := cfg.EPA.Policy
	if err := policy.Validate(); err != nil {
		return fail(fmt.Errorf("epa: %w", err))
	}
	signIn, err := negotiate.Middleware(negotiate.Options{
		Acceptor:      acc,
		Reporter:      rep,
		MaxTokenBytes: cfg.Kerberos.MaxTokenBytes,
		Registerer:    reg,
		EPA:           &policy,
		Channel:       servedChannel(tlsFiles),
	})
	if err != nil {
		return fail(err)
	}
	if policy.TokenChecking != epa.None {
		log.Info("extended protection", "token_checking", policy.TokenChecking.String(), "flags", policy.Flags.String(),
			"spns", policy.SPNs, "tls", cfg.TLS.Enabled, "load_balancer_certificates", len(policy.ProxyBindings))
	}

	mux := http.NewServeMux()
	mux.Handle("GET /whoami", signIn(http.HandlerFunc(whoami)))

	var (
		dir     sso.Directory // nil without a directory section (no typed nil)
		dirImpl *directory.Directory
	)
	if cfg.Directory.Enabled {
		d, err := openDirectory(cfg)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, d)
		dir, dirImpl = d, d
		for _, f := range diagnose.CheckDirectoryCA(cfg.Directory.CAFile) {
			log.Warn("directory CA: "+f.Message, "check", f.Check, "ca_file", f.Subject, "status", string(f.Status), "fix", f.Fix)
		}
	}
	if dirImpl != nil && cfg.Kerberos.SPNCheck != "off" {
		if err := checkSPNs(cfg, log, dirImpl, kr); err != nil {
			return fail(err)
		}
	}
	cookieKeys, err := loadCookieKeys(cfg, log)
	if err != nil {
		return fail(err)
	}
	ho, err := setup.SSO(cfg, dirImpl)
	if err != nil {
		return fail(err)
	}
	ho.CookieKeys, ho.SignIn, ho.Directory, ho.Store = cookieKeys, signin.Negotiate{Middleware: signIn}, dir, st
	ho.Reporter, ho.Log, ho.Registerer, ho.Now = rep, log, reg, opts.Now
	// One authenticator for every face that checks client secrets, so that the
	// bound on hash checks and the failure budgets are process-wide.
	ho.Clients = clientauth.New(clientauth.Options{})
	handoff, err := sso.New(ho)
	if err != nil {
		return fail(err)
	}
	handoff.Register(mux)
	var handler http.Handler = mux
	if len(cfg.Proxy.Apps) > 0 {
		px, err := newProxy(cfg, log, signIn, dirImpl, st, cookieKeys, rep, reg, opts)
		if err != nil {
			return fail(err)
		}
		handler = px.Wrap(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /readyz", readiness(dirImpl, st))
	if cfg.Log.DebugTokenFile != "" {
		h, err := lastFailures(cfg.Log.DebugTokenFile, rep)
		if err != nil {
			return fail(err)
		}
		mux.Handle("GET /debug/last-failures", h)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// What the client sees (scheme, host, address) is worked out once per request,
	// before any face: behind listen.trusted_proxies or listen.external_url.
	handler = frontend.New(cfg.Listen.ExternalURL, cfg.Listen.TrustedProxies).Middleware(handler)
	if cfg.Listen.ExternalURL != nil || len(cfg.Listen.TrustedProxies) > 0 {
		var trusted []string
		for _, p := range cfg.Listen.TrustedProxies {
			trusted = append(trusted, p.String())
		}
		ext := ""
		if cfg.Listen.ExternalURL != nil {
			ext = cfg.Listen.ExternalURL.String()
		}
		log.Info("front end", "external_url", ext, "trusted_proxies", trusted)
	}

	return &Server{cfg: cfg, log: log, handler: handler, Acceptor: acc, Registry: reg, TLS: tlsFiles, Keys: keys, closers: closers}, nil
}

// checkSPNs is the start-up SPN check: every accepted SPN on exactly one account,
// whose current key version the keytabs hold.
func checkSPNs(cfg *config.Config, log *slog.Logger, dir *directory.Directory, kr *keyring.Keyring) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	findings := diagnose.CheckSPNs(ctx, dir, kr, cfg.Kerberos.Realm, cfg.Kerberos.SPNs)
	// A warning only: it describes what service binding can prove, not a fault.
	findings = append(findings, diagnose.CheckEPAAccounts(ctx, dir, cfg.EPA.Policy)...)
	var problems []string
	for _, f := range findings {
		if f.Status == diagnose.OK {
			continue
		}
		subject := "spn"
		if f.Check == "epa_shared_account" {
			subject = "subject"
		}
		attrs := []any{"check", f.Check, subject, f.Subject, "status", string(f.Status), "fix", f.Fix}
		for k, v := range f.Facts {
			attrs = append(attrs, k, v)
		}
		log.Warn("SPN check: "+f.Message, attrs...)
		if f.Status == diagnose.Fail {
			problems = append(problems, f.Check+" "+f.Subject+": "+f.Message+" (fix: "+f.Fix+")")
		}
	}
	if len(problems) == 0 {
		log.Info("SPN check passed", "spns", cfg.Kerberos.SPNs)
		return nil
	}
	if cfg.Kerberos.SPNCheck == "fail" {
		return fmt.Errorf("SPN check failed (kerberos.spn_check: fail):\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// readiness is GET /readyz: 200 when the directory (if configured) and the store
// answer, else 503 naming what does not. /healthz says only that the process
// serves HTTP (liveness); a balancer should route by /readyz.
func readiness(dir *directory.Directory, st store.Store) http.Handler {
	type pinger interface{ Ping(context.Context) error }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		checks := map[string]string{}
		ready := true
		check := func(name string, err error) {
			if err != nil {
				checks[name] = err.Error()
				ready = false
				return
			}
			checks[name] = "ok"
		}
		if dir != nil {
			check("directory", dir.Ping(ctx))
		}
		if p, ok := st.(pinger); ok {
			check("store", p.Ping(ctx))
		} else {
			checks["store"] = "ok"
		}
		status, code := "ready", http.StatusOK
		if !ready {
			status, code = "not ready", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
	})
}

// lastFailures serves the recent refusals with their facts to a request carrying
// the configured bearer token (compared in constant time).
func lastFailures(tokenFile string, rep *refusal.Reporter) (http.Handler, error) {
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	want := sha256.Sum256([]byte(strings.TrimSpace(string(b))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kerbgate-debug"`)
			http.Error(w, "debug endpoint: bearer token required (log.debug_token_file)", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep.Recent())
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// servedChannel tells EPA which certificate kerbgate served on the request's
// connection.
func servedChannel(files *tlsserve.Files) func(*http.Request) epa.Channel {
	return func(r *http.Request) epa.Channel {
		if files == nil {
			return epa.Channel{}
		}
		var ch epa.Channel
		for _, c := range files.Served(r.Context()) {
			if c.Binding != nil {
				ch.Served = append(ch.Served, c.Binding)
			}
		}
		return ch
	}
}

// openStore opens the configured store and the replay cache the acceptor consults:
// the embedded file with an in-memory replay cache (one node), or Redis for both
// (a farm: every node sees every token, session and authenticator).
//
// A Redis that cannot be reached at start-up is not fatal: kerbgate starts, refuses
// requests that need the store with store_unavailable, and serves them as soon as
// Redis answers. A Redis that refuses the credentials is a configuration error.
func openStore(cfg *config.Config, log *slog.Logger, now func() time.Time) (store.Store, replay.Cache, error) {
	rc := cfg.Store.Redis
	if rc == nil {
		st, err := store.OpenBolt(cfg.Store.Path, store.BoltOptions{Now: now})
		if err != nil {
			return nil, nil, fmt.Errorf("store %s: %w", cfg.Store.Path, err)
		}
		return st, replay.NewMemory(cfg.Kerberos.ReplayCacheSize), nil
	}
	pw, err := rc.Password()
	if err != nil {
		return nil, nil, err
	}
	var tlsConf *tls.Config
	if rc.TLS {
		if tlsConf, err = store.RedisTLSConfig(rc.CAFile, rc.CertFile, rc.KeyFile, rc.ServerName); err != nil {
			return nil, nil, fmt.Errorf("store.redis.tls: %w", err)
		}
	}
	store.SetRedisLogger(log)
	rs, err := store.OpenRedis(store.RedisOptions{
		Addrs: rc.Addrs, MasterName: rc.MasterName, Username: rc.Username, Password: pw, DB: rc.DB, TLS: tlsConf,
		Prefix: rc.Prefix, DialTimeout: rc.DialTimeout, Timeout: rc.Timeout,
		// Replay entries and tombstones outlive their expiry by the clock skew, so
		// that a node whose clock lags still finds them.
		Grace: cfg.Kerberos.ClockSkew,
		Now:   now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store.redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rc.DialTimeout+rc.Timeout)
	defer cancel()
	attrs := []any{"addrs", strings.Join(rc.Addrs, ","), "master_name", rc.MasterName, "user", rc.Username,
		"tls", rc.TLS, "db", rc.DB, "prefix", rc.Prefix}
	switch err := rs.Ping(ctx); {
	case errors.Is(err, store.ErrRedisAuth):
		rs.Close()
		return nil, nil, fmt.Errorf("store.redis: Redis refused kerbgate's credentials: %w; check store.redis.username, the password in password_file or password_env, and the user's ACL (docs/farm.md)", err)
	case err != nil:
		log.Error("Redis cannot be reached; requests that need the store are refused with store_unavailable until it answers",
			append(attrs, "error", err.Error())...)
	default:
		log.Info("store: Redis", attrs...)
	}
	return rs, rs, nil
}

// loadCookieKeys loads store.cookie_keys_file, or the key file kept next to the
// store (made with one fresh key on first start).
func loadCookieKeys(cfg *config.Config, log *slog.Logger) (*keyset.Set, error) {
	path := cfg.Store.CookieKeysFile
	if path == "" && cfg.Store.Path == "" {
		return nil, errors.New("store.cookie_keys_file is required with store.redis: every node must share the session cookies' keys")
	}
	if path == "" {
		path = filepath.Join(filepath.Dir(cfg.Store.Path), "kerbgate-cookie.keys")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			_, werr := fmt.Fprintf(f, "# kerbgate session cookie keys (made %s); see store.cookie_keys_file\n%s\n",
				time.Now().UTC().Format(time.RFC3339), keyset.NewKeyLine())
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("cookie keys %s: %w", path, werr)
			}
			log.Info("made the cookie key file", "path", path)
		case !errors.Is(err, os.ErrExist):
			return nil, fmt.Errorf("cookie keys %s: %w", path, err)
		}
	}
	ks, err := keyset.Load(path)
	if err != nil {
		return nil, fmt.Errorf("cookie keys %s: %w", path, err)
	}
	log.Info("cookie keys", "path", path, "key_ids", ks.IDs())
	return ks, nil
}

// OpenDirectory connects the directory section's client (kerbgate doctor uses it).
func OpenDirectory(cfg *config.Config) (*directory.Directory, error) { return openDirectory(cfg) }

func openDirectory(cfg *config.Config) (*directory.Directory, error) {
	dc := directory.Config{
		URL:              cfg.Directory.URL,
		StartTLS:         cfg.Directory.StartTLS,
		CACertFile:       cfg.Directory.CAFile,
		ServerName:       cfg.Directory.ServerName,
		LegacyCommonName: cfg.Directory.LegacyCommonName,
		BaseDN:           cfg.Directory.BaseDN,
		BindMethod:       cfg.Directory.BindMethod,
		BindDN:           cfg.Directory.BindDN,
		Keytab:           cfg.Directory.Keytab,
		Principal:        cfg.Directory.Principal,
		Realm:            cfg.Kerberos.Realm,
		Timeout:          cfg.Directory.Timeout,
		CacheTTL:         cfg.Directory.CacheTTL,
	}
	if cfg.Directory.BindMethod == "simple" {
		pw, err := cfg.Directory.Password()
		if err != nil {
			return nil, fmt.Errorf("directory bind password: %w", err)
		}
		dc.BindPassword = pw
	}
	d, err := directory.New(dc)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	return d, nil
}

// Close releases the store and directory connections.
func (s *Server) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// HTTPServer returns an http.Server with the configured limits.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.Listen.ReadHeaderTimeout,
		MaxHeaderBytes:    s.cfg.Listen.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext:       tlsserve.ConnContext,
	}
}

// Serve accepts connections on ln until ctx ends, then shuts down gracefully. With a
// tls section, connections on ln are TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.TLS != nil {
		ln = s.TLS.Listener(ln)
	}
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("kerbgate listening", "address", ln.Addr().String(), "tls", s.TLS != nil, "realm", s.cfg.Kerberos.Realm, "spns", s.cfg.Kerberos.SPNs)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// whoami answers the signed-in identity as JSON.
func whoami(w http.ResponseWriter, r *http.Request) {
	in, ok := negotiate.FromContext(r.Context())
	if !ok {
		http.Error(w, "not signed in", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(in.Identity)
}
