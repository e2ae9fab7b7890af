package signin

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/kerbgate/kerbgate/internal/negotiate"
)

// WhoAmI is GET /whoami behind the Negotiate middleware: the signed-in identity as
// JSON, its groups named through dir as every face names them (NameGroups; nil dir:
// SIDs only, "group_names" absent). It admits to no app: no directory check, no
// allowed groups.
func WhoAmI(dir GroupNamer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, ok := negotiate.FromContext(r.Context())
		if !ok {
			http.Error(w, "not signed in", http.StatusInternalServerError)
			return
		}
		id := in.Identity
		NameGroups(r.Context(), dir, log, &id)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(id)
	})
}
