// Package server wires kerbgate together from a configuration's plan, in the order
// of the architecture: keys, then the store (with Redis, also the replay cache),
// then the acceptor, then sign-in (Extended Protection, the Negotiate middleware,
// the directory and its start-up check, the cookie keys), then the faces (the
// handoff and the application proxy), then the operator's endpoints and the front
// end view. Each step is one short method of builder.
//
// It owns the order of construction, the endpoint map and the HTTP listener. It
// must not hold protocol logic, handlers or set-up work, nor read the configuration
// file's types: package setup translates the configuration into a setup.Plan, and
// every check, handler and file lives in the mechanism or face it belongs to; this
// package only fills the plan's typed options with what runs and connects them.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/clientauth"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/forwardauth"
	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/negotiate"
	"github.com/kerbgate/kerbgate/internal/oidcprovider"
	"github.com/kerbgate/kerbgate/internal/ops"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/pwsignin"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/setup"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/spncheck"
	"github.com/kerbgate/kerbgate/internal/sso"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/tlsserve"
)

// Server is a configured kerbgate instance.
type Server struct {
	plan     *setup.Plan
	log      *slog.Logger
	handler  http.Handler
	Acceptor *acceptor.Acceptor
	Registry *prometheus.Registry
	// TLS serves kerbgate's certificate; nil without a tls section.
	TLS *tlsserve.Files
	// Keys reloads the keytabs.
	Keys     *keyring.Watcher
	closers  []io.Closer
	password *pwsignin.Service
	// draining is set by the shutdown's first step: /readyz fails from then on.
	draining *atomic.Bool
	// inFlight counts the requests being served, for the shutdown's log lines.
	inFlight atomic.Int64
}

// Options carry what tests inject.
type Options struct {
	// Now replaces the clock of the acceptor (tests only).
	Now func() time.Time
	// Delegator replaces the KDC client of the application proxy (tests only).
	Delegator proxy.Delegator
}

// New builds a server from the plan of a validated configuration (setup.NewPlan).
func New(p *setup.Plan, log *slog.Logger, opts Options) (*Server, error) {
	b := &builder{plan: p, log: log, opts: opts, mux: http.NewServeMux(), reg: ops.NewRegistry(), draining: &atomic.Bool{}}
	for _, step := range []func() error{b.reporter, b.keys, b.store, b.acceptor, b.signIn, b.faces, b.forwardAuth, b.endpoints} {
		if err := step(); err != nil {
			b.close()
			return nil, err
		}
	}
	return &Server{plan: p, log: log, handler: b.handler, Acceptor: b.acc, Registry: b.reg, TLS: b.tls,
		Keys: b.watcher, closers: b.closers, password: b.pw, draining: b.draining}, nil
}

// builder carries what each step of New makes to the steps after it.
type builder struct {
	plan     *setup.Plan
	log      *slog.Logger
	opts     Options
	draining *atomic.Bool

	closers []io.Closer
	reg     *prometheus.Registry
	rep     *refusal.Reporter

	watcher *keyring.Watcher
	kr      *keyring.Keyring
	st      store.Store
	replay  replay.Cache
	// afterAcceptor starts the keytab watcher once the acceptor it feeds exists.
	afterAcceptor func()
	acc           *acceptor.Acceptor
	tls           *tlsserve.Files
	signInMW      func(http.Handler) http.Handler
	dir           sso.Directory // nil without a directory section (no typed nil)
	dirImpl       *directory.Directory
	cookieKeys    *keyset.Set
	pw            *pwsignin.Service // nil without password_signin
	// front is what the client sees of a request (made before the faces: forward-auth
	// reads X-Forwarded-* through it).
	front *frontend.Frontend

	mux     *http.ServeMux
	handler http.Handler
}

func (b *builder) close() {
	for _, c := range b.closers {
		c.Close()
	}
}

// reporter makes the refusal reporter every layer reports to, counted in the
// registry.
func (b *builder) reporter() (err error) {
	b.rep, err = refusal.NewReporter(b.log, b.reg, b.plan.ExposeReasons)
	return err
}

