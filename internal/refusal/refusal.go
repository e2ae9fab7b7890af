// Package refusal reports a refused request the same way everywhere: a short page that
// tells the person what to do, one log line with the facts for the administrator, and
// a Prometheus counter per reason code.
//
// It owns rendering of *reason.Error values. It must not decide whether to refuse:
// mechanisms and flows do, and hand the refusal here.
package refusal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// HeaderReason is the response header naming the reason code when
// log.expose_reasons is on (for diagnosis with curl and in test suites).
const HeaderReason = "Kerbgate-Reason"

// Reporter renders, logs and counts refusals.
type Reporter struct {
	log           *slog.Logger
	refusals      *prometheus.CounterVec
	exposeReasons bool

	// recent holds the last refusals for GET /debug/last-failures (firstLegCodes, the
	// first leg of every sign-in, excluded).
	mu     sync.Mutex
	recent []Failure
	next   int
	// sampled is the log sampling of floodCodes.
	sampled map[reason.Code]*sampling
}

// Failure is one recent refusal with its facts.
type Failure struct {
	Time   time.Time   `json:"time"`
	Ref    string      `json:"ref"`
	Reason reason.Code `json:"reason"`
	Detail string      `json:"detail"`
	Remote string      `json:"remote"`
	// ClientAddr is the client's address (frontend.View): behind a trusted
	// proxy, from X-Forwarded-For.
	ClientAddr string `json:"client_addr"`
	Method     string `json:"method"`
	// Route is the request's route pattern (Route), never its raw path: a path
	// may carry a session id.
	Route string         `json:"route"`
	Facts map[string]any `json:"facts,omitempty"`
}

// recentSize bounds the failures kept.
const recentSize = 200

// Recent returns the kept refusals, newest first.
func (rp *Reporter) Recent() []Failure {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	out := make([]Failure, 0, len(rp.recent))
	for i := 0; i < len(rp.recent); i++ {
		j := (rp.next - 1 - i + len(rp.recent)) % len(rp.recent)
		out = append(out, rp.recent[j])
	}
	return out
}

func (rp *Reporter) remember(f Failure) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.recent) < recentSize {
		rp.recent = append(rp.recent, f)
		rp.next = len(rp.recent) % recentSize
		return
	}
	rp.recent[rp.next] = f
	rp.next = (rp.next + 1) % recentSize
}

// NewReporter registers the kerbgate_refusals_total counter on reg (with every known
// code pre-set to zero so dashboards see the series) and returns a reporter.
func NewReporter(log *slog.Logger, reg prometheus.Registerer, exposeReasons bool) (*Reporter, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_refusals_total",
		Help: "Requests refused, by stable reason code.",
	}, []string{"reason"})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register refusal metric: %w", err)
	}
	for _, code := range reason.Codes() {
		c.WithLabelValues(string(code))
	}
	return &Reporter{log: log, refusals: c, exposeReasons: exposeReasons}, nil
}

