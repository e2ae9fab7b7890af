package main

import (
	"fmt"
	"io"
	"time"

	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

// oidcKeygenCmd is kerbgate oidc-keygen FILE: it adds a new ES256 signing key to the
// OpenID Provider's JWK set FILE (made when absent, mode 0600). The newest key
// signs; all are published. Copy the file to every node of a farm.
func oidcKeygenCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "Usage: kerbgate oidc-keygen FILE   add a signing key to the oidc_provider.signing_keys_file FILE")
		return 2
	}
	kid, err := signingkeys.Add(args[0], time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "kerbgate oidc-keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: added signing key %s (it signs once every node has the file)\n", args[0], kid)
	return 0
}
