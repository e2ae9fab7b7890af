package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, mux *http.ServeMux, path, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// /readyz is 200 while every check answers and 503 naming the one that does not;
// /healthz answers regardless.
func TestReadiness(t *testing.T) {
	var storeErr error
	mux := http.NewServeMux()
	if err := Register(mux, Options{Registry: NewRegistry(), Ready: []Check{
		{Name: "directory", Ping: func(context.Context) error { return nil }},
		{Name: "store", Ping: func(context.Context) error { return storeErr }},
		{Name: "embedded"},
	}}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Status string
		Checks map[string]string
	}
	rec := get(t, mux, "/readyz", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || body.Status != "ready" ||
		body.Checks["directory"] != "ok" || body.Checks["store"] != "ok" || body.Checks["embedded"] != "ok" {
		t.Fatalf("ready: %d %s", rec.Code, rec.Body)
	}
	storeErr = errors.New("redis at 127.0.0.1:1: connection refused")
	rec = get(t, mux, "/readyz", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 503 || body.Status != "not ready" ||
		body.Checks["store"] != storeErr.Error() || body.Checks["directory"] != "ok" {
		t.Fatalf("not ready: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("readiness may be cached")
	}
	if rec := get(t, mux, "/healthz", ""); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, mux, "/metrics", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "go_goroutines") {
		t.Errorf("metrics: %d", rec.Code)
	}
	if rec := get(t, mux, "/debug/last-failures", ""); rec.Code != 404 {
		t.Errorf("debug endpoint without a token file: %d", rec.Code)
	}
}

// Once draining, /readyz answers 503 "draining" at once, even with every check
// answering and without asking them; /healthz still answers (the process serves).
func TestReadinessDraining(t *testing.T) {
	var draining bool
	asked := 0
	mux := http.NewServeMux()
	if err := Register(mux, Options{Draining: func() bool { return draining }, Ready: []Check{
		{Name: "store", Ping: func(context.Context) error { asked++; return nil }},
	}}); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, mux, "/readyz", ""); rec.Code != 200 || asked != 1 {
		t.Fatalf("before draining: %d %s (checks asked %d)", rec.Code, rec.Body, asked)
	}
	draining = true
	rec := get(t, mux, "/readyz", "")
	var body struct{ Status string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 503 || body.Status != "draining" || asked != 1 {
		t.Fatalf("draining: %d %s (checks asked %d)", rec.Code, rec.Body, asked)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Error("draining readiness may be cached")
	}
	if rec := get(t, mux, "/healthz", ""); rec.Code != 200 {
		t.Errorf("healthz while draining: %d", rec.Code)
	}
}

// /debug/last-failures answers only the configured bearer token.
func TestLastFailures(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := Register(mux, Options{DebugTokenFile: tokenFile, Recent: func() any { return []string{"clock_skew"} }}); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"", "Bearer wrong", "Basic s3cret-token"} {
		if rec := get(t, mux, "/debug/last-failures", auth); rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: %d", auth, rec.Code)
		}
	}
	rec := get(t, mux, "/debug/last-failures", "bearer s3cret-token")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "clock_skew") {
		t.Errorf("right token: %d %s", rec.Code, rec.Body)
	}
	if err := Register(http.NewServeMux(), Options{DebugTokenFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing token file is not an error")
	}
}
