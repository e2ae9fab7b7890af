package oidcprovider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store"
)

// authRequestTTL bounds how long an authorization request waits for the sign-in.
const authRequestTTL = 5 * time.Minute

// codeTTL is how long an authorization code may be redeemed; signedInTTL how long
// the browser has from the login step to the library's callback.
const (
	codeTTL     = time.Minute
	signedInTTL = time.Minute
)

// accessAppPrefix marks an access token's record in the store's sessions: the
// token's id keys a session of app "oidc-access:CLIENT" holding the identity.
const accessAppPrefix = "oidc-access:"

// Store token kinds (store.Token.AppID) of the authorization code flow.
const (
	signedInKind = "oidc-signed-in"
	codeKind     = "oidc-code"
)

// requestPurpose binds the authorization request's seal to its use.
const requestPurpose = "kerbgate-oidc-authorization-request"

// authRequest is one authorization request, from the authorization endpoint to the
// code's redemption. Its fields travel sealed (Request), so that any node of a farm
// serves any step.
type authRequest struct {
	Request
	// ID is the sealed request until the sign-in, then the key of the signed-in
	// record in the store.
	ID       string
	sealed   string
	identity *identity.Identity // nil until signed in
	subject  string
	// authTime is when the browser signed in with Negotiate (the OIDC browser
	// session's start or renewal), not when the request was answered.
	authTime time.Time
	// handle names the sign-in (the OIDC browser session, signin.Signed.Handle):
	// the tokens issued from it end when it is signed out.
	handle string
	// acr is the class asserted for a refresh (a code's is worked out from the
	// request and the identity).
	acr string
}

// Request is what the authorization request asked for.
type Request struct {
	ClientID      string              `json:"c"`
	RedirectURI   string              `json:"r"`
	State         string              `json:"s,omitempty"`
	Nonce         string              `json:"n,omitempty"`
	Scopes        []string            `json:"sc"`
	ResponseMode  oidc.ResponseMode   `json:"rm,omitempty"`
	CodeChallenge *oidc.CodeChallenge `json:"pk,omitempty"`
	PromptNone    bool                `json:"pn,omitempty"`
	// MaxAge is the oldest sign-in, in seconds, the request accepts (max_age;
	// prompt=login makes it 0: a fresh Negotiate).
	MaxAge    *uint     `json:"ma,omitempty"`
	ACRValues []string  `json:"acr,omitempty"`
	Created   time.Time `json:"t"`
}

// signedInRecord is what a signed-in request's and a code's store tokens hold
// besides the identity (in store.Token's RedirectURI) and the sign-in's time (its
// IssuedAt).
type signedInRecord struct {
	Sealed string `json:"q"`
	Handle string `json:"h,omitempty"`
}

func (a *authRequest) GetID() string                         { return a.ID }
func (a *authRequest) GetAudience() []string                 { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.CodeChallenge }
func (a *authRequest) GetNonce() string                      { return a.Nonce }
func (a *authRequest) GetRedirectURI() string                { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                   { return a.Scopes }
func (a *authRequest) GetState() string                      { return a.State }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.identity != nil }

// GetAMR is how the user signed in (amrFor).
func (a *authRequest) GetAMR() []string { return amrFor(a.identity) }

// GetACR is the class asserted for the sign-in (acrFor), once signed in.
func (a *authRequest) GetACR() string {
	if a.acr != "" || a.identity == nil {
		return a.acr
	}
	return acrFor(a.ACRValues, a.identity)
}

// storage is what the protocol library keeps and asks: authorization requests and
// codes, access tokens, clients, keys and claims.
//
// Nothing of a sign-in is kept in one node's memory: the authorization request
// travels sealed with the farm's cookie keys (the login step's id); the signed-in
// request and the code are store tokens, each taken once, atomically, farm-wide;
// access tokens are store records. The only state in memory is the signed-in
// request while its code is made (within the login step's HTTP request, or the
// library's callback's for a sign-in recorded before an upgrade).
type storage struct {
	p *Provider

	mu      sync.Mutex
	pending map[string]pendingRequest // signed-in key -> request, while its code is made
}

// pendingRequest is a signed-in request waiting for SaveAuthCode, since when it
// waits (not its sign-in's time, which may be hours old: a reused session's).
type pendingRequest struct {
	a     *authRequest
	since time.Time
}

func newStorage(p *Provider) *storage {
	return &storage{p: p, pending: map[string]pendingRequest{}}
}

var errNotFound = errors.New("oidcprovider: not found")

func (s *storage) now() time.Time { return s.p.opts.Now() }