// keys loads the keytabs, and watches them for changes when configured.
func (b *builder) keys() (err error) {
	b.watcher = b.plan.Keytabs.Watcher(b.opts.Now)
	if b.kr, err = b.watcher.Start(); err != nil {
		return err
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_keytab_reloads_total", Help: "Keytab reloads after a file changed (or retained keys expired), by result.",
	}, []string{"result"})
	b.reg.MustRegister(reloads)
	b.watcher.Set = func(kr *keyring.Keyring) {
		b.acc.SetKeyring(kr) // set by the acceptor step before the watcher runs
		reloads.WithLabelValues("ok").Inc()
		b.log.Info("keytabs reloaded", "keys", kr.Summary())
	}
	b.watcher.OnError = func(err error) {
		reloads.WithLabelValues("error").Inc()
		b.log.Error("keytab reload failed; the previous keys stay in use", "error", err.Error())
	}
	if interval := b.plan.Keytabs.ReloadInterval; interval > 0 {
		stop := make(chan struct{})
		b.closers = append(b.closers, closerFunc(func() error { close(stop); return nil }))
		b.afterAcceptor = func() { go b.watcher.Run(interval, stop) }
	}
	return nil
}

// store opens the configured store; with Redis it is also the acceptor's replay
// cache. A Redis that cannot be reached is not fatal (store_unavailable until it
// answers); one that refuses the credentials is a configuration error.
func (b *builder) store() error {
	o := b.plan.Store
	o.Log, o.Now = b.log, b.opts.Now
	st, rc, err := store.Open(o)
	switch {
	case errors.Is(err, store.ErrRedisAuth):
		return fmt.Errorf("store.redis: %w; check store.redis.username, the password in password_file or password_env, and the user's ACL (docs/farm.md)", err)
	case err != nil && o.Redis != nil:
		return fmt.Errorf("store.redis: %w", err)
	case err != nil:
		return err
	}
	b.st, b.replay = st, rc
	b.closers = append(b.closers, st)
	return nil
}

// acceptor makes the Kerberos acceptor on the keys and the replay cache, then
// starts watching the keytabs.
func (b *builder) acceptor() (err error) {
	c := b.plan.Acceptor
	c.Keyring, c.Replay, c.Now = b.kr, b.replay, b.opts.Now
	if b.acc, err = acceptor.New(c); err != nil {
		return err
	}
	if b.afterAcceptor != nil {
		b.afterAcceptor()
	}
	return nil
}

