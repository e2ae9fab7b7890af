package oidcprovider

import (
	"context"
	"errors"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// The authentication context classes (acr) kerbgate asserts: what it verified of the
// sign-in behind an ID token. The first two are a Kerberos service ticket for
// kerbgate's SPN, verified with its keys (PAC included); the second also had its
// authenticator bound to the TLS channel kerbgate served (Extended Protection
// channel binding, which a ticket relayed from another connection cannot pass). The
// third is the password fallback (docs/password-fallback.md): a password typed into
// kerbgate's form (or sent with Basic) over TLS, proven to the KDC. It is not a
// Kerberos sign-in of the browser, so it never claims the Kerberos classes.
const (
	// ACRKerberos is SAML 2.0's authentication context class for Kerberos: every
	// kerbgate sign-in with Negotiate.
	ACRKerberos = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos"
	// ACRKerberosChannelBound is a Kerberos sign-in whose channel binding
	// kerbgate verified (epa.token_checking Allow or Require, over TLS, with a
	// client that binds: Windows browsers do, Chromium and curl on Linux do not).
	ACRKerberosChannelBound = "urn:kerbgate:acr:kerberos:channel-bound"
	// ACRPassword is SAML 2.0's class for a password over a protected transport:
	// a password sign-in (identity.AuthMethod "pwd").
	ACRPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

// passwordSignIn reports whether id signed in with the password fallback.
func passwordSignIn(id *identity.Identity) bool { return id != nil && id.AuthMethod == "pwd" }

// amrFor is how id signed in (RFC 8176): "pwd" after the password fallback,
// "kerberos" after Negotiate.
func amrFor(id *identity.Identity) []string {
	if passwordSignIn(id) {
		return []string{"pwd"}
	}
	return []string{"kerberos"}
}

// satisfies reports whether a sign-in of id satisfies class acr.
func satisfies(acr string, id *identity.Identity) bool {
	switch acr {
	case ACRPassword:
		return passwordSignIn(id)
	case ACRKerberos:
		return !passwordSignIn(id)
	case ACRKerberosChannelBound:
		return !passwordSignIn(id) && id.ChannelBound
	}
	return false
}

// acrFor is the class asserted for a sign-in of id asked for with acr_values
// requested: the first requested class the sign-in satisfies (a channel-bound
// sign-in satisfies both Kerberos classes), else the strongest it satisfies.
// acr_values is voluntary (OIDC Core §3.1.2.1): a class kerbgate cannot satisfy does
// not refuse the sign-in; the relying party reads the acr it got.
func acrFor(requested []string, id *identity.Identity) string {
	for _, v := range requested {
		if satisfies(v, id) {
			return v
		}
	}
	switch {
	case passwordSignIn(id):
		return ACRPassword
	case id.ChannelBound:
		return ACRKerberosChannelBound
	}
	return ACRKerberos
}

// acrWantsFreshSignIn reports whether the first class kerbgate knows among
// requested is a Kerberos class a sign-in of id does not satisfy: a session of such
// a sign-in (a password one, or one not channel-bound) is not reused, and a fresh
// Negotiate may satisfy it. Asked for ACRPassword, a session is reused whatever its
// sign-in: a fresh Negotiate would not make it a password one.
func acrWantsFreshSignIn(requested []string, id *identity.Identity) bool {
	for _, v := range requested {
		switch v {
		case ACRKerberos, ACRKerberosChannelBound:
			return !satisfies(v, id)
		case ACRPassword:
			return false
		}
	}
	return false
}

// sessionClaims adds to an ID token the claims of its sign-in: sid (the handle of
// the OIDC browser session it came from, which end_session's id_token_hint names)
// and acr (for a refreshed ID token, which the library gives none).
func sessionClaims(u *oidc.UserInfo, a *authRequest) {
	if a.handle != "" {
		u.AppendClaims("sid", a.handle)
	}
	if acr := a.GetACR(); acr != "" {
		u.AppendClaims("acr", acr)
	}
}

// sessionUse is how the login step may use the browser's OIDC session.
type sessionUse int

const (
	reuseSession sessionUse = iota
	// renewSession: the session stays, but a fresh Negotiate must sign it in
	// again first (Sessions.Begin renews it in place).
	renewSession
	// endSession: its sign-in was ended by end_session elsewhere; the session
	// goes and the browser signs in anew.
	endSession
)

// sessionUse says whether the browser's OIDC session cur may answer request a
// without a fresh Negotiate: not when the request has prompt=login or a max_age the
// session's sign-in is older than, nor when it asks for an acr the session's
// sign-in does not satisfy, nor when the sign-in was ended by end_session.
func (p *Provider) sessionUse(ctx context.Context, a *authRequest, cur *signin.Signed) (sessionUse, error) {
	if err := p.st.ended(ctx, cur.Handle); err != nil {
		if err.Code == reason.StoreUnavailable {
			return endSession, err
		}
		return endSession, nil
	}
	if a.MaxAge != nil {
		if *a.MaxAge == 0 || p.opts.Now().Sub(cur.Since) > time.Duration(*a.MaxAge)*time.Second {
			return renewSession, nil
		}
	}
	if acrWantsFreshSignIn(a.ACRValues, cur.Identity) {
		return renewSession, nil
	}
	return reuseSession, nil
}

// endedPrefix keys the store record that says a sign-in (a browser session's
// handle) was ended by end_session: every code, access token and refresh token
// issued in it is refused from then on. The record lives as long as any token of
// the sign-in could (a refresh family is renewed only through a check of it).
const (
	endedPrefix = "oidc-ended."
	endedApp    = "oidc-ended"
)

// end records that the sign-in handle was ended.
func (s *storage) end(ctx context.Context, handle string) error {
	now := s.now()
	ttl := max(s.p.opts.RefreshTokenTTL, s.p.opts.AccessTokenTTL, s.p.opts.BrowserSessionTTL, signin.DefaultSessionTTL) + codeTTL
	return s.p.opts.Store.PutSession(ctx, endedPrefix+handle, store.Session{AppID: endedApp, CreatedAt: now, ExpiresAt: now.Add(ttl)})
}

// ended is nil while the sign-in handle was not ended (or for "", a record made
// before sign-ins had handles), else the refusal: oidc_invalid_grant (cause
// signed_out), or store_unavailable when the store cannot say (fail closed).
func (s *storage) ended(ctx context.Context, handle string) *reason.Error {
	if handle == "" {
		return nil
	}
	sess, err := s.p.opts.Store.GetSession(ctx, endedPrefix+handle, s.now())
	return endedRefusal(store.SessionRead{Session: sess, Err: err})
}

// endedRefusal is ended's answer from a read of the sign-in's ended-record.
func endedRefusal(r store.SessionRead) *reason.Error {
	switch {
	case errors.Is(r.Err, store.ErrNotFound), errors.Is(r.Err, store.ErrExpired):
		return nil
	case r.Err != nil:
		return store.Refusal("cannot check for a sign-out", "get_session", r.Err)
	case r.Session.AppID != endedApp:
		return nil
	}
	return reason.New(reason.OIDCInvalidGrant, "the sign-in was ended by end_session (RP-initiated logout)", "cause", "signed_out",
		"signed_out_at", r.Session.CreatedAt.UTC().Format(time.RFC3339))
}