// open returns the request sealed in id, or an error when it is forged, sealed with
// a retired key or older than authRequestTTL.
func (s *storage) open(sealed string) (*authRequest, error) {
	if len(sealed) > 8<<10 {
		return nil, errNotFound
	}
	v, ok := s.p.browser.Keys.Open(requestPurpose, sealed)
	if !ok {
		return nil, errNotFound
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, errNotFound
	}
	var req Request
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, errNotFound
	}
	if age := s.now().Sub(req.Created); age < 0 || age >= authRequestTTL {
		return nil, errNotFound
	}
	return &authRequest{Request: req, ID: sealed, sealed: sealed}, nil
}

// authRequest returns the request of the login step's id.
func (s *storage) authRequest(id string) (*authRequest, error) { return s.open(id) }

// taken rebuilds a signed-in request from its store token.
func (s *storage) taken(id string, t store.Token) (*authRequest, error) {
	rec := signedInRecord{Sealed: t.RedirectURI} // a record of a node without sign-in handles
	if strings.HasPrefix(t.RedirectURI, "{") && json.Unmarshal([]byte(t.RedirectURI), &rec) != nil {
		return nil, errNotFound
	}
	a, err := s.open(rec.Sealed)
	if err != nil {
		return nil, err
	}
	a.ID = id
	a.handle = rec.Handle
	idt := t.Identity
	a.identity = &idt
	a.subject = signingkeys.Subject(s.p.opts.Issuer, idt.SID)
	a.authTime = t.IssuedAt
	return a, nil
}

// CreateAuthRequest seals a validated authorization request. PKCE is S256 only,
// and required of public clients.
func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.p.clients[r.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	var challenge *oidc.CodeChallenge
	if r.CodeChallenge != "" {
		if r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
			return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
		}
		challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	} else if c.SecretHash == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("a public client must use PKCE (S256)")
	}
	if r.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("only the code flow is supported")
	}
	// The library keeps the standard scopes whatever the client; the client's
	// configured scopes decide here (offline_access only when listed).
	scopes := slices.DeleteFunc(slices.Clone(r.Scopes), func(sc string) bool { return !c.IsScopeAllowed(sc) })
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	req := Request{
		ClientID: r.ClientID, RedirectURI: r.RedirectURI, State: r.State, Nonce: r.Nonce,
		Scopes: scopes, ResponseMode: r.ResponseMode, CodeChallenge: challenge,
		PromptNone: slices.Contains(r.Prompt, oidc.PromptNone), MaxAge: r.MaxAge, Created: s.now(),
	}
	if len(r.ACRValues) > 0 && len(r.ACRValues) <= 16 {
		req.ACRValues = r.ACRValues
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	sealed := s.p.browser.Keys.Seal(requestPurpose, base64.RawURLEncoding.EncodeToString(b))
	return &authRequest{Request: req, ID: sealed, sealed: sealed}, nil
}

// AuthRequestByID is the library's callback taking the signed-in request: once.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	t, err := s.p.opts.Store.TakeToken(ctx, id, signedInKind, s.now())
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown, used or expired authorization request")
	}
	a, err := s.taken(id, t)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired authorization request")
	}
	requestInfoOf(ctx).signedIn(a.ClientID, a.identity)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, p := range s.pending { // bounded: entries of abandoned callbacks go
		if now.Sub(p.since) >= signedInTTL {
			delete(s.pending, k)
		}
	}
	s.pending[id] = pendingRequest{a: a, since: now}
	return a, nil
}

// codeID is the id a code seals: the random key k, and the handle of the sign-in
// it was issued in ("" for none).
func codeID(k, handle string) string {
	if handle == "" {
		return k
	}
	return k + "." + handle
}

// codeHandle is the sign-in handle sealed in code, "" when it holds none (a code
// of the library's callback, of a node before, or not a code).
func (s *storage) codeHandle(code string) string {
	id, err := s.p.crypto.Decrypt(code)
	if err != nil {
		return ""
	}
	_, handle, _ := strings.Cut(id, ".")
	return handle
}

