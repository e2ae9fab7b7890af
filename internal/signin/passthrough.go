package signin

import "net/http"

// Passthrough signs nobody in: every request goes on, anonymously. A face keeps no
// session for it, and Groups refuses it whenever an application lists groups.
type Passthrough struct{}

// Method is MethodPassthrough.
func (Passthrough) Method() Method { return MethodPassthrough }

// Authenticate calls next with no identity.
func (Passthrough) Authenticate(w http.ResponseWriter, r *http.Request, next Next) {
	next(w, r, Result{}, nil)
}
