// Package server wires kerbgate together from a loaded configuration: keys, acceptor,
// middleware, handlers, metrics and the HTTP listener.
//
// It owns construction and the endpoint map. It must not hold protocol logic: every
// check lives in a mechanism or flow package, and this package only connects them.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/negotiate"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Server is a configured kerbgate instance.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	handler  http.Handler
	Acceptor *acceptor.Acceptor
	Registry *prometheus.Registry
	closers  []io.Closer
}

// Options carry what tests inject.
type Options struct {
	// Now replaces the clock of the acceptor (tests only).
	Now func() time.Time
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	kr, err := keyring.Load(cfg.Kerberos.Keytabs...)
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
		Keyring:   kr,
		SPNs:      cfg.Kerberos.SPNs,
		Realm:     cfg.Kerberos.Realm,
		Enctypes:  cfg.Kerberos.Enctypes,
		ClockSkew: cfg.Kerberos.ClockSkew,
		Replay:    replayCache,
		Now:       opts.Now,
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
	signIn, err := negotiate.Middleware(negotiate.Options{
		Acceptor:      acc,
		Reporter:      rep,
		MaxTokenBytes: cfg.Kerberos.MaxTokenBytes,
		Registerer:    reg,
	})
	if err != nil {
		return fail(err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /whoami", signIn(http.HandlerFunc(whoami)))

	var dir sso.Directory
	if cfg.Directory.Enabled {
		d, err := openDirectory(cfg)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, d)
		dir = d
	}
	handoff, err := sso.New(sso.Options{
		Apps:              cfg.SSO.Apps,
		CookieName:        cfg.SSO.CookieName,
		BrowserSessionTTL: cfg.SSO.BrowserSessionTTL,
		SignIn:            signIn,
		Directory:         dir,
		Store:             st,
		Reporter:          rep,
		Log:               log,
		Registerer:        reg,
		Now:               opts.Now,
	})
	if err != nil {
		return fail(err)
	}
	handoff.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	return &Server{cfg: cfg, log: log, handler: mux, Acceptor: acc, Registry: reg, closers: closers}, nil
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
	}
}

// Serve accepts connections on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("kerbgate listening", "address", ln.Addr().String(), "realm", s.cfg.Kerberos.Realm, "spns", s.cfg.Kerberos.SPNs)
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
