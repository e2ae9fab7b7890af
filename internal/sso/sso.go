// Package sso is the handoff flow of IIS + CAMServer single sign-on: a browser signs in
// with Windows (Negotiate), kerbgate confirms the account in Active Directory, checks
// the application's allowed groups, and redirects back to the application with a
// one-time ssoToken; the application's back end redeems the token for the identity
// and a session.
//
// It owns the /sso/ endpoints and the per-application handoff policy (registered
// redirect URIs, client secret, token and session lifetimes) given as typed Options
// (package setup makes them from the configuration file). It must not verify
// Kerberos, speak LDAP, persist anything itself or read configuration: it composes
// the sign-in core (package signin: the pre-authenticator, kerbgate's own browser
// session and its cookie, the group policy), a Directory and a store.Store. It checks
// client secrets only through clientauth (bounded, rate-limited), and reads the
// client's scheme, origin and address only through frontend.
package sso

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/clientauth"
	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Directory confirms a signed-in user and names its groups (the
// *directory.Directory in production).
type Directory = signin.Directory

// App is one registered application.
type App struct {
	// ID identifies the app in requests (app=ID) and is its client id.
	ID string
	// RedirectURIs are the URIs the browser may be sent back to, compared exactly;
	// the first is the default.
	RedirectURIs []string
	// SecretHash is the client secret's argon2id or bcrypt hash.
	SecretHash string
	// TokenTTL is how long a one-time ssoToken may be redeemed.
	TokenTTL time.Duration
	// SessionTTL is how long an app session lasts.
	SessionTTL time.Duration
	// Groups is who may sign in to the app; nil: anyone signed in.
	Groups *signin.Groups
	// RequireDirectory makes sign-in require the account to be found, and usable,
	// in the directory.
	RequireDirectory bool
}

// Options configure the service.
type Options struct {
	Apps       []App
	CookieName string
	// CookieKeys authenticate the cookie's value (the session id); shared by a farm.
	CookieKeys        *keyset.Set
	BrowserSessionTTL time.Duration
	// SignIn signs a browser in (signin.Negotiate in production).
	SignIn    signin.PreAuthenticator
	Directory Directory // nil: no directory configured
	Store     store.Store
	Reporter  *refusal.Reporter
	Log       *slog.Logger
	// Clients checks the apps' client secrets (bounded, rate-limited, cached);
	// nil makes one with the defaults.
	Clients *clientauth.Authenticator
	// Registerer receives the handoff metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now and Rand are injected for tests.
	Now  func() time.Time
	Rand io.Reader
}

// Service serves the /sso/ endpoints.
type Service struct {
	opts Options
	apps map[string]*App
	// browser is kerbgate's own browser session (browserScope).
	browser *signin.Sessions

	issued, redeemed *prometheus.CounterVec
}

// New checks the options and returns the service.
func New(o Options) (*Service, error) {
	if o.SignIn == nil || o.Store == nil || o.Reporter == nil || o.Log == nil {
		return nil, errors.New("sso: SignIn, Store, Reporter and Log are required")
	}
	if o.CookieName == "" {
		o.CookieName = "kerbgate_session"
	}
	browser := signin.NewSessions(signin.Sessions{
		Store: o.Store, Keys: o.CookieKeys, Purpose: cookiePurpose, CookieName: o.CookieName,
		TTL: o.BrowserSessionTTL, Now: o.Now, Rand: o.Rand,
	})
	o.Now = browser.Now
	if o.Clients == nil {
		o.Clients = clientauth.New(clientauth.Options{})
	}
	s := &Service{opts: o, apps: map[string]*App{}, browser: browser}
	for _, a := range o.Apps {
		if a.RequireDirectory && o.Directory == nil { // a nil Directory would be called
			return nil, fmt.Errorf("sso: app %s requires a directory but none is given", a.ID)
		}
		s.apps[a.ID] = &a
	}
	s.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_sso_tokens_issued_total", Help: "ssoTokens issued, by application.",
	}, []string{"app"})
	s.redeemed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_sso_tokens_redeemed_total", Help: "ssoTokens redeemed, by application.",
	}, []string{"app"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.issued, s.redeemed} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Register adds the /sso/ endpoints to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /sso/login", s.login)
	mux.HandleFunc("POST /sso/redeem", s.redeem)
	mux.HandleFunc("GET /sso/sessions/{id}", s.getSession)
	mux.HandleFunc("DELETE /sso/sessions/{id}", s.deleteSession)
	mux.HandleFunc("GET /sso/logout", s.confirmLogout)
	mux.HandleFunc("POST /sso/logout", s.logout)
}

