package signin

import (
	"net/http"

	"github.com/kerbgate/kerbgate/internal/identity"
)

// Method names a pre-authentication method, as configuration files, logs and audit
// events spell it.
type Method int

const (
	// MethodIWA is Integrated Windows Authentication: HTTP Negotiate with Kerberos.
	MethodIWA Method = iota
	// MethodOIDC is the authorization code flow against an external OpenID provider.
	MethodOIDC
	// MethodPassthrough signs nobody in: requests go on anonymously.
	MethodPassthrough
)

func (m Method) String() string {
	switch m {
	case MethodIWA:
		return "iwa"
	case MethodOIDC:
		return "oidc"
	case MethodPassthrough:
		return "passthrough"
	}
	return "unknown"
}

// Result is a completed pre-authentication.
type Result struct {
	// Identity is who signed in; nil when the method signs nobody in (Passthrough).
	Identity *identity.Identity
	// ReturnTo is where to send the browser when the sign-in ended on a URL of its
	// own (the OIDC callback): the request itself must not go on. "" when it may.
	ReturnTo string
}

// Next receives a completed pre-authentication, or the refusal that ended it.
type Next func(w http.ResponseWriter, r *http.Request, res Result, err error)

// PreAuthenticator signs in the browser of a request by one method.
//
// Authenticate either calls next once (the sign-in completed, or failed with a
// *reason.Error), or answers the request itself and does not call next: a challenge
// (401 Negotiate), a redirect to a provider, or a refusal it renders itself.
type PreAuthenticator interface {
	Method() Method
	Authenticate(w http.ResponseWriter, r *http.Request, next Next)
}
