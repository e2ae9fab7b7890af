// Command ssoapp is a small example web application that signs its users in with
// kerbgate's handoff (the IIS + CAMServer "ssoToken" flow, see docs/handoff.md):
//
//  1. GET / without a session shows a "Sign in with Windows" link to
//     <kerbgate>/sso/login?app=<id>&redirect_uri=<public-url>/callback&state=<random>;
//     the state is also kept in a short-lived cookie.
//  2. kerbgate signs the browser in with Windows and sends it back to
//     /callback?ssoToken=…&state=….
//  3. ssoapp checks the state, and its back end redeems the token with
//     POST <kerbgate-backend>/sso/redeem (HTTP Basic app id and client secret,
//     form ssoToken=…), which answers the user's identity as JSON.
//  4. ssoapp keeps the identity in its own in-memory session (an opaque random
//     cookie) and shows it on /.
//
// It depends on kerbgate only through that HTTP contract.
//
// Usage:
//
//	SSOAPP_SECRET=… go run ./examples/ssoapp \
//	    --listen 127.0.0.1:9090 \
//	    --kerbgate http://sso.example.test:8088 \
//	    --public-url http://app.example.test:9090 \
//	    --app-id demo
//
// Every flag can also be set by environment variable: SSOAPP_LISTEN,
// SSOAPP_KERBGATE, SSOAPP_KERBGATE_BACKEND, SSOAPP_APP_ID, SSOAPP_SECRET_FILE,
// SSOAPP_PUBLIC_URL; the client secret comes from --secret-file (first line) or
// SSOAPP_SECRET.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// Config is ssoapp's configuration.
type Config struct {
	Listen string
	// Kerbgate is kerbgate's base URL as browsers reach it (for /sso/login and
	// /sso/logout).
	Kerbgate string
	// KerbgateBackend is kerbgate's base URL as this application's back end
	// reaches it (for /sso/redeem); often the same as Kerbgate.
	KerbgateBackend string
	AppID           string
	Secret          string
	// PublicURL is this application's own base URL as browsers reach it; kerbgate
	// must have <PublicURL>/callback registered as a redirect_uri of AppID.
	PublicURL string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("ssoapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var secretFile string
	fs.StringVar(&c.Listen, "listen", env("SSOAPP_LISTEN", "127.0.0.1:9090"), "address to listen on (env SSOAPP_LISTEN)")
	fs.StringVar(&c.Kerbgate, "kerbgate", env("SSOAPP_KERBGATE", "http://sso.example.test:8088"), "kerbgate's browser-facing base URL (env SSOAPP_KERBGATE)")
	fs.StringVar(&c.KerbgateBackend, "kerbgate-backend", env("SSOAPP_KERBGATE_BACKEND", ""), "kerbgate's base URL for this app's back end; default --kerbgate (env SSOAPP_KERBGATE_BACKEND)")
	fs.StringVar(&c.AppID, "app-id", env("SSOAPP_APP_ID", "demo"), "this application's id in kerbgate's sso.apps (env SSOAPP_APP_ID)")
	fs.StringVar(&secretFile, "secret-file", env("SSOAPP_SECRET_FILE", ""), "file whose first line is the client secret (env SSOAPP_SECRET_FILE; or the secret itself in SSOAPP_SECRET)")
	fs.StringVar(&c.PublicURL, "public-url", env("SSOAPP_PUBLIC_URL", "http://app.example.test:9090"), "this application's browser-facing base URL (env SSOAPP_PUBLIC_URL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.KerbgateBackend == "" {
		c.KerbgateBackend = c.Kerbgate
	}
	var err error
	for _, u := range []struct {
		name string
		val  *string
	}{{"--kerbgate", &c.Kerbgate}, {"--kerbgate-backend", &c.KerbgateBackend}, {"--public-url", &c.PublicURL}} {
		if *u.val, err = baseURL(*u.val); err != nil {
			return c, fmt.Errorf("%s: %w", u.name, err)
		}
	}
	if c.AppID == "" {
		return c, errors.New("--app-id is empty")
	}
	switch {
	case secretFile != "":
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return c, fmt.Errorf("--secret-file: %w", err)
		}
		c.Secret, _, _ = strings.Cut(string(b), "\n")
		c.Secret = strings.TrimSuffix(c.Secret, "\r")
	default:
		c.Secret = getenv("SSOAPP_SECRET")
	}
	if c.Secret == "" {
		return c, errors.New("no client secret: use --secret-file FILE or set SSOAPP_SECRET (kerbgate hash-secret --generate makes one)")
	}
	return c, nil
}

// baseURL checks an absolute http(s) URL without query or fragment, and returns it
// without a trailing slash.
func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an http(s) base URL like http://host:port", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ssoapp: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := New(cfg, nil, log)
	if err != nil {
		fmt.Fprintf(stderr, "ssoapp: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "ssoapp: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("ssoapp listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL,
		"kerbgate", cfg.Kerbgate, "kerbgate_backend", cfg.KerbgateBackend, "app", cfg.AppID)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "ssoapp: %v\n", err)
		return 1
	}
	return 0
}
