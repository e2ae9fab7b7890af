package signin

import (
	"net/http"

	"github.com/kerbgate/kerbgate/internal/negotiate"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// Negotiate is Integrated Windows Authentication: the Negotiate middleware verifies
// the browser's Kerberos token (or answers 401 Negotiate, or refuses), and the
// identity it puts in the request's context is the result.
type Negotiate struct {
	// Middleware is the negotiate package's middleware.
	Middleware func(http.Handler) http.Handler
}

// Method is MethodIWA.
func (Negotiate) Method() Method { return MethodIWA }

// Authenticate runs the middleware and calls next with its identity.
func (n Negotiate) Authenticate(w http.ResponseWriter, r *http.Request, next Next) {
	n.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, ok := negotiate.FromContext(r.Context())
		if !ok {
			next(w, r, Result{}, reason.New(reason.Internal, "sign-in did not produce an identity"))
			return
		}
		id := in.Identity
		next(w, r, Result{Identity: &id}, nil)
	})).ServeHTTP(w, r)
}