// AuthRequestByCode takes the code from the store: of two redemptions anywhere in a
// farm at most one succeeds. The library then checks the client and the verifier.
// The sign-in's ended-record is read in the same store operation when the code
// names its sign-in (codeID).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ri := requestInfoOf(ctx)
	var ids []string
	handle := s.codeHandle(code)
	if handle != "" {
		ids = []string{endedPrefix + handle}
	}
	t, reads, err := s.p.opts.Store.TakeTokenReading(ctx, code, codeKind, s.now(), ids)
	if err != nil {
		ri.refuse(codeRefusal(err))
		if errors.Is(err, store.ErrUnavailable) {
			return nil, oidc.ErrServerError().WithDescription("cannot take the code")
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	a, err := s.taken(code, t)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	ri.user = a.identity.Principal
	ended := s.ended
	if handle != "" && handle == a.handle { // read with the take
		ended = func(context.Context, string) *reason.Error { return endedRefusal(reads[0]) }
	}
	if err := ended(ctx, a.handle); err != nil {
		ri.refuse(err)
		if err.Code != reason.OIDCInvalidGrant {
			return nil, oidc.ErrServerError().WithDescription("cannot check the sign-in")
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the sign-in was ended")
	}
	return a, nil
}

// codeRefusal is the refusal of a code or refresh token the store would not give.
func codeRefusal(err error) *reason.Error {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return store.Refusal("cannot take the code or refresh token", "take_token", err)
	case errors.Is(err, store.ErrTokenUsed):
		return reason.New(reason.OIDCInvalidGrant, "used before", "cause", "used")
	case errors.Is(err, store.ErrExpired):
		return reason.New(reason.OIDCInvalidGrant, "expired", "cause", "expired")
	}
	return reason.New(reason.OIDCInvalidGrant, "unknown (never issued, or another client's)", "cause", "unknown")
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	s.mu.Lock()
	p, ok := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if !ok {
		return errNotFound
	}
	a, now := p.a, s.now()
	rec, _ := json.Marshal(signedInRecord{Sealed: a.sealed, Handle: a.handle})
	return s.p.opts.Store.PutToken(ctx, code, store.Token{
		AppID: codeKind, RedirectURI: string(rec), Identity: *a.identity, IssuedAt: a.authTime, ExpiresAt: now.Add(codeTTL),
	})
}

// hold keeps a signed-in request for SaveAuthCode while issueCode makes its code;
// release drops it.
func (s *storage) hold(a *authRequest) {
	s.mu.Lock()
	s.pending[a.ID] = pendingRequest{a: a, since: s.now()}
	s.mu.Unlock()
}

func (s *storage) release(id string) { _ = s.DeleteAuthRequest(context.Background(), id) }

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
	return nil
}

// CreateAccessToken issues a self-contained access token (accesstoken.go): its
// claims travel sealed in it, so that userinfo answers on any node of a farm with
// one store read (its liveness). Nothing is written to the store unless the claims
// do not fit the token (the group claims).
func (s *storage) CreateAccessToken(ctx context.Context, r op.TokenRequest) (string, time.Time, error) {
	a, family := grant(r)
	if a == nil {
		return "", time.Time{}, oidc.ErrServerError().WithDescription("unsupported token request")
	}
	return s.accessToken(ctx, a, family)
}

func (s *storage) accessToken(ctx context.Context, a *authRequest, family string) (string, time.Time, error) {
	rnd := s.p.opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	now := s.now().Truncate(time.Second) // the token carries seconds
	exp := now.Add(s.p.opts.AccessTokenTTL)
	// The token carries its grant: userinfo answers the claims of these scopes
	// only (groups only to a grant of them).
	c, err := newAccessClaims(rnd, a.ClientID, family, a.handle, now, exp, a.identity, a.Scopes)
	if err != nil {
		return "", time.Time{}, err
	}
	if c.inStore {
		who := *a.identity
		if !slices.Contains(c.scopes, ScopeGroups) {
			who.Groups, who.GroupNames = nil, nil
		}
		err := s.p.opts.Store.PutSession(ctx, claimsPrefix+c.key(), store.Session{AppID: claimsApp + a.ClientID, Identity: who, CreatedAt: now, ExpiresAt: exp})
		if err != nil {
			return "", time.Time{}, err
		}
	}
	return c.tokenID(), exp, nil
}

// grant returns the signed-in request behind a token request, and its refresh
// family ("" for a code without offline_access).
func grant(r any) (*authRequest, string) {
	switch v := r.(type) {
	case *authRequest:
		if v.identity != nil {
			return v, ""
		}
	case *refreshRequest:
		return v.a, v.family
	}
	return nil, ""
}

// Refresh tokens rotate: each use takes the token (atomically, farm-wide) and
// issues the next one of the same family. A token of the family used twice means
// it was stolen: the whole family is revoked (its record deleted), and with it
// every refresh token and access token it issued.
const (
	refreshKind        = "oidc-refresh"
	familyAppPrefix    = "oidc-family:"
	maxRefreshTokenLen = 256
)

// refreshRecord is what a refresh token's store token holds beside the identity
// and the sign-in's time (its IssuedAt).
type refreshRecord struct {
	ClientID string   `json:"c"`
	Scopes   []string `json:"sc"`
	Handle   string   `json:"h,omitempty"`
	ACR      string   `json:"a,omitempty"`
}

// refreshRequest is a refresh token redeemed.
type refreshRequest struct {
	a      *authRequest
	family string
}

