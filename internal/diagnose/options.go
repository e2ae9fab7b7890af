package diagnose

import (
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
)

// Options are the settings a doctor run checks, as typed values: what kerbgate is
// configured to hold and accept. Package setup translates the configuration file
// into them (internal/setup/doctor); the field comments name the settings each comes from,
// because the findings' fixes name them too.
type Options struct {
	// Realm is the realm of the gateway's service principals (kerberos.realm).
	Realm string
	// Keytabs are the keytab files holding the service keys (kerberos.keytabs).
	Keytabs []string
	// SPNs are the accepted service principal names, service/host (kerberos.spns).
	SPNs []string
	// Enctypes are the accepted encryption types (kerberos.enctypes).
	Enctypes []int32
	// ClockSkew is the largest accepted clock difference (kerberos.clock_skew).
	ClockSkew time.Duration
	// MaxTokenBytes bounds the Negotiate token (kerberos.max_token_bytes);
	// MaxHeaderBytes bounds the request's headers (listen.max_header_bytes) and is
	// reported beside it.
	MaxTokenBytes, MaxHeaderBytes int
	// KDCs are the KDC addresses (host:port) the configuration implies, preferred
	// first: the directory's host on port 88 (every AD domain controller is a KDC),
	// then proxy.delegation.kdcs. The clock and round trip checks probe the first
	// when Env.KDC is empty.
	KDCs []string
	// Directory is the directory section the doctor reports on; zero without one.
	Directory Directory
	// EPA is the Extended Protection policy (epa).
	EPA epa.Policy
	// Delegation is kerbgate's delegating service account (proxy.delegation); nil
	// when none is configured.
	Delegation *Delegation
	// Apps are the published applications (proxy.apps), in the configuration's order.
	Apps []App
	// Password is the password fallback (password_signin); nil without one.
	Password *Password
}

// Directory is what the doctor names of the directory section: its URL, its CA
// file and base DN (the client itself is Env.Dir).
type Directory struct {
	URL, CAFile, BaseDN string
}

// Delegation is the service account kerbgate delegates with (S4U2Self, S4U2Proxy).
type Delegation struct {
	// Principal is the account, in Options.Realm; Keytab holds its own keys.
	Principal, Keytab string
	// KDCs are the KDC addresses (host:port) it signs in at, tried in order.
	KDCs []string
}

// App is a published application as the doctor sees it.
type App struct {
	ID string
	// Host is the external host name browsers use.
	Host string
	// IWA says browsers sign in to the app with Negotiate (pre_auth iwa), so Host
	// belongs in their Negotiate allowlist.
	IWA bool
	// UpstreamSPN is the SPN of the upstream kerbgate signs the user in to by
	// delegation (kerberos.spn); "" when the app sends no ticket upstream.
	UpstreamSPN string
}
