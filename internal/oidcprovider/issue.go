package oidcprovider

import (
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store"
)

// issueCode answers the login step of a signed-in browser with the authorization
// code itself: the library makes the code (SaveAuthCode records it, farm-wide) and
// its response to the client, in the response to the sign-in. The library's own
// round — a redirect to its callback, which takes the signed-in request back from
// the store — cost every sign-in an HTTP round trip and two store round trips; its
// callback still serves the sign-ins recorded that way before an upgrade. The code
// carries the sign-in signed: its time (auth_time) and its handle (sid, which
// end_session ends). It reports whether the code went out; a refusal is counted
// and logged here, a store that cannot record the code as a store outage.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ri *requestInfo, ar *authRequest, c *client, who *identity.Identity, signed *signin.Signed) bool {
	refuse := func(err error) bool {
		e := store.Refusal("cannot record the sign-in", "put_token", err)
		p.metrics.authorizations.WithLabelValues(c.ID, string(e.Code)).Inc()
		p.opts.Reporter.Refuse(w, r, e)
		return false
	}
	k, err := store.NewID(p.opts.Rand)
	if err != nil {
		return refuse(err)
	}
	a := *ar
	idt := *who
	// The code seals its id, and with it the sign-in's handle: the token endpoint
	// reads the sign-in's ended-record in the same store operation as it takes the
	// code (codeHandle).
	a.ID, a.identity, a.subject = codeID(k, signed.Handle), &idt, signingkeys.Subject(p.opts.Issuer, idt.SID)
	a.authTime, a.handle = signed.Since, signed.Handle
	p.st.hold(&a)
	defer p.st.release(k)
	ctx := op.ContextWithIssuer(r.Context(), p.opts.Issuer)
	resp, err := op.BuildAuthResponseCodeResponsePayload(ctx, &a, p.op)
	if err != nil {
		return refuse(err)
	}
	if a.ResponseMode == oidc.ResponseModeFormPost {
		err = op.AuthResponseFormPost(w, a.RedirectURI, resp, p.op.Encoder())
	} else {
		var u string
		if u, err = op.AuthResponseURL(a.RedirectURI, oidc.ResponseTypeCode, a.ResponseMode, resp, p.op.Encoder()); err == nil {
			http.Redirect(w, r, u, http.StatusFound)
		}
	}
	if err != nil {
		code := p.refused(r, ri, reason.New(reason.Internal, "cannot answer with the code", "error", err.Error()), "stage", "login")
		p.metrics.authorizations.WithLabelValues(c.ID, string(code)).Inc()
		op.AuthRequestError(w, r, &a, err, p.op)
		return false
	}
	return true
}