func (r *refreshRequest) GetAMR() []string             { return r.a.GetAMR() }
func (r *refreshRequest) GetAudience() []string        { return r.a.GetAudience() }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.a.authTime }
func (r *refreshRequest) GetClientID() string          { return r.a.ClientID }
func (r *refreshRequest) GetScopes() []string          { return r.a.Scopes }
func (r *refreshRequest) GetSubject() string           { return r.a.subject }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.a.Scopes = sc }

// familyOf returns the family a refresh token names (FAMILY.RANDOM).
func familyOf(token string) (string, bool) {
	if len(token) > maxRefreshTokenLen {
		return "", false
	}
	f, rest, ok := strings.Cut(token, ".")
	return f, ok && f != "" && rest != ""
}

// CreateAccessAndRefreshTokens issues an access token and the next refresh token of
// the family (a new family for a code).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, r op.TokenRequest, _ string) (string, string, time.Time, error) {
	a, family := grant(r)
	if a == nil {
		return "", "", time.Time{}, oidc.ErrServerError().WithDescription("unsupported token request")
	}
	now := s.now()
	if family == "" {
		f, err := store.NewID(s.p.opts.Rand)
		if err != nil {
			return "", "", time.Time{}, err
		}
		family = f
	}
	// The family lives as long as its newest refresh token. Its record names the
	// account (for the log, and the subject at revocation) and nothing more: every
	// use of an access token of the family reads it.
	err := s.p.opts.Store.PutSession(ctx, family, store.Session{
		AppID: familyAppPrefix + a.ClientID, Identity: identity.Identity{Principal: a.identity.Principal, SID: a.identity.SID},
		CreatedAt: now, ExpiresAt: now.Add(s.p.opts.RefreshTokenTTL),
	})
	if err != nil {
		return "", "", time.Time{}, err
	}
	rnd, err := store.NewID(s.p.opts.Rand)
	if err != nil {
		return "", "", time.Time{}, err
	}
	refresh := family + "." + rnd
	rec, _ := json.Marshal(refreshRecord{ClientID: a.ClientID, Scopes: a.Scopes, Handle: a.handle, ACR: a.GetACR()})
	err = s.p.opts.Store.PutToken(ctx, refresh, store.Token{
		AppID: refreshKind, RedirectURI: string(rec), Identity: *a.identity, IssuedAt: a.authTime, ExpiresAt: now.Add(s.p.opts.RefreshTokenTTL),
	})
	if err != nil {
		return "", "", time.Time{}, err
	}
	access, exp, err := s.accessToken(ctx, a, family)
	return access, refresh, exp, err
}