// RefuseJSON writes the refusal for a program (an application's back end) as JSON
// {"error": code, "message": cause}. Programs always get the code: they need it to
// react, and it names no secret.
func (rp *Reporter) RefuseJSON(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	entry := reason.Lookup(e.Code)
	rp.record(r, e, entry, requestRef())
	h := w.Header()
	if rp.exposeReasons {
		h.Set(HeaderReason, string(e.Code))
	}
	if entry.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="kerbgate"`)
	}
	setRetryAfter(h, e)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(entry.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{string(e.Code), entry.Cause})
}

// Note logs and counts a refusal that another layer answers itself (the OpenID
// protocol library writes the OAuth error of an OpenID Provider endpoint): the same
// log line, counter and /debug/last-failures entry as Refuse, and no page.
func (rp *Reporter) Note(r *http.Request, e *reason.Error) {
	rp.record(r, e, reason.Lookup(e.Code), requestRef())
}

// record logs and counts a refusal.
func (rp *Reporter) record(r *http.Request, e *reason.Error, entry reason.Entry, ref string) {
	attrs := make([]any, 0, 6+len(e.Facts))
	attrs = append(attrs,
		slog.String("reason", string(e.Code)),
		slog.String("detail", e.Detail),
		slog.String("ref", ref),
		slog.String("remote", r.RemoteAddr),
		slog.String("client_addr", frontend.From(r).ClientAddr()),
		slog.String("method", r.Method),
		slog.String("route", Route(r)),
	)
	for _, f := range e.Facts {
		attrs = append(attrs, f)
	}
	if e.Fix != "" {
		attrs = append(attrs, slog.String("fix", e.Fix))
	}
	level := slog.LevelWarn
	switch {
	case entry.Status >= 500:
		level = slog.LevelError
	case firstLegCodes[e.Code]:
		level = slog.LevelDebug
	}
	rp.refusals.WithLabelValues(string(e.Code)).Inc()
	if floodCodes[e.Code] {
		// A flood's refusals are counted one by one but logged (and kept for
		// /debug/last-failures) at most once a second per code, with the number
		// left out, so that the flood cannot become a log flood.
		n, ok := rp.sample(e.Code)
		if !ok {
			return
		}
		attrs = append(attrs, slog.Int("suppressed_since_last", n))
	}
	rp.log.Log(r.Context(), level, "request refused", attrs...)
	if !firstLegCodes[e.Code] {
		f := Failure{Time: time.Now().UTC(), Ref: ref, Reason: e.Code, Detail: e.Detail, Remote: r.RemoteAddr,
			ClientAddr: frontend.From(r).ClientAddr(), Method: r.Method, Route: Route(r), Facts: map[string]any{}}
		for _, a := range e.Facts {
			f.Facts[a.Key] = a.Value.Any()
		}
		rp.remember(f)
	}
}

// firstLegCodes are the answers that start a silent sign-in rather than end one:
// the Negotiate challenge (no_token), and the OpenID Provider's prompt=none
// challenge, which a browser with a ticket answers at once (oidc_login_required).
// They are normal, so logged at debug level and not kept among the recent failures.
var firstLegCodes = map[reason.Code]bool{reason.NoToken: true, reason.OIDCLoginRequired: true}

// floodCodes are the refusals a flood produces by the thousand: sampled in the log.
var floodCodes = map[reason.Code]bool{reason.Busy: true, reason.RateLimited: true,
	// The password fallback's answers to a flood of guesses.
	reason.PasswordBackoff: true, reason.PasswordLockedOut: true, reason.PasswordSourceBlocked: true, reason.PasswordBusy: true}

// sample reports whether a refusal of code is to be logged now (at most once a
// second per code), and how many were not logged since the last one.
func (rp *Reporter) sample(code reason.Code) (int, bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.sampled == nil {
		rp.sampled = map[reason.Code]*sampling{}
	}
	st := rp.sampled[code]
	if st == nil {
		st = &sampling{}
		rp.sampled[code] = st
	}
	now := time.Now()
	if now.Sub(st.last) < time.Second {
		st.skipped++
		return 0, false
	}
	n := st.skipped
	st.last, st.skipped = now, 0
	return n, true
}

type sampling struct {
	last    time.Time
	skipped int
}

// setRetryAfter sends e.RetryAfter in whole seconds, rounded up.
func setRetryAfter(h http.Header, e *reason.Error) {
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
}

// Route names the request's route for logs: the pattern the ServeMux matched
// ("GET /sso/sessions/{id}"), or, for a request no pattern routed (the application
// proxy, an unknown path), the path with every segment that could be a secret (8
// characters or more of the alphabets tokens, ids and keys are written in)
// replaced by "{redacted}". Paths of refused requests can carry session ids and
// tokens; logs and /debug/last-failures must not.
func Route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	segs := strings.Split(r.URL.Path, "/")
	for i, s := range segs {
		if secretLike(s) {
			segs[i] = "{redacted}"
		}
	}
	p := strings.Join(segs, "/")
	if len(p) > 256 {
		p = p[:256] + "…"
	}
	return r.Method + " " + p
}

// secretLike reports whether a path segment could be a token, id or key: 8 or
// more characters, all of them base64 (standard or URL), hex or '.'/'~'/'%', and
// at least one digit or one of -_+=% (plain words such as "callback" stay).
func secretLike(s string) bool {
	if len(s) < 8 {
		return false
	}
	marked := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c == '-', c == '_', c == '+', c == '=', c == '%':
			marked = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '~':
		default:
			return false
		}
	}
	return marked || len(s) >= 24
}

// Refuse writes the refusal. Extra headers (such as a Negotiate challenge) must be
// set on w before the call.
func (rp *Reporter) Refuse(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	entry := reason.Lookup(e.Code)
	ref := requestRef()
	rp.record(r, e, entry, ref)

	h := w.Header()
	if rp.exposeReasons {
		h.Set(HeaderReason, string(e.Code))
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	setRetryAfter(h, e)
	page := pageData{Title: entry.Title, Cause: entry.Cause, User: entry.User, Ref: ref}
	if rp.exposeReasons {
		page.Code = string(e.Code)
		page.Admin = e.Admin()
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(entry.Status)
		_ = pageHTML.Execute(w, page)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(entry.Status)
	fmt.Fprintf(w, "%s\n%s\n", page.Title, page.Cause)
	if page.User != "" {
		fmt.Fprintf(w, "What you can do: %s\n", page.User)
	}
	if page.Code != "" {
		fmt.Fprintf(w, "Reason: %s\nAdministrator: %s\n", page.Code, page.Admin)
	}
	fmt.Fprintf(w, "Reference: %s\n", page.Ref)
}

type pageData struct {
	Title, Cause, User, Code, Admin, Ref string
}

var pageHTML = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>{{.Title}}</h1>
<p>{{.Cause}}</p>
{{if .User}}<p><b>What you can do:</b> {{.User}}</p>{{end}}
{{if .Code}}<p><b>Reason:</b> <code>{{.Code}}</code><br><b>Administrator:</b> {{.Admin}}</p>{{end}}
<p style="color:#666">Reference: {{.Ref}}</p>
</body></html>
`))

// requestRef is a short random id that ties the page a person sees to the log line.
func requestRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Report logs and counts a refusal that its caller renders itself (the password
// sign-in form shows the refusal inside the form), and returns the reference the
// page shows.
func (rp *Reporter) Report(r *http.Request, e *reason.Error) (ref string) {
	ref = requestRef()
	rp.record(r, e, reason.Lookup(e.Code), ref)
	return ref
}

// ExposeReasons says whether refusals carry their reason code to the client
// (log.expose_reasons).
func (rp *Reporter) ExposeReasons() bool { return rp.exposeReasons }
