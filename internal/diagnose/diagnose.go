// Package diagnose is the doctor: it finds Kerberos and Active Directory
// misconfigurations by comparing what kerbgate holds (keytabs, configuration) with
// what the directory, the KDC and DNS say, and reports a Finding with the facts and
// the exact fix for each.
//
// It owns the doctor's own probes and their wording: keytabs, the directory bind,
// the clock against the KDC, a real ticket round trip, DNS, token sizes and the
// delegation dry run, and the browsers' Negotiate allowlist policies. The checks
// serve also runs at start-up (SPN registration and key versions, EPA shared
// accounts, the directory CA) and the Finding type live in package spncheck, so
// that serve runs them without the doctor's probes.
//
// It checks typed Options, which package setup translates from the configuration
// file (internal/setup/doctor): it must not import config or read the file. It must not
// change anything (it only reads), print, or exit: `kerbgate doctor` renders its
// findings.
package diagnose

import "github.com/kerbgate/kerbgate/internal/spncheck"

// The doctor reports with spncheck's Finding, so that the checks it shares with
// the start-up check and its own probes read the same.
type (
	Status  = spncheck.Status
	Finding = spncheck.Finding
)

const (
	OK   = spncheck.OK
	Warn = spncheck.Warn
	Fail = spncheck.Fail
)

// Worst returns the most severe status among findings (OK for none).
func Worst(fs []Finding) Status { return spncheck.Worst(fs) }
