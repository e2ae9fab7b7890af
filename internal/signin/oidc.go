package signin

import (
	"net/http"

	"github.com/kerbgate/kerbgate/internal/oidcauth"
)

// OIDC signs a browser in at an external OpenID provider (package oidcauth runs the
// code flow). The first request is answered with a redirect to the provider; the
// provider's callback completes the sign-in, and Result.ReturnTo is the page the
// browser first asked for.
type OIDC struct {
	Flow *oidcauth.Authenticator
}

// Method is MethodOIDC.
func (OIDC) Method() Method { return MethodOIDC }

// Authenticate starts the flow, or finishes it on the callback and calls next.
func (o OIDC) Authenticate(w http.ResponseWriter, r *http.Request, next Next) {
	id, returnTo, err, handled := o.Flow.Authenticate(w, r)
	if handled {
		return
	}
	next(w, r, Result{Identity: id, ReturnTo: returnTo}, err)
}
