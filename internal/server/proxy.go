package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/proxy"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/store"
)

// newProxy builds the application proxy of cfg.Proxy.
func newProxy(cfg *config.Config, log *slog.Logger, signIn func(http.Handler) http.Handler, dir *directory.Directory,
	st store.Store, cookieKeys *keyset.Set, rep *refusal.Reporter, reg prometheus.Registerer, opts Options) (*proxy.Service, error) {
	o := proxy.Options{
		Apps:       cfg.Proxy.Apps,
		CookieName: cfg.Proxy.CookieName,
		CookieKeys: cookieKeys,
		SessionTTL: cfg.Proxy.SessionTTL,
		Realm:      cfg.Kerberos.Realm,
		SignIn:     signIn,
		Delegator:  opts.Delegator,
		Store:      st,
		Reporter:   rep,
		Log:        log,
		Registerer: reg,
		Now:        opts.Now,
	}
	if dir != nil {
		o.Directory = dir
	}
	for _, a := range cfg.Proxy.Apps {
		if a.PreAuth == "oidc" {
			return nil, errors.New("proxy: pre_auth oidc is not wired yet")
		}
	}
	return proxy.New(o)
}
