package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	stateCookie   = "ssoapp_state"
	sessionCookie = "ssoapp_session"
	stateTTL      = 10 * time.Minute
	// maxSessionTTL caps the app's own session; it also ends when kerbgate's
	// session (session.expires_at in the redeem answer) does.
	maxSessionTTL   = 8 * time.Hour
	maxRedeemAnswer = 1 << 20
)

// Identity is the identity part of kerbgate's redeem answer.
type Identity struct {
	User           string   `json:"user"`
	UPN            string   `json:"upn"`
	SAMAccountName string   `json:"sam_account_name"`
	DisplayName    string   `json:"display_name"`
	Mail           string   `json:"mail"`
	SID            string   `json:"sid"`
	Groups         []string `json:"groups"`
}

// Name is how the page greets the user.
func (id Identity) Name() string {
	for _, s := range []string{id.DisplayName, id.SAMAccountName, id.User} {
		if s != "" {
			return s
		}
	}
	return "unknown user"
}

// redeemAnswer is kerbgate's answer to POST /sso/redeem.
type redeemAnswer struct {
	App      string   `json:"app"`
	Identity Identity `json:"identity"`
	Session  struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"session"`
}

// apiError is kerbgate's error answer to programs.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

type session struct {
	identity Identity
	// kerbgateSession is kerbgate's session id; an application can check it with
	// GET /sso/sessions/{id} or revoke it with DELETE /sso/sessions/{id}.
	kerbgateSession string
	expires         time.Time
}

// App is ssoapp's HTTP handler.
type App struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	mux    *http.ServeMux
	now    func() time.Time
	secure bool // cookies get Secure when PublicURL is https

	mu       sync.Mutex
	sessions map[string]*session
}

// New returns the application. client may be nil (a client with a 10 s timeout).
func New(cfg Config, client *http.Client, log *slog.Logger) (*App, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{
		cfg: cfg, client: client, log: log, mux: http.NewServeMux(), now: time.Now,
		secure:   strings.HasPrefix(cfg.PublicURL, "https://"),
		sessions: map[string]*session{},
	}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /login", a.login)
	a.mux.HandleFunc("GET /callback", a.callback)
	a.mux.HandleFunc("GET /logout", a.logout)
	return a, nil
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ssoapp — {{.}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}dt{font-weight:bold}</style>
</head><body>{{end}}
{{define "bottom"}}</body></html>
{{end}}
{{define "home"}}{{template "top" "Welcome"}}
<h1>Welcome, {{.Name}}</h1>
<dl>
<dt>User</dt><dd>{{.User}}</dd>
<dt>UPN</dt><dd>{{.UPN}}</dd>
<dt>SID</dt><dd>{{.SID}}</dd>
<dt>Groups</dt><dd>{{len .Groups}} groups</dd>
</dl>
<p><a href="/logout">Sign out</a></p>
{{template "bottom"}}{{end}}
{{define "signin"}}{{template "top" "Sign in"}}
<h1>ssoapp</h1>
<p>You are not signed in.</p>
<p><a href="{{.}}">Sign in with Windows</a></p>
{{template "bottom"}}{{end}}
{{define "error"}}{{template "top" "Sign-in failed"}}
<h1>Sign-in failed</h1>
<p>Error: <code>{{.Code}}</code></p>
{{with .Message}}<p>{{.}}</p>{{end}}
<p><a href="/">Try again</a></p>
{{template "bottom"}}{{end}}
`))

func (a *App) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		a.log.Error("rendering page", "page", name, "error", err)
	}
}

func (a *App) fail(w http.ResponseWriter, status int, code, message string) {
	a.render(w, status, "error", apiError{Code: code, Message: message})
}

// home is GET /: the user's identity, or a sign-in link.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	if s := a.session(r); s != nil {
		a.render(w, http.StatusOK, "home", s.identity)
		return
	}
	loginURL, ok := a.startLogin(w)
	if !ok {
		return
	}
	a.render(w, http.StatusOK, "signin", loginURL)
}

// login is GET /login: straight to kerbgate (what the "Sign in with Windows" link
// does, for pages that start sign-in themselves).
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	if loginURL, ok := a.startLogin(w); ok {
		http.Redirect(w, r, loginURL, http.StatusFound)
	}
}

