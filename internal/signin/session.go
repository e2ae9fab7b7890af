package signin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/store"
)

// maxCookieValue bounds the cookie value read: a sealed session id is far shorter.
const maxCookieValue = 128

// Sessions keeps browsers signed in: a session (the identity, an expiry) in the store
// under a random id, and that id in a cookie sealed with the farm's cookie keys, so
// that any node of a farm reads what another wrote and nobody forges one. One
// Sessions serves one kind of session (Purpose); a Scope says where a session holds.
type Sessions struct {
	Store store.Sessions
	// Keys seal and open the cookie's value.
	Keys *keyset.Set
	// Purpose binds the cookie's MAC to its use: one face's cookie never opens as
	// another's.
	Purpose string
	// CookieName is the cookie's base name; on https it is prefixed __Host- or
	// __Secure- (frontend.View.CookieName).
	CookieName string
	TTL        time.Duration
	Now        func() time.Time
	Rand       io.Reader // nil: crypto/rand

	names frontend.CookieNames // of CookieName, made by NewSessions
}

// DefaultSessionTTL is how long a session lasts when Sessions.TTL is not set.
const DefaultSessionTTL = 8 * time.Hour

// NewSessions returns s, completed with its defaults where a field is zero: keys
// made at random (one node, and sessions end with the process), DefaultSessionTTL,
// the system clock. Store, Purpose and CookieName are the caller's.
func NewSessions(s Sessions) *Sessions {
	if s.Keys == nil {
		s.Keys = keyset.Random()
	}
	if s.TTL <= 0 {
		s.TTL = DefaultSessionTTL
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.names = frontend.NewCookieNames(s.CookieName)
	return &s
}

// Scope is where a session holds: the cookie's path (and domain), and the
// application the stored session is bound to ("" for kerbgate's own browser
// session).
type Scope struct {
	Path  string
	AppID string
	// Domain is the cookie's Domain attribute: "" for a host-only cookie, or a
	// parent domain ("example.com") whose every host receives it (forward-auth's
	// one sign-in for all apps under it).
	Domain string
}

// cookieName is the cookie's name for the client v. A cookie with a Domain cannot
// be __Host- (the browser refuses one with a Domain): it is __Secure- on https.
func (s *Sessions) cookieName(v frontend.View, sc Scope) string {
	path := sc.Path
	if sc.Domain != "" {
		path = "" // named as a cookie not at "/": __Secure-
	}
	names := s.names
	if names == (frontend.CookieNames{}) { // a Sessions not made by NewSessions
		names = frontend.NewCookieNames(s.CookieName)
	}
	return v.CookieNameOf(names, path)
}

// id returns the session id sealed in the request's cookie, or "" without a valid
// one (absent, oversized, forged, or sealed with a retired key).
func (s *Sessions) id(r *http.Request, sc Scope) string {
	return s.IDFor(r, frontend.From(r), sc)
}

// IDFor returns the session id sealed in the request's cookie for the client v (its
// scheme names the cookie), or "" without a valid one. Forward-auth reads the
// cookie of the application a proxy asks about, whose view is not the request's.
func (s *Sessions) IDFor(r *http.Request, v frontend.View, sc Scope) string {
	value := cookieValue(r.Header, s.cookieName(v, sc))
	if value == "" || len(value) > maxCookieValue {
		return ""
	}
	sid, ok := s.Keys.Open(s.Purpose, value)
	if !ok {
		return ""
	}
	return sid
}

// Signed is a browser's session as a face sees it: who signed in, when, and a handle
// naming the session.
type Signed struct {
	Identity *identity.Identity
	// Since is when the sign-in behind the session happened: the session's start,
	// or its last renewal by a fresh sign-in (Begin).
	Since time.Time
	// Handle names the session in records that outlive the request (the tokens a
	// face issued in it) without being its id: a digest of the id under the
	// session's purpose, from which the id cannot be recovered. It is not a
	// credential, but it is not logged either.
	Handle string
}

// cookieValue returns the value of the first cookie called name in h's Cookie
// headers (its quotes removed), as Request.Cookie does, without parsing every
// cookie of the request into a slice first.
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			n, v, ok := strings.Cut(part, "=")
			if !ok || n != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// Load returns the identity of the request's session in sc, or nil without a valid
// one. When the store cannot be asked the error is a store_unavailable refusal: the
// caller refuses rather than sign the browser in again.
func (s *Sessions) Load(r *http.Request, sc Scope) (*identity.Identity, error) {
	cur, err := s.Current(r, sc)
	if cur == nil {
		return nil, err
	}
	return cur.Identity, nil
}

// Current is Load with the session's time and handle.
func (s *Sessions) Current(r *http.Request, sc Scope) (*Signed, error) {
	sid := s.id(r, sc)
	sess, err := s.Get(r.Context(), sid, sc)
	if sess == nil {
		return nil, err
	}
	return &Signed{Identity: &sess.Identity, Since: sess.CreatedAt, Handle: s.handle(sid)}, nil
}

// handle is the Handle of session id sid.
func (s *Sessions) handle(sid string) string {
	h := sha256.Sum256([]byte(s.Purpose + "\x00session-handle\x00" + sid))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Get returns the session sid (from IDFor) if it is in sc and has not expired,
// else nil; "" is no session. When the store cannot be asked the error is a
// store_unavailable refusal.
func (s *Sessions) Get(ctx context.Context, sid string, sc Scope) (*store.Session, error) {
	if sid == "" {
		return nil, nil
	}
	sess, err := s.Store.GetSession(ctx, sid, s.Now())
	if errors.Is(err, store.ErrUnavailable) {
		return nil, sc.refusal("cannot read the session", "get_session", err)
	}
	if err != nil || sess.AppID != sc.AppID {
		return nil, nil
	}
	return &sess, nil
}

// Start stores a new session for id in sc and sets its cookie.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, sc Scope, id *identity.Identity) error {
	_, err := s.start(w, r, sc, id, "")
	return err
}

// Begin records a fresh sign-in of id in the request's browser: when the browser's
// session in sc is the same account's, it is renewed in place (same id and handle,
// Since now, a full TTL again), so that what a face tied to the session stays tied
// to it; otherwise that session (another account's) is revoked and a new one
// started.
func (s *Sessions) Begin(w http.ResponseWriter, r *http.Request, sc Scope, id *identity.Identity) (*Signed, error) {
	sid := s.id(r, sc)
	if sid != "" {
		sess, err := s.Store.GetSession(r.Context(), sid, s.Now())
		switch {
		case errors.Is(err, store.ErrUnavailable):
			return nil, sc.refusal("cannot read the session", "get_session", err)
		case err == nil && sess.AppID == sc.AppID && sess.Identity.SID != "" && sess.Identity.SID == id.SID:
			// renewed below under the same id
		case err == nil:
			if err := s.Store.DeleteSession(r.Context(), sid); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, sc.refusal("cannot revoke the session", "delete_session", err)
			}
			sid = ""
		default:
			sid = ""
		}
	}
	return s.start(w, r, sc, id, sid)
}

