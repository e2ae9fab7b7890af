package server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The test harness's check that no gateway of any test logs a secret (issue 13,
// item 9): every ssoToken, session id and cookie value that crosses the gateway's
// edge is recorded, and at cleanup the gateway's whole log is searched for each of
// them and for anything shaped like store.NewID's ids.

// secretSeen records the secret values that crossed one gateway's edge.
type secretSeen struct {
	mu     sync.Mutex
	values map[string]string // value → what it is
}

func (s *secretSeen) add(kind, v string) {
	if len(v) < 16 { // too short to be one of ours, and would match by chance
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	s.values[v] = kind
}

// addAny records v whatever its length.
func (s *secretSeen) addAny(kind, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	s.values[v] = kind
}

// peekFormPassword returns the password field of a URL-encoded form body, leaving
// the body for the handler.
func peekFormPassword(r *http.Request) string {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return ""
	}
	v, _ := url.ParseQuery(string(b))
	return v.Get("password")
}

// idShape matches store.NewID's ids (43 base64url characters) standing alone.
var idShape = regexp.MustCompile(`(^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{43})([^A-Za-z0-9_=+/-]|$)`)

var sessionJSON = regexp.MustCompile(`"session":\{"id":"([^"]+)"`)

// tokenJSON finds the tokens of an OAuth token answer.
var tokenJSON = regexp.MustCompile(`"(access_token|refresh_token|id_token)":"([^"]+)"`)

// record wraps the gateway's handler to note the secrets of each exchange.
func (s *secretSeen) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/sso/sessions/"); ok {
			s.add("session id in a request path", rest)
		}
		s.add("ssoToken in a query", r.URL.Query().Get("ssoToken"))
		for _, c := range r.Cookies() {
			s.add("cookie "+c.Name, c.Value)
		}
		// Passwords (the password fallback's form and Basic) are recorded from 8
		// characters: a test password is distinctive enough for that.
		if _, pw, ok := r.BasicAuth(); ok && len(pw) >= 8 {
			s.addAny("Basic password", pw)
		}
		if pw := peekFormPassword(r); len(pw) >= 8 {
			s.addAny("form password", pw)
		}
		s.recordCredentials(r)
		next.ServeHTTP(&secretWriter{ResponseWriter: w, seen: s}, r)
	})
}

// recordCredentials notes what an OpenID client or a bearer sends: its secret
// (Basic or in the body), the code, tokens and hints it presents.
func (s *secretSeen) recordCredentials(r *http.Request) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		s.add("bearer token", cred)
	case strings.EqualFold(scheme, "Basic"):
		if _, secret, ok := r.BasicAuth(); ok {
			s.add("client secret (Basic)", secret)
			s.add("client secret (Basic, encoded)", url.QueryEscape(secret))
		}
	}
	s.add("id_token_hint in a query", r.URL.Query().Get("id_token_hint"))
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return
	}
	form, _ := url.ParseQuery(string(body))
	for _, k := range []string{"client_secret", "code", "code_verifier", "refresh_token", "token"} {
		s.add(k+" in a form", form.Get(k))
	}
}

type secretWriter struct {
	http.ResponseWriter
	seen        *secretSeen
	wroteHeader bool
}

func (w *secretWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		h := w.Header()
		if loc, err := url.Parse(h.Get("Location")); err == nil {
			w.seen.add("ssoToken in a redirect", loc.Query().Get("ssoToken"))
			w.seen.add("code in a redirect", loc.Query().Get("code"))
		}
		for _, c := range (&http.Response{Header: h}).Cookies() {
			w.seen.add("Set-Cookie "+c.Name, c.Value)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *secretWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if m := sessionJSON.FindSubmatch(b); m != nil {
		w.seen.add("session id in an answer", string(m[1]))
	}
	for _, m := range tokenJSON.FindAllSubmatch(b, -1) {
		w.seen.add(string(m[1])+" in an answer", string(m[2]))
	}
	return w.ResponseWriter.Write(b)
}

func (w *secretWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *secretWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// check fails t for every log line holding a recorded secret or an id-shaped value.
func (s *secretSeen) check(t testing.TB, logs string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for v, kind := range s.values {
			if strings.Contains(line, v) {
				t.Errorf("gateway log line %d holds a secret (%s): %s", n, kind, line)
			}
		}
		if m := idShape.FindStringSubmatch(line); m != nil {
			t.Errorf("gateway log line %d holds an id-shaped value %.6s…: %s", n, m[2], line)
		}
	}
}