// TokenRequestByRefreshToken takes the refresh token. A token used before revokes
// its family.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	ri := requestInfoOf(ctx)
	family, ok := familyOf(token)
	if !ok {
		ri.refuse(reason.New(reason.OIDCInvalidGrant, "not a refresh token of kerbgate's", "cause", "malformed"))
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	t, err := s.p.opts.Store.TakeToken(ctx, token, refreshKind, s.now())
	if errors.Is(err, store.ErrTokenUsed) {
		e := reason.New(reason.RefreshTokenReused, "refresh token used twice: its family is revoked", "family", family[:min(8, len(family))]+"…")
		if fam, ferr := s.p.opts.Store.GetSession(ctx, family, s.now()); ferr == nil {
			ri.user = fam.Identity.Principal
			s.p.metrics.refreshReuses.WithLabelValues(s.p.clientLabel(strings.TrimPrefix(fam.AppID, familyAppPrefix))).Inc()
		} else {
			s.p.metrics.refreshReuses.WithLabelValues(s.p.clientLabel(ri.client)).Inc()
		}
		if derr := s.p.opts.Store.DeleteSession(ctx, family); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			e.Facts = append(e.Facts, slog.String("revoke_error", derr.Error()))
		}
		ri.refuse(e)
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	if err != nil {
		ri.refuse(codeRefusal(err))
		if errors.Is(err, store.ErrUnavailable) {
			return nil, oidc.ErrServerError().WithDescription("cannot take the refresh token")
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	var rec refreshRecord
	if json.Unmarshal([]byte(t.RedirectURI), &rec) != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
	}
	ri.user = t.Identity.Principal
	if err := s.ended(ctx, rec.Handle); err != nil {
		ri.refuse(err)
		if err.Code != reason.OIDCInvalidGrant { // the store cannot say: fail closed, keep the family
			return nil, oidc.ErrServerError().WithDescription("cannot check the sign-in")
		}
		if derr := s.p.opts.Store.DeleteSession(ctx, family); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			err.Facts = append(err.Facts, slog.String("revoke_error", derr.Error()))
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the sign-in was ended")
	}
	if fam, err := s.p.opts.Store.GetSession(ctx, family, s.now()); err != nil || fam.AppID != familyAppPrefix+rec.ClientID {
		ri.refuse(reason.New(reason.OIDCInvalidGrant, "the refresh token's family was revoked", "cause", "revoked"))
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token revoked")
	}
	idt := t.Identity
	a := &authRequest{Request: Request{ClientID: rec.ClientID, Scopes: rec.Scopes}, identity: &idt,
		subject: signingkeys.Subject(s.p.opts.Issuer, idt.SID), authTime: t.IssuedAt, handle: rec.Handle, acr: rec.ACR}
	return &refreshRequest{a: a, family: family}, nil
}

// TerminateSession is not called: TerminateSessionFromRequest answers instead.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest is end_session (RP-initiated logout) with an
// id_token_hint the library verified (without one nobody is signed out, so that a
// link on another site cannot sign a browser out). It ends the sign-in the hint was
// issued in (its sid), and the browser's OIDC session when it is the hint's user's:
// the session, and every access and refresh token issued in either, to any client.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	ri := requestInfoOf(ctx)
	ri.client = req.ClientID
	if req.UserID == "" || req.IDTokenHintClaims == nil {
		ri.logout = "no_hint"
		return req.RedirectURI, nil
	}
	var handles []string
	if sid := req.IDTokenHintClaims.SessionID; sid != "" && len(sid) <= 64 {
		handles = append(handles, sid)
	}
	user := ""
	if ri.r != nil && ri.w != nil {
		cur, err := s.p.browser.Current(ri.r, s.p.browserScope())
		if err != nil {
			ri.refuse(reason.Of(err))
			return "", oidc.ErrServerError().WithDescription("cannot read the session")
		}
		if cur != nil && signingkeys.Subject(s.p.opts.Issuer, cur.Identity.SID) == req.UserID { // another user's session stays
			if err := s.p.browser.End(ri.w, ri.r, s.p.browserScope()); err != nil {
				ri.refuse(reason.Of(err))
				return "", oidc.ErrServerError().WithDescription("cannot end the session")
			}
			user = cur.Identity.Principal
			if !slices.Contains(handles, cur.Handle) {
				handles = append(handles, cur.Handle)
			}
		}
	}
	for _, h := range handles {
		if err := s.end(ctx, h); err != nil {
			ri.refuse(store.Refusal("cannot record the sign-out", "put_session", err))
			return "", oidc.ErrServerError().WithDescription("cannot end the sign-in")
		}
	}
	ri.user = user
	ri.logout = "signed_out"
	// user is "" when the browser held no session of the hint's user (the sub is
	// not logged: it is shaped like a secret id).
	s.p.opts.Log.Info("oidc sign-out", "client", req.ClientID, "user", user, "sign_ins_ended", len(handles), "browser_session_ended", user != "")
	return req.RedirectURI, nil
}

// RevokeToken revokes an access token (its record) or a refresh token (its whole
// family), of the calling client only; an unknown token is not an error (RFC 7009).
func (s *storage) RevokeToken(ctx context.Context, token, subject, clientID string) *oidc.Error {
	ri := requestInfoOf(ctx)
	ri.client = clientID
	if isAccessClaims(token) {
		return s.revokeAccessClaims(ctx, ri, token, subject, clientID)
	}
	if family, ok := familyOf(token); ok {
		if fam, err := s.p.opts.Store.GetSession(ctx, family, s.now()); err == nil && fam.AppID == familyAppPrefix+clientID {
			if err := s.p.opts.Store.DeleteSession(ctx, family); err != nil && !errors.Is(err, store.ErrNotFound) {
				ri.refuse(store.Refusal("cannot revoke the refresh token", "delete_session", err))
				return oidc.ErrServerError()
			}
			ri.user, ri.revoked = fam.Identity.Principal, true
		}
		return nil
	}
	sess, err := s.p.opts.Store.GetSession(ctx, token, s.now())
	if err != nil {
		return nil
	}
	if app, ok := parseAccessApp(sess.AppID); ok && app.client == clientID {
		if err := s.p.opts.Store.DeleteSession(ctx, token); err != nil && !errors.Is(err, store.ErrNotFound) {
			ri.refuse(store.Refusal("cannot revoke the access token", "delete_session", err))
			return oidc.ErrServerError()
		}
		ri.user, ri.revoked = sess.Identity.Principal, true
	}
	return nil
}

