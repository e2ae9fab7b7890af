package negotiate

import (
	"encoding/json"
	"net/http"
)

// WhoAmI is GET /whoami behind the middleware: the signed-in identity as JSON. It
// lives beside the middleware because it only shows what the middleware put in the
// request's context.
func WhoAmI(w http.ResponseWriter, r *http.Request) {
	in, ok := FromContext(r.Context())
	if !ok {
		http.Error(w, "not signed in", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(in.Identity)
}