const maxStateLen = 512

// cookiePurpose binds the browser session cookie's MAC to its use.
const cookiePurpose = "kerbgate-browser-session"

// browserScope is where the browser session holds: the cookie is kerbgate's own and
// goes to no proxied application (path /sso/; not being "/", its https name is
// __Secure-<cookie_name>, as a __Host- name requires Path=/), and the stored session
// belongs to no app.
var browserScope = signin.Scope{Path: "/sso/"}

// login is GET /sso/login?app=ID[&redirect_uri=URI][&state=S].
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, ok := s.apps[q.Get("app")]
	if !ok {
		s.refuse(w, r, reason.New(reason.UnknownApp, "no such app", "app", truncate(q.Get("app"), 64)))
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		redirect = a.RedirectURIs[0]
	} else if !registered(a.RedirectURIs, redirect) {
		// Checked before any sign-in, so a hostile link never yields a token.
		s.refuse(w, r, reason.New(reason.RedirectNotRegistered, "redirect_uri is not registered for the app",
			"app", a.ID, "redirect_uri", truncate(redirect, 256)))
		return
	}
	state := q.Get("state")
	if len(state) > maxStateLen {
		s.refuse(w, r, reason.New(reason.BadRequest, "state parameter too long", "length", len(state)))
		return
	}
	// kerbgate's own browser session spares a returning browser the Negotiate round
	// trip; the directory and group checks still run on every login.
	id, err := s.browser.Load(r, browserScope)
	if err != nil {
		s.refuse(w, r, reason.Of(err))
		return
	}
	if id != nil {
		s.complete(w, r, a, id, redirect, state, true)
		return
	}
	s.opts.SignIn.Authenticate(w, r, func(w http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		if err == nil && res.Identity == nil {
			err = reason.New(reason.Internal, "sign-in did not produce an identity")
		}
		if err != nil {
			s.refuse(w, r, reason.Of(err))
			return
		}
		s.complete(w, r, a, res.Identity, redirect, state, false)
	})
}