// startLogin sets a fresh state cookie and returns kerbgate's login URL.
func (a *App) startLogin(w http.ResponseWriter) (string, bool) {
	state, err := randomID()
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "internal", "cannot make a random state")
		return "", false
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/callback",
		MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	q := url.Values{"app": {a.cfg.AppID}, "redirect_uri": {a.cfg.PublicURL + "/callback"}, "state": {state}}
	return a.cfg.Kerbgate + "/sso/login?" + q.Encode(), true
}

// callback is GET /callback?ssoToken=…&state=…, where kerbgate sends the browser.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	// The state is single-use: forget it whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/callback", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	c, err := r.Cookie(stateCookie)
	state := q.Get("state")
	if err != nil || c.Value == "" || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		a.log.Warn("callback with a missing or wrong state")
		a.fail(w, http.StatusBadRequest, "state_mismatch",
			"This sign-in did not start here, or took too long. Start again from the home page.")
		return
	}
	token := q.Get("ssoToken")
	if token == "" {
		a.fail(w, http.StatusBadRequest, "token_missing", "kerbgate sent no ssoToken.")
		return
	}

	ans, status, apiErr := a.redeem(r.Context(), token)
	if apiErr != nil {
		a.log.Warn("redeem failed", "status", status, "error", apiErr.Code)
		if status >= 400 && status < 500 {
			status = http.StatusForbidden
		} else {
			status = http.StatusBadGateway
		}
		a.fail(w, status, apiErr.Code, apiErr.Message)
		return
	}

	sid, err := randomID()
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "internal", "cannot make a session id")
		return
	}
	now := a.now()
	expires := now.Add(maxSessionTTL)
	if !ans.Session.ExpiresAt.IsZero() && ans.Session.ExpiresAt.Before(expires) {
		expires = ans.Session.ExpiresAt
	}
	a.mu.Lock()
	for id, s := range a.sessions { // a small app: sweep expired sessions here
		if !now.Before(s.expires) {
			delete(a.sessions, id)
		}
	}
	a.sessions[sid] = &session{identity: ans.Identity, kerbgateSession: ans.Session.ID, expires: expires}
	a.mu.Unlock()
	a.log.Info("signed in", "user", ans.Identity.User)

	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/",
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// redeem exchanges the ssoToken at kerbgate. On failure it returns an error code
// for the page and the HTTP status kerbgate answered (0 if none).
func (a *App) redeem(ctx context.Context, token string) (*redeemAnswer, int, *apiError) {
	body := url.Values{"ssoToken": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.KerbgateBackend+"/sso/redeem", strings.NewReader(body))
	if err != nil {
		return nil, 0, &apiError{Code: "internal", Message: "cannot build the redeem request"}
	}
	req.SetBasicAuth(a.cfg.AppID, a.cfg.Secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.log.Error("redeem request failed", "error", err)
		return nil, 0, &apiError{Code: "kerbgate_unreachable", Message: "kerbgate could not be reached."}
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxRedeemAnswer))
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if err := dec.Decode(&e); err != nil || e.Code == "" {
			e = apiError{Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: "kerbgate answered without an error code."}
		}
		return nil, resp.StatusCode, &e
	}
	var ans redeemAnswer
	if err := dec.Decode(&ans); err != nil {
		a.log.Error("redeem answer does not parse", "error", err)
		return nil, resp.StatusCode, &apiError{Code: "bad_answer", Message: "kerbgate's answer does not parse."}
	}
	if ans.App != a.cfg.AppID || ans.Identity.User == "" {
		a.log.Error("redeem answer is for another app or has no user", "app", ans.App)
		return nil, resp.StatusCode, &apiError{Code: "bad_answer", Message: "kerbgate's answer is not for this application."}
	}
	return &ans, resp.StatusCode, nil
}

// logout is GET /logout: it ends this app's session and sends the browser to
// kerbgate's GET /sso/logout, which asks the user to confirm and then ends
// kerbgate's own browser session with a same-origin POST (a cross-site request
// cannot sign the browser out of kerbgate).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, a.cfg.Kerbgate+"/sso/logout", http.StatusSeeOther)
}

// session returns the request's valid session, or nil.
func (a *App) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, c.Value)
		return nil
	}
	return s
}

// randomID returns 32 random bytes in base64url.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("reading random bytes failed")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
