// Package spncheck holds the checks kerbgate runs at start-up and the doctor runs
// again: every accepted SPN registered on exactly one account, whose current key
// version the keytabs hold and which allows AES (CheckSPNs); accounts that share
// the key of an Extended Protection SPN with SPNs kerbgate does not accept
// (CheckEPAAccounts); a directory CA with a negative serial number
// (CheckDirectoryCA). Each reports Findings with the facts and the exact fix, and
// Startup logs them for `kerbgate serve`.
//
// It owns these checks, their wording, and the Finding every check of kerbgate's
// reports with (package diagnose, the doctor, adds its KDC, DNS and delegation
// probes on top and renders the same type). It only reads: it must not change
// anything, print or exit, and must not reach the KDC or DNS, so that serve can use
// it without the doctor's probes.
package spncheck

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
)

// Status is a finding's severity.
type Status string

const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Finding is one result: what was checked, what was found, and what to do.
type Finding struct {
	Status Status `json:"status"`
	// Check names the check ("spn_registered", "keytab_kvno", ...), stable for machines.
	Check string `json:"check"`
	// Subject is what was checked, e.g. an SPN or a file.
	Subject string `json:"subject"`
	// Message says what was found, in one sentence.
	Message string `json:"message"`
	// Facts are the values behind the message.
	Facts map[string]any `json:"facts,omitempty"`
	// Fix is the exact remedy (a command or the attribute to change); empty for OK.
	Fix string `json:"fix,omitempty"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%-4s %s %s: %s", f.Status, f.Check, f.Subject, f.Message)
	if len(f.Facts) > 0 {
		keys := make([]string, 0, len(f.Facts))
		for k := range f.Facts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, fmt.Sprintf("%s=%v", k, f.Facts[k]))
		}
		s += " [" + strings.Join(kv, " ") + "]"
	}
	if f.Fix != "" {
		s += "\n     fix: " + f.Fix
	}
	return s
}

// Worst returns the most severe status among findings (OK for none).
func Worst(fs []Finding) Status {
	w := OK
	for _, f := range fs {
		switch {
		case f.Status == Fail:
			return Fail
		case f.Status == Warn:
			w = Warn
		}
	}
	return w
}

// Directory is what the SPN checks read.
type Directory interface {
	SPNOwners(ctx context.Context, spn string) ([]directory.Account, error)
}

// AES enctype bits of msDS-SupportedEncryptionTypes.
const (
	etAES128 = 0x08
	etAES256 = 0x10
)

// CheckSPNs checks every accepted SPN: registered on exactly one account, whose
// current key version is in the keyring and which allows AES.
func CheckSPNs(ctx context.Context, dir Directory, kr *keyring.Keyring, realm string, spns []string) []Finding {
	var out []Finding
	for _, spn := range spns {
		owners, err := dir.SPNOwners(ctx, spn)
		if err != nil {
			out = append(out, Finding{Status: Fail, Check: "spn_registered", Subject: spn,
				Message: "cannot search the directory for the SPN", Facts: map[string]any{"error": err.Error()},
				Fix: "check the directory section (url, ca_file, bind account); see the directory check"})
			continue
		}
		switch len(owners) {
		case 0:
			out = append(out, Finding{Status: Fail, Check: "spn_registered", Subject: spn,
				Message: "the SPN is registered on no account: clients get no ticket for it and browsers fall back to NTLM",
				Fix:     fmt.Sprintf("register it on the service account whose keys kerbgate holds: setspn -S %s <account> (Windows) or samba-tool spn add %s <account>", spn, spn)})
			continue
		case 1:
		default:
			names := make([]string, len(owners))
			for i, o := range owners {
				names[i] = o.SAMAccountName
			}
			// The account to keep is the one whose keys are in the keytab; a matching
			// key version points at it when only one account has that version.
			var holders []string
			for _, o := range owners {
				if slices.Contains(kr.KVNOs(spn, realm), o.KVNO) {
					holders = append(holders, o.SAMAccountName)
				}
			}
			var fix string
			if len(holders) == 1 {
				fix = fmt.Sprintf("keep the SPN on %s (whose key version the keytab holds) only: ", holders[0])
			} else {
				fix = "keep the SPN only on the account whose password the keytab was made with: "
			}
			for _, o := range owners {
				if len(holders) == 1 && o.SAMAccountName == holders[0] {
					continue
				}
				fix += fmt.Sprintf("setspn -D %s %s (samba-tool spn delete %s %s); ", spn, o.SAMAccountName, spn, o.SAMAccountName)
			}
			out = append(out, Finding{Status: Fail, Check: "spn_unique", Subject: spn,
				Message: "Duplicate SPN found: the SPN is registered on more than one account, so the KDC cannot tell which key to use (KDC_ERR_PRINCIPAL_NOT_UNIQUE) and clients fall back to NTLM",
				Facts:   map[string]any{"accounts": strings.Join(names, ",")},
				Fix:     strings.TrimSuffix(fix, "; ")})
			continue
		}
		acct := owners[0]
		out = append(out, Finding{Status: OK, Check: "spn_registered", Subject: spn,
			Message: "registered on exactly one account", Facts: map[string]any{"account": acct.SAMAccountName}})

		held := kr.KVNOs(spn, realm)
		switch {
		case len(held) == 0:
			out = append(out, Finding{Status: Fail, Check: "keytab_kvno", Subject: spn,
				Message: "no keytab holds keys for the SPN",
				Facts:   map[string]any{"account": acct.SAMAccountName, "ad_kvno": acct.KVNO},
				Fix:     fmt.Sprintf("export a keytab for it (ktpass /princ %s@%s /mapuser %s ..., or samba-tool domain exportkeytab FILE --principal=%s) and add it to kerberos.keytabs", spn, realm, acct.SAMAccountName, spn)})
		case !slices.Contains(held, acct.KVNO):
			out = append(out, Finding{Status: Fail, Check: "keytab_kvno", Subject: spn,
				Message: "the keytab's key version is not the account's current one (the password changed after the keytab was exported): every ticket fails with kvno_not_in_keytab",
				Facts:   map[string]any{"account": acct.SAMAccountName, "ad_kvno": acct.KVNO, "keytab_kvnos": kvnoList(held)},
				Fix:     fmt.Sprintf("export a new keytab for %s (samba-tool domain exportkeytab FILE --principal=%s, or ktpass with the account's password) and add it to kerberos.keytabs; kerbgate reloads it", spn, spn)})
		default:
			out = append(out, Finding{Status: OK, Check: "keytab_kvno", Subject: spn,
				Message: "the keytab holds the account's current key version", Facts: map[string]any{"ad_kvno": acct.KVNO}})
		}

		if acct.SupportedEncryptionTypes&(etAES128|etAES256) == 0 {
			out = append(out, Finding{Status: Warn, Check: "account_aes", Subject: spn,
				Message: "the account does not allow AES, so the KDC issues RC4 tickets for it (refused unless kerberos.enctypes lists rc4-hmac)",
				Facts:   map[string]any{"account": acct.SAMAccountName, "msDS-SupportedEncryptionTypes": acct.SupportedEncryptionTypes},
				Fix:     fmt.Sprintf("set msDS-SupportedEncryptionTypes to 24 (AES128+AES256) on %s (Set-ADUser %s -KerberosEncryptionType AES128,AES256), then reset its password and export a new keytab", acct.SAMAccountName, acct.SAMAccountName)})
		} else {
			out = append(out, Finding{Status: OK, Check: "account_aes", Subject: spn,
				Message: "the account allows AES", Facts: map[string]any{"msDS-SupportedEncryptionTypes": acct.SupportedEncryptionTypes}})
		}
	}
	return out
}

func kvnoList(ks []uint32) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = fmt.Sprint(k)
	}
	return strings.Join(s, ",")
}

// CheckEPAAccounts warns about each account that holds an SPN of epa.spns and also
// SPNs that epa.spns does not list. The account's one key opens tickets for all of
// them, and a ticket's server name travels in clear (RFC 4120 §5.3): a token a client
// made for one of the other SPNs can be relayed here with its server name rewritten.
// Windows clients put the name they asked for in the authenticator, encrypted
// (KERB_AUTH_DATA_CLIENT_TARGET, MS-KILE §3.2.5.8), and kerbgate refuses the rewrite;
// clients that send none (MIT, Heimdal, Chromium on Linux) leave service binding
// nothing but the clear-text name. It matters most with the flag Proxy, where service
// binding is the only Extended Protection check.
func CheckEPAAccounts(ctx context.Context, dir Directory, p epa.Policy) []Finding {
	if p.TokenChecking == epa.None || p.Flags&epa.NoServiceNameCheck != 0 {
		return nil // no service binding to weaken
	}
	epaSPNs := p.SPNs
	deployment := "channel binding still protects clients that bind to kerbgate's TLS; clients that send no bindings (curl, Chromium on Linux) are accepted on service binding alone"
	if p.Flags&epa.Proxy != 0 {
		deployment = "with the flag Proxy service binding is the only Extended Protection check, for every client"
	}
	var out []Finding
	seen := map[string]bool{}
	for _, spn := range epaSPNs {
		owners, err := dir.SPNOwners(ctx, spn)
		if err != nil {
			continue // CheckSPNs reports an unreadable directory
		}
		for _, o := range owners {
			if seen[o.DN] {
				continue
			}
			seen[o.DN] = true
			var others []string
			for _, s := range o.SPNs {
				if !slices.ContainsFunc(epaSPNs, func(e string) bool { return strings.EqualFold(e, s) }) {
					others = append(others, s)
				}
			}
			if len(others) == 0 {
				continue
			}
			out = append(out, Finding{Status: Warn, Check: "epa_shared_account", Subject: o.SAMAccountName,
				Message: fmt.Sprintf("the account holding %s also holds SPNs epa.spns does not accept: a token made for one of them by a client that sends no authenticator target name (MIT, Heimdal, Chromium on Linux) can be relayed here with its clear-text server name rewritten, and service binding cannot tell (Windows clients send the name encrypted, MS-KILE §3.2.5.8, and are protected: docs/epa.md); %s", spn, deployment),
				Facts:   map[string]any{"account": o.SAMAccountName, "epa_spn": spn, "other_spns": strings.Join(others, ","), "epa_flags": p.Flags.String()},
				Fix:     fmt.Sprintf("give kerbgate its own service account holding only the SPNs in epa.spns (move %s to another account: setspn -D / samba-tool spn delete, then register it there), or bind to the channel (TLS at kerbgate or epa.channel_binding_certificates) instead of flag Proxy", strings.Join(others, ", "))})
		}
	}
	return out
}

// CheckDirectoryCA reports a CA certificate in directory.ca_file whose serial number is
// negative. RFC 5280 §4.1.2.2 requires a positive serial; Samba's provisioning can
// write its autogenerated CA with a negative one. kerbgate accepts it (the main
// package sets GODEBUG x509negativeserial=1); in a program without that setting the
// certificate does not parse, and this says so.
func CheckDirectoryCA(path string) []Finding {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil // the configuration check reports an unreadable file
	}
	var out []Finding
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			if strings.Contains(err.Error(), "negative serial") {
				out = append(out, Finding{Status: Fail, Check: "directory_ca", Subject: path,
					Message: "a CA certificate has a negative serial number and this program was built without GODEBUG x509negativeserial=1",
					Facts:   map[string]any{"error": err.Error()},
					Fix:     "run the kerbgate binary (it accepts such certificates), or replace the CA with one that follows RFC 5280"})
			}
			continue
		}
		if cert.SerialNumber.Sign() < 0 {
			out = append(out, Finding{Status: Warn, Check: "directory_ca", Subject: path,
				Message: fmt.Sprintf("CA certificate %q has a negative serial number (Samba's autogenerated CA); accepted", cert.Subject.String()),
				Facts:   map[string]any{"serial": cert.SerialNumber.String(), "subject": cert.Subject.String()},
				Fix:     "replace it with a CA that follows RFC 5280 (§4.1.2.2: serial numbers are positive) when convenient; Go refuses such certificates unless GODEBUG x509negativeserial=1, which kerbgate sets"})
		}
	}
	return out
}