// revokeAccessClaims revokes a self-contained access token of clientID: a
// revocation record, kept until the token expires, that every node reads at every
// use of the token. The library hands over the token's id with its subject when it
// opened the token's seal, and a client's string as it came with no subject: only
// the first is believed.
func (s *storage) revokeAccessClaims(ctx context.Context, ri *requestInfo, tokenID, subject, clientID string) *oidc.Error {
	c, err := parseAccessClaims(tokenID)
	now := s.now()
	if subject == "" || err != nil || c.client != clientID || !now.Before(c.expires) {
		return nil // unknown, another client's, or dead already: nothing to revoke (RFC 7009)
	}
	err = s.p.opts.Store.PutSession(ctx, revokedPrefix+c.key(), store.Session{AppID: revokedApp, CreatedAt: now, ExpiresAt: c.expires})
	if err != nil {
		ri.refuse(store.Refusal("cannot revoke the access token", "put_session", err))
		return oidc.ErrServerError()
	}
	ri.user, ri.revoked = c.principal, true
	return nil
}

// GetRefreshTokenInfo tells the revocation endpoint whether token is a live refresh
// token of clientID (without spending it).
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	family, ok := familyOf(token)
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	fam, err := s.p.opts.Store.GetSession(ctx, family, s.now())
	if err != nil || fam.AppID != familyAppPrefix+clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return signingkeys.Subject(s.p.opts.Issuer, fam.Identity.SID), token, nil
}

// signingKey is one of Options.SigningKeys.
type signingKey struct{ k jose.JSONWebKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Algorithm)
}
func (k signingKey) Key() any   { return k.k.Key }
func (k signingKey) ID() string { return k.k.KeyID }

