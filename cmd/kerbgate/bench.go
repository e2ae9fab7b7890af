package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/loadgen"
)

// bench loads a Negotiate-protected URL with a fresh authenticator per request.
func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the URL to load")
	spn := fs.String("spn", "", "the service principal name of the ticket, like HTTP/sso.example.test")
	ccache := fs.String("ccache", "", "an MIT credential cache holding a ticket for --spn (kinit; kvno SPN)")
	ktPath := fs.String("keytab", "", "instead of --ccache: sign in with this keytab as --principal")
	principal := fs.String("principal", "", "the client principal for --keytab or --password-env, like alice")
	realm := fs.String("realm", "", "the realm for --keytab or --password-env")
	kdc := fs.String("kdc", "", "the KDC host:port for --keytab or --password-env")
	pwEnv := fs.String("password-env", "", "instead of --ccache: sign in with the password in this environment variable")
	cbt := fs.Bool("channel-bindings", false, "bind every token to the https server's certificate (tls-server-end-point), as Windows clients do")
	conns := fs.Int("connections", 16, "concurrent connections")
	requests := fs.Int("requests", 0, "stop after this many requests (default: --duration)")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	raw := fs.Bool("raw", false, "send raw GSS Kerberos tokens instead of SPNEGO")
	noAuth := fs.Bool("no-auth", false, "send no Authorization header (the HTTP floor)")
	cookie := fs.String("cookie", "", "a cookie to send with every request, name=value")
	host := fs.String("host", "", "the Host header")
	cafile := fs.String("cacert", "", "CA certificates for an https URL")
	noKeepAlive := fs.Bool("no-keepalive", false, "a new connection for every request")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	haveTicket := *ccache != "" || (*principal != "" && (*ktPath != "" || *pwEnv != ""))
	if *url == "" || (!*noAuth && *cookie == "" && (*spn == "" || !haveTicket)) {
		fmt.Fprintln(stderr, "kerbgate bench: --url, and --spn with --ccache or --principal with --keytab/--password-env (or --no-auth, or --cookie), are required")
		return 2
	}
	o := loadgen.Options{URL: *url, Raw: *raw, Cookie: *cookie, Host: *host, Connections: *conns,
		Requests: *requests, Duration: *duration, CAFile: *cafile, NoKeepAlive: *noKeepAlive}
	if *requests > 0 {
		o.Duration = 0
	}
	extra := map[string]any{}
	if !*noAuth && *spn != "" {
		var cred *initiator.Credential
		var err error
		if *ccache != "" {
			cred, err = initiator.FromCCache(*ccache, *spn)
		} else {
			cred, err = loadgen.CredentialFromKeytab(*principal, *realm, *ktPath, os.Getenv(*pwEnv), *spn, []string{*kdc})
		}
		if err == nil && *cbt {
			o.ChannelBindingHash, err = loadgen.ServerBindings(*url, *cafile)
		}
		if err != nil {
			fmt.Fprintln(stderr, "kerbgate bench:", err)
			return 1
		}
		o.Credential = cred
		rate, err := loadgen.TokenRate(cred, 500*time.Millisecond)
		if err != nil {
			fmt.Fprintln(stderr, "kerbgate bench:", err)
			return 1
		}
		extra["token_rate_per_second_one_core"] = int(rate)
	}
	res, err := loadgen.Run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(stderr, "kerbgate bench:", err)
		return 1
	}
	res.Extra = extra
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Fprintln(stdout, res.String())
		if r, ok := extra["token_rate_per_second_one_core"]; ok {
			fmt.Fprintf(stdout, "token rate (one core, this generator): %v tokens/s\n", r)
		}
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}
