package signin

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/negotiate"
	"github.com/kerbgate/kerbgate/internal/reason"
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
		writeIdentity(w, r, dir, log, in.Identity)
	})
}

// writeIdentity is the identity as JSON, its groups named.
func writeIdentity(w http.ResponseWriter, r *http.Request, dir GroupNamer, log *slog.Logger, id identity.Identity) {
	NameGroups(r.Context(), dir, log, &id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(id)
}

// WhoAmIScope is where /whoami's own session holds when /whoami signs in with a
// pre-authenticator that needs one (the password form): the cookie at /whoami only.
var WhoAmIScope = Scope{Path: "/whoami", AppID: "kerbgate:whoami"}

// WhoAmISession is GET and POST /whoami for a pre-authenticator whose sign-in ends
// on a page of its own (the password form posts back to /whoami): the browser's
// session in WhoAmIScope, else pre's sign-in, which starts one. Refusals go to
// refuse. The identity is shown as WhoAmI shows it.
func WhoAmISession(pre PreAuthenticator, sessions *Sessions, dir GroupNamer, log *slog.Logger, refuse func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := sessions.Load(r, WhoAmIScope)
		if err != nil {
			refuse(w, r, err)
			return
		}
		if id != nil {
			writeIdentity(w, r, dir, log, *id)
			return
		}
		pre.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res Result, err error) {
			if err == nil && res.Identity == nil {
				err = reason.New(reason.Internal, "sign-in did not produce an identity")
			}
			if err != nil {
				refuse(w, r, err)
				return
			}
			if err := sessions.Start(w, r, WhoAmIScope, res.Identity); err != nil {
				refuse(w, r, err)
				return
			}
			if res.ReturnTo != "" {
				http.Redirect(w, r, res.ReturnTo, http.StatusSeeOther)
				return
			}
			writeIdentity(w, r, dir, log, *res.Identity)
		})
	})
}