// publicKey is the published half of a signing key.
type publicKey struct{ k jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Public().Key }
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.p.opts.SigningKeys[len(s.p.opts.SigningKeys)-1]}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	var algs []jose.SignatureAlgorithm
	for _, k := range s.p.opts.SigningKeys {
		if a := jose.SignatureAlgorithm(k.Algorithm); !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	keys := make([]op.Key, 0, len(s.p.opts.SigningKeys))
	for _, k := range s.p.opts.SigningKeys {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.p.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret through clientauth:
// bounded, rate-limited per client id and address.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	hash := ""
	if c, ok := s.p.clients[id]; ok {
		hash = c.SecretHash
	}
	ri := requestInfoOf(ctx)
	ri.client = id
	if err := s.p.opts.Secrets.Check(id, hash, ri.addr, secret); err != nil {
		ri.refuse(err)
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// SetUserinfoFromScopes is not used: SetUserinfoFromRequest answers instead.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the signed-in account's claims in the ID token.
func (s *storage) SetUserinfoFromRequest(_ context.Context, u *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	a, _ := grant(r)
	if a == nil {
		return oidc.ErrServerError().WithDescription("unsupported token request")
	}
	s.fill(u, a.subject, a.identity, scopes, s.p.clients[a.ClientID], true)
	sessionClaims(u, a)
	return nil
}

// SetUserinfoFromToken answers userinfo as the library would call it; kerbgate
// serves the endpoint itself (userinfo.go), with the same answer.
func (s *storage) SetUserinfoFromToken(ctx context.Context, u *oidc.UserInfo, tokenID, subject, _ string) error {
	ri := requestInfoOf(ctx)
	t, e := s.liveAccess(ctx, ri, tokenID, subject)
	if e != nil {
		ri.refuse(e)
		return oidc.ErrAccessDenied().WithDescription("invalid or expired access token")
	}
	c := s.p.clients[t.client]
	s.fill(u, subject, &t.who, t.userinfoScopes(c), c, false)
	return nil
}

// userinfoScopes are the scopes whose claims userinfo and introspection answer
// for t, of client c: the scopes its grant holds (OIDC Core §5.4: a client that
// may ask for profile but asked for openid alone gets sub alone). A token that
// does not say (of kerbgate before: a version-1 self-contained token, or one keyed
// by a store record, which held no scopes) gets the client's configured scopes
// (openid, profile and email when it lists none), as before. The group claims come
// only with a token whose grant included them (its claims hold the groups only
// then).
func (t *liveToken) userinfoScopes(c *client) []string {
	if t.scopes != nil {
		return t.scopes
	}
	if c != nil && c.Scopes != nil {
		return c.Scopes
	}
	return defaultScopes
}

var defaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}

// fill sets the claims of id that scopes ask for, for client c: in an ID token
// (idToken), or at userinfo. The group claims (ScopeGroups) are c's share of the
// groups (setGroupClaims); userinfo has them only when the access token's grant
// included the scope (its record holds the groups only then).
func (s *storage) fill(u *oidc.UserInfo, sub string, id *identity.Identity, scopes []string, c *client, idToken bool) {
	u.Subject = sub
	if slices.Contains(scopes, oidc.ScopeProfile) {
		u.PreferredUsername = preferredUsername(id)
		u.Name = id.DisplayName
		if id.UPN != "" {
			u.AppendClaims("upn", id.UPN)
		}
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && id.Mail != "" {
		u.Email = id.Mail
		u.EmailVerified = oidc.Bool(true)
	}
	if c != nil && slices.Contains(scopes, ScopeGroups) && (idToken || len(id.Groups) > 0) {
		setGroupClaims(u, id, c.GroupNames, idToken, s.p.op.UserinfoEndpoint().Absolute(s.p.opts.Issuer))
	}
}

// preferredUsername is the account's UPN, else its principal name.
func preferredUsername(id *identity.Identity) string {
	if id.UPN != "" {
		return id.UPN
	}
	return id.Principal
}

// SetIntrospectionFromToken answers introspection (RFC 7662) of a live access token,
// to the client it was issued to only: another client learns {"active":false}.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	ri := requestInfoOf(ctx)
	ri.client = clientID
	t, e := s.liveAccess(ctx, ri, tokenID, subject)
	if e != nil {
		ri.refuse(e)
		return oidc.ErrAccessDenied()
	}
	if t.client != clientID {
		return oidc.ErrAccessDenied()
	}
	// The claims of the grant's scopes, as userinfo's (without the group claims);
	// scope names the grant when the token carries it (RFC 7662 §2.2).
	var u oidc.UserInfo
	s.fill(&u, subject, &t.who, t.userinfoScopes(s.p.clients[t.client]), nil, false)
	resp.SetUserInfo(&u)
	resp.Scope = t.scopes
	resp.ClientID = t.client
	resp.TokenType = oidc.BearerToken
	resp.Audience = oidc.Audience{t.client}
	resp.Issuer = s.p.opts.Issuer
	resp.Expiration = oidc.FromTime(t.expires)
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.Username = u.PreferredUsername // the profile's, as preferred_username
	resp.AuthenticationMethodsReferences = []string{"kerberos"}
	return nil
}

// liveToken is a live access token: the client it was issued to, the account's
// claims, its times, and the scopes granted (nil when the token does not say).
type liveToken struct {
	client          string
	who             identity.Identity
	issued, expires time.Time
	scopes          []string
}

// liveAccess returns the access token whose sealed id and subject are tokenID and
// subject when it is alive — not expired, revoked, of a revoked refresh family,
// nor of a sign-in ended by end_session — else the refusal (oidc_invalid_token
// with its cause, or store_unavailable: the store cannot say, fail closed). It
// records the account (and the client, when the request named none) on ri.
func (s *storage) liveAccess(ctx context.Context, ri *requestInfo, tokenID, subject string) (*liveToken, *reason.Error) {
	if !isAccessClaims(tokenID) {
		return s.liveAccessRecord(ctx, ri, tokenID, subject)
	}
	c, err := parseAccessClaims(tokenID)
	if err != nil {
		return nil, reason.New(reason.OIDCInvalidToken, "the access token does not read", "cause", "malformed")
	}
	if ri.client == "" {
		ri.client = c.client
	}
	ri.user = c.principal
	now := s.now()
	if !now.Before(c.expires) {
		return nil, reason.New(reason.OIDCInvalidToken, "no live access token", "cause", "expired")
	}
	// One read: the token's revocation, its sign-in's end, its refresh family and
	// (when they did not fit the token) its claims.
	key := c.key()
	var ids [4]string
	ids[0] = revokedPrefix + key
	n, ended, family, claims := 1, -1, -1, -1
	if c.handle != "" {
		ended, ids[n] = n, endedPrefix+c.handle
		n++
	}
	if c.family != "" {
		family, ids[n] = n, c.family
		n++
	}
	if c.inStore {
		claims, ids[n] = n, claimsPrefix+key
		n++
	}
	reads, err := s.p.opts.Store.GetSessions(ctx, ids[:n], now)
	if err != nil {
		return nil, store.Refusal("cannot check the access token", "get_sessions", err)
	}
	switch r := reads[0]; {
	case errors.Is(r.Err, store.ErrNotFound), errors.Is(r.Err, store.ErrExpired):
	case r.Err != nil:
		return nil, store.Refusal("cannot check the access token's revocation", "get_sessions", r.Err)
	case r.Session.AppID == revokedApp:
		return nil, reason.New(reason.OIDCInvalidToken, "the access token was revoked", "cause", "revoked")
	}
	if ended >= 0 {
		if e := endedRefusal(reads[ended]); e != nil {
			return nil, asTokenRefusal(e)
		}
	}
	if family >= 0 {
		if r := reads[family]; r.Err != nil || r.Session.AppID != familyAppPrefix+c.client {
			return nil, reason.New(reason.OIDCInvalidToken, "the access token's refresh family was revoked", "cause", "family_revoked")
		}
	}
	t := &liveToken{client: c.client, who: c.identity(), issued: c.issued, expires: c.expires, scopes: c.scopes}
	if claims >= 0 {
		r := reads[claims]
		if r.Err != nil || r.Session.AppID != claimsApp+c.client {
			return nil, reason.New(reason.OIDCInvalidToken, "no live access token", "cause", "unknown_or_revoked")
		}
		t.who = r.Session.Identity
		ri.user = t.who.Principal
	}
	return t, nil
}

// liveAccessRecord is liveAccess for an access token of kerbgate before its
// tokens were self-contained: its id keys a store record holding the identity
// (accessApp), read first, then the records of its liveness in one read. Such
// tokens are answered until they expire (the access token lifetime after an
// upgrade).
func (s *storage) liveAccessRecord(ctx context.Context, ri *requestInfo, tokenID, subject string) (*liveToken, *reason.Error) {
	now := s.now()
	sess, err := s.p.opts.Store.GetSession(ctx, tokenID, now)
	app, ok := parseAccessApp(sess.AppID)
	if err != nil || !ok {
		cause := "unknown_or_revoked"
		switch {
		case errors.Is(err, store.ErrExpired):
			cause = "expired"
		case errors.Is(err, store.ErrUnavailable):
			return nil, store.Refusal("cannot read the access token", "get_session", err)
		}
		return nil, reason.New(reason.OIDCInvalidToken, "no live access token", "cause", cause)
	}
	ri.user = sess.Identity.Principal
	if ri.client == "" {
		ri.client = app.client
	}
	if signingkeys.Subject(s.p.opts.Issuer, sess.Identity.SID) != subject {
		return nil, reason.New(reason.OIDCInvalidToken, "the access token's subject is not its record's", "cause", "malformed")
	}
	var ids []string
	if app.handle != "" {
		ids = append(ids, endedPrefix+app.handle)
	}
	if app.family != "" {
		ids = append(ids, app.family)
	}
	if len(ids) > 0 {
		reads, err := s.p.opts.Store.GetSessions(ctx, ids, now)
		if err != nil {
			return nil, store.Refusal("cannot check the access token", "get_sessions", err)
		}
		if app.handle != "" {
			if e := endedRefusal(reads[0]); e != nil {
				return nil, asTokenRefusal(e)
			}
			reads = reads[1:]
		}
		if app.family != "" {
			if r := reads[0]; r.Err != nil || r.Session.AppID != familyAppPrefix+app.client {
				return nil, reason.New(reason.OIDCInvalidToken, "the access token's refresh family was revoked", "cause", "family_revoked")
			}
		}
	}
	return &liveToken{client: app.client, who: sess.Identity, issued: sess.CreatedAt, expires: sess.ExpiresAt}, nil
}

// asTokenRefusal is an ended sign-in's refusal (oidc_invalid_grant) as an access
// token's (oidc_invalid_token), with the same facts.
func asTokenRefusal(e *reason.Error) *reason.Error {
	if e.Code != reason.OIDCInvalidGrant {
		return e
	}
	t := *e
	t.Code = reason.OIDCInvalidToken
	return &t
}

// accessApp is what an access token's store record names in its AppID:
// "oidc-access:CLIENT/FAMILY/HANDLE" (family and handle may be empty).
type accessApp struct{ client, family, handle string }

func (a accessApp) String() string {
	return accessAppPrefix + a.client + "/" + a.family + "/" + a.handle
}

func parseAccessApp(app string) (accessApp, bool) {
	rest, ok := strings.CutPrefix(app, accessAppPrefix)
	if !ok {
		return accessApp{}, false
	}
	parts := strings.SplitN(rest, "/", 3)
	a := accessApp{client: parts[0]}
	if len(parts) > 1 {
		a.family = parts[1]
	}
	if len(parts) > 2 {
		a.handle = parts[2]
	}
	return a, a.client != ""
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnauthorizedClient()
}

func (s *storage) Health(context.Context) error { return nil }

// client adapts a Client to the library's view of one.
type client struct {
	Client
	p *Provider
}

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.SecretHash == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	if c.IsScopeAllowed(oidc.ScopeOfflineAccess) {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	}
	return []oidc.GrantType{oidc.GrantTypeCode}
}
func (c *client) LoginURL(id string) string { return c.p.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration { return c.p.opts.IDTokenTTL }
func (c *client) DevMode() bool                  { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool {
	if c.Scopes == nil {
		return scope == oidc.ScopeOpenID || scope == oidc.ScopeProfile || scope == oidc.ScopeEmail
	}
	return slices.Contains(c.Scopes, scope)
}
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
	_ op.Client                    = (*client)(nil)
)

var _ op.CanTerminateSessionFromRequest = (*storage)(nil)
