// Package ops serves the operator's endpoints, the ones a balancer, a monitoring
// system or an administrator calls rather than a user: GET /healthz (the process
// serves HTTP: liveness), GET /readyz (the directory and the store answer:
// readiness), GET /metrics (Prometheus) and, with a bearer token configured,
// GET /debug/last-failures (recent refusals with their facts).
//
// They are a package of their own, apart from the faces, because they belong to no
// face and need none of them: they read what the mechanisms expose (a Ping, a
// registry, the refusal reporter's recent list). It must not sign anyone in, hold
// state of its own, or serve anything a user's browser needs.
package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyTimeout bounds the checks of one GET /readyz.
const ReadyTimeout = 3 * time.Second

// Check is one dependency /readyz asks.
type Check struct {
	// Name is the key in the answer ("directory", "store").
	Name string
	// Ping answers nil when the dependency works; nil Ping is always ready (an
	// embedded store).
	Ping func(context.Context) error
}

// Options are the endpoints' dependencies.
type Options struct {
	// Ready are the readiness checks, in order.
	Ready []Check
	// Registry is what /metrics serves.
	Registry *prometheus.Registry
	// DebugTokenFile holds the bearer token of /debug/last-failures; "" leaves the
	// endpoint out.
	DebugTokenFile string
	// Recent lists the recent refusals (refusal.Reporter.Recent).
	Recent func() any
	// Draining reports that the node is shutting down: /readyz then answers 503
	// without asking the checks, so that the load balancer stops sending it new
	// requests. nil: never.
	Draining func() bool
}

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors, which every kerbgate exports.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Register adds the endpoints to mux.
func Register(mux *http.ServeMux, o Options) error {
	mux.Handle("GET /healthz", Healthz())
	mux.Handle("GET /readyz", Readiness(o.Draining, o.Ready...))
	if o.DebugTokenFile != "" {
		h, err := LastFailures(o.DebugTokenFile, o.Recent)
		if err != nil {
			return err
		}
		mux.Handle("GET /debug/last-failures", h)
	}
	if o.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	}
	return nil
}

// Healthz is GET /healthz: "ok" while the process serves HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
}

// Readiness is GET /readyz: 200 when every check answers, else 503 naming what does
// not; 503 "draining" while draining() (nil: never) reports a shutdown. /healthz says
// only that the process serves HTTP (liveness); a balancer should route by /readyz.
func Readiness(draining func() bool, checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining != nil && draining() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		results := map[string]string{}
		ready := true
		for _, c := range checks {
			if c.Ping == nil {
				results[c.Name] = "ok"
				continue
			}
			if err := c.Ping(ctx); err != nil {
				results[c.Name] = err.Error()
				ready = false
				continue
			}
			results[c.Name] = "ok"
		}
		status, code := "ready", http.StatusOK
		if !ready {
			status, code = "not ready", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
	})
}

// LastFailures serves recent() as JSON to a request carrying the bearer token in
// tokenFile (compared in constant time).
func LastFailures(tokenFile string, recent func() any) (http.Handler, error) {
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
		var v any
		if recent != nil {
			v = recent()
		}
		enc.Encode(v)
	}), nil
}
