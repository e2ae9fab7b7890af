package pwsignin

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
	"github.com/kerbgate/kerbgate/internal/signin"
)

// Policy is how one listener or application offers the password fallback.
type Policy struct {
	Rules Rules
	// Basic accepts HTTP Basic credentials over TLS (programs without a ticket),
	// and offers them to clients that are not browsers.
	Basic bool
}

// Options configure the password fallback of a kerbgate.
type Options struct {
	Checker *Checker
	// CookieKeys seal the form's CSRF token (the farm's cookie keys).
	CookieKeys *keyset.Set
	Reporter   *refusal.Reporter
	Log        *slog.Logger
	// Default is the listener's policy; Apps override it per scope ("sso:ID",
	// "proxy:ID", "oidc", "whoami").
	Default Policy
	Apps    map[string]Policy
	// PasswordChangeURL, when set, is linked from the form when a password has
	// expired or must change.
	PasswordChangeURL string
	// Domain names the accounts on the form ("EXAMPLE").
	Domain string
}

// Service hands each face its pre-authenticator.
type Service struct{ o Options }

// NewService checks the options.
func NewService(o Options) (*Service, error) {
	if o.Checker == nil || o.CookieKeys == nil || o.Reporter == nil {
		return nil, errors.New("pwsignin: Checker, CookieKeys and Reporter are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}, nil
}

// Checker is the service's password checker.
func (s *Service) Checker() *Checker { return s.o.Checker }

// For returns the pre-authenticator of scope: Negotiate (negotiate, the face's
// usual pre-authenticator) with the password fallback the scope's policy gives.
func (s *Service) For(scope string, negotiate signin.PreAuthenticator) signin.PreAuthenticator {
	p, ok := s.o.Apps[scope]
	if !ok {
		p = s.o.Default
	}
	return &Authenticator{s: s, negotiate: negotiate, policy: p}
}

// Authenticator is Negotiate with the password fallback, as a
// signin.PreAuthenticator.
type Authenticator struct {
	s         *Service
	negotiate signin.PreAuthenticator
	policy    Policy
}

// Method is MethodIWA: Integrated Windows Authentication, with a fallback.
func (a *Authenticator) Method() signin.Method { return signin.MethodIWA }

// Authenticate signs the browser in: the form's POST, Basic credentials (when the
// policy allows), or the challenge the rules choose.
func (a *Authenticator) Authenticate(w http.ResponseWriter, r *http.Request, next signin.Next) {
	if r.Method == http.MethodPost && formBody(r) {
		if a.formPost(w, r, next) {
			return
		}
	}
	auth := r.Header.Get("Authorization")
	if a.policy.Basic && scheme(auth, "Basic") {
		a.basic(w, r, next)
		return
	}
	ch := a.policy.Rules.For(r)
	switch {
	case ch == NegotiateOnly:
		a.negotiate.Authenticate(w, r, next)
		return
	case ch == FormOnly && !scheme(auth, "Negotiate"):
		status := http.StatusOK
		if a.offerBasic(w, r) {
			status = http.StatusUnauthorized
		}
		a.form(w, r, status, "", nil)
		return
	}
	// Negotiate, with the form in place of the page of a 401 the middleware
	// answers (no token, NTLM offered, an expired ticket...). Its other refusals
	// (a forged token, a foreign realm) keep their own page.
	cw := &challengeWriter{ResponseWriter: w}
	a.negotiate.Authenticate(cw, r, func(_ http.ResponseWriter, r *http.Request, res signin.Result, err error) {
		next(w, r, res, err)
	})
	if cw.intercepted {
		a.offerBasic(w, r)
		a.form(w, r, http.StatusUnauthorized, "", nil)
	}
}

// offerBasic adds the Basic challenge for clients that are not browsers, when the
// policy allows Basic, and reports whether it did. Browsers never see it: they
// show Basic as a pop-up.
func (a *Authenticator) offerBasic(w http.ResponseWriter, r *http.Request) bool {
	if !a.policy.Basic || Browser(r.UserAgent()) {
		return false
	}
	w.Header().Add("WWW-Authenticate", `Basic realm="kerbgate", charset="UTF-8"`)
	return true
}

// form renders the sign-in form; refused, when set, is why the last attempt failed.
func (a *Authenticator) form(w http.ResponseWriter, r *http.Request, status int, username string, refused *reason.Error) {
	d := formData{Action: formAction(r), CSRF: csrf(w, r, a.s.o.CookieKeys), Username: username, Domain: a.s.o.Domain}
	if refused != nil {
		entry := reason.Lookup(refused.Code)
		fe := &formError{Title: entry.Title, Cause: entry.Cause, User: entry.User, Ref: a.s.o.Reporter.Report(r, refused)}
		if a.s.o.Reporter.ExposeReasons() {
			fe.Code = string(refused.Code)
			w.Header().Set(refusal.HeaderReason, string(refused.Code))
		}
		if refused.RetryAfter > 0 {
			fe.RetryAfter = int((refused.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(fe.RetryAfter))
		}
		if refused.Code == reason.PasswordExpired || refused.Code == reason.PasswordMustChange {
			d.ChangeURL = a.s.o.PasswordChangeURL
		}
		d.Error = fe
	}
	writeForm(w, status, d)
}

// formPost handles the form's POST and reports whether the request was one. Any
// other POST goes on untouched, its body included (an application's own form, sent
// with a Negotiate token, reaches the application whole): the body is read only up
// to maxFormBody, and given back when it is not the sign-in form.
func (a *Authenticator) formPost(w http.ResponseWriter, r *http.Request, next signin.Next) bool {
	head, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
	if err != nil || len(head) > maxFormBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(head))
	f, err := url.ParseQuery(string(head))
	if err != nil || f.Get(fieldMarker) != markerValue {
		return false
	}
	r.Body, r.PostForm = http.NoBody, f
	username := f.Get(fieldUsername)
	password := f.Get(fieldPassword)
	// Nothing after this point sees the password in the request.
	f.Del(fieldPassword)
	shown := username
	if len(shown) > MaxNameBytes {
		shown = shown[:MaxNameBytes]
	}
	if ok, why := frontend.From(r).SameOrigin(r); !ok && why != "none" {
		a.refuseForm(w, r, shown, reason.New(reason.CrossSiteRequest, "sign-in form posted from another site", "seen", why))
		return true
	}
	if !csrfValid(r, a.s.o.CookieKeys, f.Get(fieldCSRF)) {
		a.refuseForm(w, r, shown, reason.New(reason.FormTokenInvalid, "sign-in form without this browser's token",
			"has_cookie", hasCookie(r), "has_token", f.Get(fieldCSRF) != ""))
		return true
	}
	id, err := a.s.o.Checker.Check(r.Context(), username, password, frontend.From(r).Client)
	if err != nil {
		a.refuseForm(w, r, shown, reason.Of(err))
		return true
	}
	next(w, r, signin.Result{Identity: id, ReturnTo: formAction(r)}, nil)
	return true
}

// refuseForm shows the form again with the refusal. A 401 carries the challenge
// (Negotiate, unless the rules give the form only, where it becomes 403).
func (a *Authenticator) refuseForm(w http.ResponseWriter, r *http.Request, username string, e *reason.Error) {
	status := reason.Lookup(e.Code).Status
	if status == http.StatusUnauthorized {
		if a.policy.Rules.For(r) == FormOnly {
			status = http.StatusForbidden
		} else {
			w.Header().Set("WWW-Authenticate", "Negotiate")
		}
	}
	a.form(w, r, status, username, e)
}

// basic checks HTTP Basic credentials, over TLS only.
func (a *Authenticator) basic(w http.ResponseWriter, r *http.Request, next signin.Next) {
	view := frontend.From(r)
	if !view.Secure() {
		// The password has crossed the network in clear already; it goes no
		// further than this refusal.
		a.refuseBasic(w, r, reason.New(reason.BasicOverHTTP, "Basic credentials over plain http"))
		return
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		a.refuseBasic(w, r, reason.New(reason.PasswordFormInvalid, "Basic credentials do not decode", "field", "authorization"))
		return
	}
	id, err := a.s.o.Checker.Check(r.Context(), user, password, view.Client)
	if err != nil {
		a.refuseBasic(w, r, reason.Of(err))
		return
	}
	// The credentials go no further (the application proxy sends its own).
	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	next(w, r2, signin.Result{Identity: id}, nil)
}

func (a *Authenticator) refuseBasic(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	if reason.Lookup(e.Code).Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="kerbgate", charset="UTF-8"`)
	}
	a.s.o.Reporter.Refuse(w, r, e)
}

// readCloser reads from r and closes c (the request body given back whole).
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// challengeWriter stands between the Negotiate middleware and the client: a 401
// it answers is kept back (header map shared, status and page dropped) so that the
// form can be the page.
type challengeWriter struct {
	http.ResponseWriter
	intercepted bool
}

func (c *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.intercepted = true
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *challengeWriter) Write(b []byte) (int, error) {
	if c.intercepted {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// formBody reports whether r's body is a URL-encoded form.
func formBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// scheme reports whether an Authorization value uses the scheme s.
func scheme(auth, s string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(auth), " ")
	return strings.EqualFold(name, s)
}

func hasCookie(r *http.Request) bool {
	_, err := r.Cookie(frontend.From(r).CookieName(csrfCookie, "/"))
	return err == nil
}
