package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/s4u"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/setup"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// newProxy builds the application proxy of its plan.
func newProxy(plan setup.ProxyPlan, log *slog.Logger, signIn func(http.Handler) http.Handler, dir *directory.Directory,
	st store.Store, cookieKeys *keyset.Set, rep *refusal.Reporter, reg prometheus.Registerer, opts Options,
	preAuth func(scope string, negotiate signin.PreAuthenticator) signin.PreAuthenticator) (*proxy.Service, error) {
	o, err := plan.Options(signin.Negotiate{Middleware: signIn}, dir, cookieKeys)
	if err != nil {
		return nil, err
	}
	for i, a := range o.Apps {
		if a.PreAuth.Method() == signin.MethodIWA {
			o.Apps[i].PreAuth = preAuth("proxy:"+a.ID, a.PreAuth) // the password fallback, when configured
		}
	}
	o.CookieKeys, o.Delegator, o.Store, o.Reporter, o.Log, o.Registerer, o.Now = cookieKeys, opts.Delegator, st, rep, log, reg, opts.Now
	if dir != nil {
		o.Directory, o.GroupNamer = dir, dir
	}
	if o.Delegator == nil && plan.Delegation != nil {
		d, err := newDelegator(*plan.Delegation, reg)
		if err != nil {
			return nil, err
		}
		o.Delegator = d
	}
	return proxy.New(o)
}

// delegator adapts the KDC client to the proxy.
type delegator struct{ c *s4u.Client }

func (d delegator) Token(ctx context.Context, user proxy.Principal, spn string, f s4u.Format) ([]byte, bool, error) {
	return d.c.TokenInfo(ctx, s4u.User{Name: user.Name, Enterprise: user.Enterprise, Realm: user.Realm}, spn, f)
}

// newDelegator builds the KDC client of proxy.delegation and exports its counters.
func newDelegator(d setup.Delegation, reg prometheus.Registerer) (proxy.Delegator, error) {
	kt, err := s4u.Keytab(d.KeytabFile)
	if err != nil {
		return nil, fmt.Errorf("proxy.delegation.keytab: %w", err)
	}
	sc := d.Client
	sc.Keytab = kt
	c, err := s4u.New(sc)
	if err != nil {
		return nil, err
	}
	for _, m := range []struct {
		kind string
		get  func(s4u.Stats) uint64
	}{
		{"as", func(s s4u.Stats) uint64 { return s.ASRequests }},
		{"s4u2self", func(s s4u.Stats) uint64 { return s.S4U2SelfRequests }},
		{"s4u2proxy", func(s s4u.Stats) uint64 { return s.S4U2ProxyRequests }},
	} {
		get := m.get
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kerbgate_kdc_requests_total", Help: "Requests kerbgate sent to the KDC for constrained delegation, by kind.",
			ConstLabels: prometheus.Labels{"kind": m.kind},
		}, func() float64 { return float64(get(c.Stats())) }))
	}
	for _, m := range []struct {
		result string
		get    func(s4u.Stats) uint64
	}{
		{"hit", func(s s4u.Stats) uint64 { return s.CacheHits }},
		{"miss", func(s s4u.Stats) uint64 { return s.CacheMisses }},
	} {
		get := m.get
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kerbgate_delegation_cache_total", Help: "Delegated ticket cache lookups, by result.",
			ConstLabels: prometheus.Labels{"result": m.result},
		}, func() float64 { return float64(get(c.Stats())) }))
	}
	return delegator{c}, nil
}
