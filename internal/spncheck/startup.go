package spncheck

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
)

// Mode is what the start-up check does with a problem.
type Mode int

const (
	// ModeWarn logs each problem and starts.
	ModeWarn Mode = iota
	// ModeFail refuses to start on a failed SPN check.
	ModeFail
	// ModeOff skips the SPN checks (the keytab and CA warnings are still logged).
	ModeOff
)

// StartupTimeout bounds the directory searches of the start-up check.
const StartupTimeout = 15 * time.Second

// Options are what the start-up check reads.
type Options struct {
	Realm string
	// SPNs are the accepted SPNs (kerberos.spns).
	SPNs []string
	// Keys are the keys loaded from the keytabs.
	Keys *keyring.Keyring
	// Directory answers the SPN searches; nil without a directory, which skips
	// the checks that need it.
	Directory Directory
	// DirectoryCAFile is the directory's CA file, checked for a negative serial.
	DirectoryCAFile string
	// EPA is the Extended Protection policy, for the shared account warning.
	EPA  epa.Policy
	Mode Mode
	Log  *slog.Logger
}

// Startup is the check `kerbgate serve` runs before it listens: each accepted SPN
// without a key in the keytabs (a warning: an SPN may be listed ahead of its
// keytab), the directory CA, then, with a directory and unless Mode is ModeOff,
// CheckSPNs and CheckEPAAccounts. Every finding that is not OK is logged as a
// warning with its facts and fix. It returns an error naming every failed check
// only in ModeFail.
func Startup(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, spn := range o.SPNs {
		if o.Keys != nil && !o.Keys.HasPrincipal(spn, o.Realm) {
			// Not fatal: tickets for it are refused with spn_not_in_keytab.
			log.Warn("accepted SPN has no key in any keytab", "spn", spn, "realm", o.Realm,
				"fix", "export a keytab for it and add it to kerberos.keytabs")
		}
	}
	for _, f := range CheckDirectoryCA(o.DirectoryCAFile) {
		log.Warn("directory CA: "+f.Message, "check", f.Check, "ca_file", f.Subject, "status", string(f.Status), "fix", f.Fix)
	}
	if o.Directory == nil || o.Mode == ModeOff || o.Keys == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, StartupTimeout)
	defer cancel()
	findings := CheckSPNs(ctx, o.Directory, o.Keys, o.Realm, o.SPNs)
	// A warning only: it describes what service binding can prove, not a fault.
	findings = append(findings, CheckEPAAccounts(ctx, o.Directory, o.EPA)...)
	var problems []string
	for _, f := range findings {
		if f.Status == OK {
			continue
		}
		subject := "spn"
		if f.Check == "epa_shared_account" {
			subject = "subject"
		}
		attrs := []any{"check", f.Check, subject, f.Subject, "status", string(f.Status), "fix", f.Fix}
		for k, v := range f.Facts {
			attrs = append(attrs, k, v)
		}
		log.Warn("SPN check: "+f.Message, attrs...)
		if f.Status == Fail {
			problems = append(problems, f.Check+" "+f.Subject+": "+f.Message+" (fix: "+f.Fix+")")
		}
	}
	if len(problems) == 0 {
		log.Info("SPN check passed", "spns", o.SPNs)
		return nil
	}
	if o.Mode == ModeFail {
		return fmt.Errorf("SPN check failed (kerberos.spn_check: fail):\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}
