package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/diagnose"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/setup"
	doctorsetup "github.com/kerbgate/kerbgate/internal/setup/doctor"
)

// doctor runs every check that applies to the configuration, prints one line per
// finding and exits 1 on any FAIL.
func doctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "kerbgate.yaml", "configuration file")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	user := fs.String("user", "", "a test user (sAMAccountName or UPN) for the token size check and the delegation dry run")
	kdc := fs.String("kdc", "", "a KDC address host:port (default: the directory's host, port 88)")
	dns := fs.String("dns", "", "a DNS server host:port to resolve the SPN hosts with (default: the system resolver)")
	policy := fs.Bool("browser-policy", false, "print browser policy snippets (Chrome, Edge, Firefox) for the configured hosts")
	offset := fs.Duration("clock-offset", 0, "shift kerbgate's clock by this much (tests of the clock check; Go programs ignore faketime)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var findings []diagnose.Finding
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				findings = append(findings, diagnose.Finding{Status: diagnose.Fail, Check: "config", Subject: e.Field, Message: e.Error(),
					Fix: "correct the configuration file (kerbgate check-config --config " + *path + ")"})
			}
		} else {
			findings = append(findings, diagnose.Finding{Status: diagnose.Fail, Check: "config", Subject: *path, Message: err.Error()})
		}
		printFindings(stdout, findings, *asJSON)
		return 1
	}
	opts, err := doctorsetup.Options(cfg)
	if err != nil {
		printFindings(stdout, []diagnose.Finding{{Status: diagnose.Fail, Check: "config", Subject: *path, Message: err.Error()}}, *asJSON)
		return 1
	}
	if *policy {
		for _, p := range diagnose.BrowserPolicies(diagnose.PolicyHosts(opts)) {
			fmt.Fprintf(stdout, "### %s on %s — %s (%s)\n%s\n", p.Browser, p.Platform, p.Path, p.Format, p.Content)
		}
		return 0
	}

	env := &diagnose.Env{Options: opts, User: *user, KDC: *kdc}
	if *offset != 0 {
		env.Now = func() time.Time { return time.Now().Add(*offset) }
	}
	if dc, ok, err := setup.Directory(cfg); err != nil || ok {
		var d *directory.Directory
		if err == nil {
			if d, err = directory.New(dc); err != nil {
				err = fmt.Errorf("directory: %w", err)
			}
		}
		if err != nil {
			printFindings(stdout, []diagnose.Finding{{Status: diagnose.Fail, Check: "directory", Subject: opts.Directory.URL, Message: err.Error()}}, *asJSON)
			return 1
		}
		defer d.Close()
		env.Dir = d
	}
	if *dns != "" {
		server := *dns
		env.DNSServer = server
		env.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	findings := diagnose.Run(ctx, env)
	printFindings(stdout, findings, *asJSON)
	if diagnose.Worst(findings) == diagnose.Fail {
		return 1
	}
	return 0
}

func printFindings(w io.Writer, fs []diagnose.Finding, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if fs == nil {
			fs = []diagnose.Finding{}
		}
		enc.Encode(fs)
		return
	}
	counts := map[diagnose.Status]int{}
	for _, f := range fs {
		fmt.Fprintln(w, f.String())
		counts[f.Status]++
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 40))
	fmt.Fprintf(w, "%d OK, %d WARN, %d FAIL\n", counts[diagnose.OK], counts[diagnose.Warn], counts[diagnose.Fail])
}