// complete runs the directory and group checks, issues the token and redirects.
// signedIn says whether the browser came with a valid browser session; without one,
// a session is started.
func (s *Service) complete(w http.ResponseWriter, r *http.Request, a *App, id *identity.Identity, redirect, state string, signedIn bool) {
	ctx := r.Context()
	now := s.opts.Now()
	admission := signin.Admission{Directory: s.opts.Directory, RequireDirectory: a.RequireDirectory, Groups: a.Groups, Log: s.opts.Log}
	if err := signin.Admit(ctx, admission, id); err != nil {
		s.refuse(w, r, reason.Of(err))
		return
	}
	if !signedIn {
		if err := s.browser.Start(w, r, browserScope, id); err != nil {
			s.refuse(w, r, reason.Of(err))
			return
		}
	}
	token, err := store.NewID(s.opts.Rand)
	if err != nil {
		s.refuse(w, r, reason.New(reason.Internal, "cannot make a token", "error", err.Error()))
		return
	}
	err = s.opts.Store.PutToken(ctx, token, store.Token{
		AppID: a.ID, RedirectURI: redirect, Identity: *id, IssuedAt: now, ExpiresAt: now.Add(a.TokenTTL),
	})
	if err != nil {
		s.refuse(w, r, store.Refusal("cannot store the token", "put_token", err))
		return
	}
	u, err := url.Parse(redirect)
	if err != nil { // registered URIs are validated at load time
		s.refuse(w, r, reason.New(reason.Internal, "registered redirect URI does not parse", "error", err.Error()))
		return
	}
	v := u.Query()
	v.Set("ssoToken", token)
	if state != "" {
		v.Set("state", state)
	}
	u.RawQuery = v.Encode()
	s.issued.WithLabelValues(a.ID).Inc()
	s.opts.Log.Info("ssoToken issued", "app", a.ID, "user", id.Principal, "redirect_uri", redirect)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func registered(uris []string, u string) bool {
	for _, r := range uris {
		if r == u {
			return true
		}
	}
	return false
}

// confirmLogout is GET /sso/logout: a link or an image on any site can make a
// browser send it, so it changes nothing and shows a form that POSTs the sign-out.
func (s *Service) confirmLogout(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	_, _ = io.WriteString(w, confirmLogoutPage)
}

const confirmLogoutPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>Sign out of kerbgate?</h1>
<p>This ends your kerbgate sign-in in this browser. Applications you signed in to keep their own sessions until you sign out of them.</p>
<form method="post" action="/sso/logout"><button type="submit">Sign out</button></form>
</body></html>
`

// logout is POST /sso/logout: it ends kerbgate's browser session, for a same-origin
// request only (frontend.View.SameOrigin), so that another site cannot sign the
// browser out.
func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	v := frontend.From(r)
	if ok, why := v.SameOrigin(r); !ok {
		s.refuse(w, r, reason.New(reason.CrossSiteRequest, "sign-out not from kerbgate's own page",
			"origin", v.Origin(), "seen", why))
		return
	}
	if err := s.browser.End(w, r, browserScope); err != nil {
		// The cookie is gone from this browser, but the session could not be
		// revoked: say so rather than claim a sign-out.
		s.refuse(w, r, reason.Of(err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "You are signed out of kerbgate.")
}

const maxRedeemBody = 8 << 10

// redeem is POST /sso/redeem: the application's back end exchanges the ssoToken for
// the identity and a session.
func (s *Service) redeem(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRedeemBody)
	if err := r.ParseForm(); err != nil {
		s.refuseAPI(w, r, reason.New(reason.BadRequest, "form does not parse", "error", err.Error()))
		return
	}
	a, err := s.authenticateApp(r)
	if err != nil {
		s.refuseAPI(w, r, reason.Of(err))
		return
	}
	token := r.PostForm.Get("ssoToken")
	if token == "" || len(token) > 128 {
		s.refuseAPI(w, r, reason.New(reason.TokenInvalid, "missing or oversized ssoToken", "app", a.ID, "cause", "malformed"))
		return
	}
	now := s.opts.Now()
	t, err := s.opts.Store.TakeToken(r.Context(), token, a.ID, now)
	if err != nil {
		cause := "unknown"
		switch {
		case errors.Is(err, store.ErrOtherApp):
			// The store checked the app inside the atomic take: the token stays
			// redeemable by the app it was issued to.
			cause = "other_app"
		case errors.Is(err, store.ErrTokenUsed):
			cause = "used"
		case errors.Is(err, store.ErrExpired):
			cause = "expired"
		case !errors.Is(err, store.ErrNotFound):
			s.refuseAPI(w, r, store.Refusal("cannot take the token", "take_token", err))
			return
		}
		s.refuseAPI(w, r, reason.New(reason.TokenInvalid, "token cannot be redeemed", "app", a.ID, "cause", cause))
		return
	}
	if t.AppID != a.ID { // the store guarantees it; fail closed all the same
		s.refuseAPI(w, r, reason.New(reason.TokenInvalid, "token belongs to another app",
			"app", a.ID, "token_app", t.AppID, "cause", "other_app"))
		return
	}
	sid, err := store.NewID(s.opts.Rand)
	if err != nil {
		s.refuseAPI(w, r, reason.New(reason.Internal, "cannot make a session id", "error", err.Error()))
		return
	}
	sess := store.Session{AppID: a.ID, Identity: t.Identity, CreatedAt: now, ExpiresAt: now.Add(a.SessionTTL)}
	if err := s.opts.Store.PutSession(r.Context(), sid, sess); err != nil {
		s.refuseAPI(w, r, store.Refusal("cannot store the session", "put_session", err))
		return
	}
	s.redeemed.WithLabelValues(a.ID).Inc()
	s.opts.Log.Info("ssoToken redeemed", "app", a.ID, "user", t.Identity.Principal)
	writeJSON(w, http.StatusOK, sessionResponse(a.ID, sid, sess))
}

// SessionJSON is the session part of redeem and session answers.
type SessionJSON struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Response is what redeem and GET /sso/sessions/{id} answer.
type Response struct {
	App      string            `json:"app"`
	Identity identity.Identity `json:"identity"`
	Session  SessionJSON       `json:"session"`
}

func sessionResponse(appID, sid string, s store.Session) Response {
	return Response{App: appID, Identity: s.Identity, Session: SessionJSON{ID: sid, ExpiresAt: s.ExpiresAt.UTC()}}
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request) {
	a, sid, sess, ok := s.appSession(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, sessionResponse(a.ID, sid, sess))
}

func (s *Service) deleteSession(w http.ResponseWriter, r *http.Request) {
	a, sid, _, ok := s.appSession(w, r)
	if !ok {
		return
	}
	if err := s.opts.Store.DeleteSession(r.Context(), sid); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.refuseAPI(w, r, store.Refusal("cannot revoke the session", "delete_session", err))
		return
	}
	s.opts.Log.Info("session revoked", "app", a.ID)
	w.WriteHeader(http.StatusNoContent)
}

// appSession authenticates the app and loads one of its sessions.
func (s *Service) appSession(w http.ResponseWriter, r *http.Request) (*App, string, store.Session, bool) {
	a, err := s.authenticateApp(r)
	if err != nil {
		s.refuseAPI(w, r, reason.Of(err))
		return nil, "", store.Session{}, false
	}
	sid := r.PathValue("id")
	if sid == "" || len(sid) > 128 {
		s.refuseAPI(w, r, reason.New(reason.SessionNotFound, "malformed session id", "app", a.ID))
		return nil, "", store.Session{}, false
	}
	sess, err := s.opts.Store.GetSession(r.Context(), sid, s.opts.Now())
	if errors.Is(err, store.ErrUnavailable) {
		s.refuseAPI(w, r, store.Refusal("cannot read the session", "get_session", err))
		return nil, "", store.Session{}, false
	}
	if err != nil || sess.AppID != a.ID {
		// Another app's session is "not found": ids do not leak across apps.
		cause := "unknown"
		if err == nil {
			cause = "other_app"
		} else if errors.Is(err, store.ErrExpired) {
			cause = "expired"
		}
		s.refuseAPI(w, r, reason.New(reason.SessionNotFound, "no such session for the app", "app", a.ID, "cause", cause))
		return nil, "", store.Session{}, false
	}
	return a, sid, sess, true
}

// authenticateApp checks the client id and secret (HTTP Basic, or client_id and
// client_secret form fields) through Options.Clients: bounded, rate-limited per
// client id and per client address, and cached for the right secret.
func (s *Service) authenticateApp(r *http.Request) (*App, error) {
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	a, known := s.apps[id]
	hash := ""
	if known {
		hash = a.SecretHash
	}
	if e := s.opts.Clients.Check(id, hash, frontend.From(r).ClientAddr(), sec); e != nil {
		return nil, e
	}
	return a, nil
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	s.opts.Reporter.Refuse(w, r, e)
}

func (s *Service) refuseAPI(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	s.opts.Reporter.RefuseJSON(w, r, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
