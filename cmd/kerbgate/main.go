// Command kerbgate is a Windows single sign-on gateway: HTTP Negotiate (Kerberos)
// sign-in for web applications, on Linux, without IIS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `kerbgate — Windows single sign-on (Kerberos/Negotiate) gateway

Usage:
  kerbgate serve --config FILE     run the gateway
  kerbgate check-config --config FILE
                                   validate a configuration file and exit
  kerbgate doctor --config FILE [--json] [--user NAME] [--kdc HOST:88] [--dns HOST:53]
                                   find Kerberos/AD misconfigurations; exit 1 on any FAIL
  kerbgate doctor --config FILE --browser-policy
                                   print browser policies allowing Negotiate to the configured hosts
  kerbgate bench --url URL --spn SPN --ccache FILE [--connections 16] [--duration 10s | --requests N] [--raw] [--json]
                                   load a Negotiate-protected URL, a fresh authenticator per request
  kerbgate hash-secret [--generate] < secret
                                   print the secret_hash of an application's client secret
  kerbgate example-config          print a commented example configuration
  kerbgate version                 print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		cfg, code := loadConfig("check-config", args[1:], stderr)
		if cfg != nil {
			fmt.Fprintf(stdout, "%s: OK\n", cfg.Path)
		}
		return code
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "doctor":
		return doctor(args[1:], stdout, stderr)
	case "hash-secret":
		return hashSecretCmd(args[1:], os.Stdin, stdout, stderr)
	case "example-config":
		fmt.Fprint(stdout, config.Example())
		return 0
	case "version":
		fmt.Fprintln(stdout, "kerbgate", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "kerbgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "kerbgate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "kerbgate: %d configuration error(s)\n", len(es))
		} else {
			fmt.Fprintln(stderr, "kerbgate:", err)
		}
		return nil, 1
	}
	return cfg, 0
}

func serve(args []string, stderr io.Writer) int {
	cfg, code := loadConfig("serve", args, stderr)
	if cfg == nil {
		return code
	}
	log := newLogger(cfg, stderr)
	srv, err := server.New(cfg, log, server.Options{})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen.Address)
	if err != nil {
		log.Error("cannot listen", "address", cfg.Listen.Address, "error", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "error", err.Error())
		return 1
	}
	return 0
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