// start stores a session for id under sid (a new id when "") and sets its cookie.
func (s *Sessions) start(w http.ResponseWriter, r *http.Request, sc Scope, id *identity.Identity, sid string) (*Signed, error) {
	if sid == "" {
		var err error
		if sid, err = store.NewID(s.Rand); err != nil {
			return nil, reason.New(reason.Internal, "cannot make a session id", "error", err.Error())
		}
	}
	now := s.Now()
	if err := s.Store.PutSession(r.Context(), sid, store.Session{
		AppID: sc.AppID, Identity: *id, CreatedAt: now, ExpiresAt: now.Add(s.TTL),
	}); err != nil {
		var e *reason.Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, sc.refusal("cannot store the session", "put_session", err)
	}
	http.SetCookie(w, s.cookie(r, sc, s.Keys.Seal(s.Purpose, sid), int(s.TTL/time.Second)))
	return &Signed{Identity: id, Since: now, Handle: s.handle(sid)}, nil
}

// End revokes the request's session in sc, if any, and clears its cookie. The cookie
// goes even when the store cannot revoke the session; the error then says so.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request, sc Scope) error {
	return s.EndID(w, r, sc, s.id(r, sc))
}

// EndID is End for the session sid (from IDFor; "": none, only the cookie is
// cleared).
func (s *Sessions) EndID(w http.ResponseWriter, r *http.Request, sc Scope, sid string) error {
	var err error
	if sid != "" {
		err = s.Store.DeleteSession(r.Context(), sid)
	}
	http.SetCookie(w, s.cookie(r, sc, "", -1))
	if errors.Is(err, store.ErrUnavailable) {
		return sc.refusal("cannot revoke the session", "delete_session", err)
	}
	return nil
}

// cookie is the session cookie: HttpOnly, SameSite=Lax, Secure (and __Host- or
// __Secure- named) whenever the browser uses https.
func (s *Sessions) cookie(r *http.Request, sc Scope, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(frontend.From(r), sc), Value: value, Path: sc.Path, Domain: sc.Domain, MaxAge: maxAge,
		HttpOnly: true, Secure: frontend.From(r).Secure(), SameSite: http.SameSiteLaxMode}
}

// refusal is the store's refusal with the scope's app among the facts.
func (sc Scope) refusal(detail, op string, err error) *reason.Error {
	if sc.AppID != "" {
		return store.Refusal(detail, op, err, "app", sc.AppID)
	}
	return store.Refusal(detail, op, err)
}