// signIn makes what every face signs users in with: the certificate served (for
// channel binding), the Negotiate middleware with Extended Protection, the directory
// and the start-up check against it, and the keys of the session cookies.
func (b *builder) signIn() error {
	for _, step := range []func() error{b.servedTLS, b.negotiate, b.directory, b.startupCheck, b.loadCookieKeys, b.password} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// servedTLS loads kerbgate's certificate when it terminates TLS itself.
func (b *builder) servedTLS() (err error) {
	t := b.plan.TLS
	if t == nil {
		return nil
	}
	if b.tls, err = tlsserve.Load(t.CertFile, t.KeyFile, t.ReloadInterval, b.log); err != nil {
		return err
	}
	b.closers = append(b.closers, b.tls)
	if c := b.tls.Current(); c.BindingErr != nil && b.plan.EPA.TokenChecking != epa.None {
		return c.BindingErr
	}
	return nil
}

// negotiate makes the Negotiate middleware, with Extended Protection.
func (b *builder) negotiate() error {
	policy := b.plan.EPA
	var err error
	b.signInMW, err = negotiate.Middleware(negotiate.Options{
		Acceptor:      b.acc,
		Reporter:      b.rep,
		MaxTokenBytes: b.plan.MaxTokenBytes,
		Registerer:    b.reg,
		EPA:           &policy,
		Channel:       servedChannel(b.tls),
	})
	if err != nil {
		return err
	}
	if policy.TokenChecking != epa.None {
		b.log.Info("extended protection", "token_checking", policy.TokenChecking.String(), "flags", policy.Flags.String(),
			"spns", policy.SPNs, "tls", b.tls != nil, "load_balancer_certificates", len(policy.ProxyBindings))
	}
	return nil
}

// directory connects the directory section's client.
func (b *builder) directory() error {
	if b.plan.Directory == nil {
		return nil
	}
	d, err := directory.New(*b.plan.Directory)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	b.closers = append(b.closers, d)
	b.dir, b.dirImpl = d, d
	return nil
}

// startupCheck is the start-up SPN check (kerberos.spn_check) and its warnings.
func (b *builder) startupCheck() error {
	o := b.plan.SPNCheck
	o.Keys, o.Log = b.kr, b.log
	if b.dirImpl != nil {
		o.Directory = b.dirImpl
	}
	return spncheck.Startup(context.Background(), o)
}

// loadCookieKeys loads the session cookies' keys, making the default file on first
// start.
func (b *builder) loadCookieKeys() error {
	path := b.plan.CookieKeys.Path
	load := keyset.Load
	if b.plan.CookieKeys.Create {
		load = func(path string) (*keyset.Set, error) { return keyset.LoadOrCreate(path, b.log) }
	}
	var err error
	if b.cookieKeys, err = load(path); err != nil {
		return fmt.Errorf("cookie keys %s: %w", path, err)
	}
	b.log.Info("cookie keys", "path", path, "key_ids", b.cookieKeys.IDs())
	return nil
}

// faces makes GET /whoami (behind the Negotiate middleware), the handoff, the
// OpenID Provider and, with proxy.apps, the application proxy in front of every
// other endpoint.
func (b *builder) faces() error {
	whoami := b.whoami()
	b.mux.Handle("GET /whoami", whoami)
	if b.pw != nil {
		b.mux.Handle("POST /whoami", whoami) // the password form posts back
	}
	ho, err := b.plan.SSO.Options(b.dirImpl)
	if err != nil {
		return err
	}
	ho.CookieKeys, ho.SignIn, ho.Directory, ho.Store = b.cookieKeys, b.preAuth("sso", signin.Negotiate{Middleware: b.signInMW}), b.dir, b.st
	for i := range ho.Apps { // each app's own password fallback policy
		ho.Apps[i].SignIn = b.preAuth("sso:"+ho.Apps[i].ID, signin.Negotiate{Middleware: b.signInMW})
	}
	ho.Reporter, ho.Log, ho.Registerer, ho.Now = b.rep, b.log, b.reg, b.opts.Now
	// One authenticator for every face that checks client secrets, so that the
	// bound on hash checks and the failure budgets are process-wide.
	ho.Clients = clientauth.New(clientauth.Options{})
	handoff, err := sso.New(ho)
	if err != nil {
		return err
	}
	handoff.Register(b.mux)
	if b.plan.OIDCProvider != nil {
		po, err := b.plan.OIDCProvider.Options(b.dirImpl)
		if err != nil {
			return err
		}
		po.CookieKeys, po.SignIn, po.Directory, po.Store = b.cookieKeys, b.preAuth("oidc", signin.Negotiate{Middleware: b.signInMW}), b.dir, b.st
		po.Reporter, po.Log, po.Registerer, po.Secrets, po.Now = b.rep, b.log, b.reg, ho.Clients, b.opts.Now
		po.PasswordSignIn = b.pw != nil
		provider, err := oidcprovider.New(po)
		if err != nil {
			return err
		}
		provider.Register(b.mux)
	}
	b.handler = b.mux
	b.front = frontend.New(b.plan.Frontend.ExternalURL, b.plan.Frontend.TrustedProxies)
	if len(b.plan.Proxy.Apps) > 0 {
		px, err := newProxy(b.plan.Proxy, b.log, b.signInMW, b.dirImpl, b.st, b.cookieKeys, b.rep, b.reg, b.opts, b.preAuth)
		if err != nil {
			return err
		}
		b.handler = px.Wrap(b.mux)
	}
	return nil
}

// forwardAuth makes, with a forward_auth section, the reverse proxies' auth
// endpoint over the same sign-in, directory, store and cookie keys.
func (b *builder) forwardAuth() error {
	if b.plan.ForwardAuth == nil {
		return nil
	}
	o, err := b.plan.ForwardAuth.Build(b.dirImpl)
	if err != nil {
		return err
	}
	o.SignIn, o.Store, o.CookieKeys = signin.Negotiate{Middleware: b.signInMW}, b.st, b.cookieKeys
	if b.pw != nil { // the form at the sign-in page only (docs/forward-auth.md)
		o.SignInPage = b.preAuth("forward-auth", o.SignIn)
	}
	o.Reporter, o.Log, o.Registerer, o.Now = b.rep, b.log, b.reg, b.opts.Now
	o.Directory, o.RequireDirectory = b.dir, b.plan.ForwardAuth.RequireDirectory
	fa, err := forwardauth.New(o)
	if err != nil {
		return err
	}
	fa.Register(b.mux)
	if b.dir == nil {
		b.log.Warn("forward-auth without a directory: group headers are empty (names come from the directory); group_sids carries the SIDs")
	}
	return nil
}

// endpoints adds the operator's endpoints, then puts the front end view (what the
// client sees behind a balancer) in front of everything.
func (b *builder) endpoints() error {
	ready := []ops.Check{}
	if b.dirImpl != nil {
		ready = append(ready, ops.Check{Name: "directory", Ping: b.dirImpl.Ping})
	}
	storeCheck := ops.Check{Name: "store"}
	if p, ok := b.st.(interface{ Ping(context.Context) error }); ok {
		storeCheck.Ping = p.Ping
	}
	if err := ops.Register(b.mux, ops.Options{
		Ready:          append(ready, storeCheck),
		Registry:       b.reg,
		DebugTokenFile: b.plan.DebugTokenFile,
		Recent:         func() any { return b.rep.Recent() },
		Draining:       b.draining.Load,
	}); err != nil {
		return err
	}
	// What the client sees (scheme, host, address) is worked out once per request,
	// before any face: behind listen.trusted_proxies or listen.external_url.
	fe := b.plan.Frontend
	b.handler = b.front.Middleware(b.handler)
	if fe.ExternalURL != nil || len(fe.TrustedProxies) > 0 {
		var trusted []string
		for _, p := range fe.TrustedProxies {
			trusted = append(trusted, p.String())
		}
		ext := ""
		if fe.ExternalURL != nil {
			ext = fe.ExternalURL.String()
		}
		b.log.Info("front end", "external_url", ext, "trusted_proxies", trusted)
	}
	return nil
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

// HTTPServer returns an http.Server with the configured limits. Its handler counts
// the requests in flight and, once the shutdown has begun, answers with
// "Connection: close", so that clients and balancers open their next connection to
// another node before the listener closes.
func (s *Server) HTTPServer() *http.Server {
	h := s.handler
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.inFlight.Add(1)
			defer s.inFlight.Add(-1)
			if s.draining.Load() {
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: s.plan.Listen.ReadHeaderTimeout,
		MaxHeaderBytes:    s.plan.Listen.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext:       tlsserve.ConnContext,
	}
}

// Serve accepts connections on ln until ctx ends, then shuts down in three steps
// (shutdown). With a tls section, connections on ln are TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.TLS != nil {
		ln = s.TLS.Listener(ln)
	}
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("kerbgate listening", "address", ln.Addr().String(), "tls", s.TLS != nil, "realm", s.plan.Acceptor.Realm, "spns", s.plan.Acceptor.SPNs)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return s.shutdown(hs, errc)
}

// shutdown drains the node, as a balancer needs it to:
//  1. at once, /readyz answers 503 and every response closes its connection, while
//     the listener still accepts: the balancer's checks take the node out and
//     sends nothing more to it, and nothing it already sent is refused;
//  2. after listen.drain_delay, the listener closes, idle connections too;
//  3. requests in flight get listen.shutdown_timeout to finish; those still
//     running then are cut.
func (s *Server) shutdown(hs *http.Server, errc chan error) error {
	l := s.plan.Listen
	start := time.Now()
	s.draining.Store(true)
	s.log.Info("shutdown: draining, /readyz answers 503; the listener closes after drain_delay",
		"drain_delay", l.DrainDelay.String(), "in_flight", s.inFlight.Load())
	if l.DrainDelay > 0 {
		t := time.NewTimer(l.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	s.log.Info("shutdown: listener closed, waiting for the requests in flight",
		"in_flight", s.inFlight.Load(), "shutdown_timeout", l.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), l.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		s.log.Warn("shutdown: shutdown_timeout passed, cutting the requests still in flight",
			"in_flight", s.inFlight.Load(), "shutdown_timeout", l.ShutdownTimeout.String())
		hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("shutdown: done", "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
