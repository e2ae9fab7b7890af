package pwsignin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/keyset"
)

// The form's field names. The marker tells the form's POST from any other request
// to the same address.
const (
	fieldMarker   = "kerbgate_signin"
	markerValue   = "password"
	fieldCSRF     = "kerbgate_csrf"
	fieldUsername = "username"
	fieldPassword = "password"
)

// csrfCookie is the form cookie's base name; csrfPurpose binds its MAC.
const (
	csrfCookie  = "kerbgate_form"
	csrfPurpose = "kerbgate-password-form"
	// maxFormBody bounds the form's POST body.
	maxFormBody = 16 << 10
)

// formCSS is the page's only style, inline: the page loads nothing from anywhere.
const formCSS = `body{font-family:system-ui,sans-serif;margin:0;padding:1rem;line-height:1.5;color:#1b1b1b;background:#fff}
main{max-width:24rem;margin:2rem auto}
label{display:block;font-weight:600}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.5rem;font-size:1rem;border:1px solid #555;border-radius:4px}
input:focus,button:focus,a:focus{outline:3px solid #1a5fb4;outline-offset:2px}
button{padding:.6rem 1.2rem;font-size:1rem;color:#fff;background:#1a5fb4;border:0;border-radius:4px}
#error{border-left:4px solid #a51d2d;padding:.25rem .75rem;background:#fbeaea}
.ref{color:#555;font-size:.875rem}`

// formCSP allows the inline style by its hash and nothing else. It has no
// form-action: browsers apply it to the redirects that follow the POST too, and a
// sign-in ends by redirecting to an application's registered address.
var formCSP = func() string {
	sum := sha256.Sum256([]byte(formCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'"
}()

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>` + formCSS + `</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p id="hint">Sign in with your {{.Domain}} account: your user name (or DOMAIN\name, or name@domain) and password.</p>
{{with .Error}}<div id="error" role="alert">
<p><strong>{{.Title}}.</strong> {{.Cause}}</p>
{{if .User}}<p>{{.User}}</p>{{end}}
{{if .RetryAfter}}<p>Try again in {{.RetryAfter}} seconds.</p>{{end}}
{{if $.ChangeURL}}<p><a href="{{$.ChangeURL}}">Change your password</a></p>{{end}}
<p class="ref">Reference: {{.Ref}}{{if .Code}} ({{.Code}}){{end}}</p>
</div>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="` + fieldMarker + `" value="` + markerValue + `">
<input type="hidden" name="` + fieldCSRF + `" value="{{.CSRF}}">
<p><label for="username">User name</label>
<input id="username" name="` + fieldUsername + `" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="{{.Username}}" aria-describedby="hint{{if .Error}} error{{end}}"{{if .Error}} aria-invalid="true"{{end}}{{if not .Username}} autofocus{{end}}></p>
<p><label for="password">Password</label>
<input id="password" name="` + fieldPassword + `" type="password" autocomplete="current-password" required maxlength="256"{{if .Username}} autofocus{{end}}></p>
<p><button type="submit">Sign in</button></p>
</form>
</main>
</body>
</html>
`))

type formData struct {
	Action, CSRF, Username, Domain, ChangeURL string
	Error                                     *formError
}

type formError struct {
	Title, Cause, User, Ref, Code string
	RetryAfter                    int
}

// formAction is where the form posts: the address the browser asked for, path and
// query only (a relative reference kerbgate's own origin resolves), never another
// host.
func formAction(r *http.Request) string {
	u := r.URL.RequestURI()
	if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") || strings.HasPrefix(u, `/\`) {
		return "/"
	}
	return u
}

// csrf returns the form's token for the browser of r, setting the form cookie when
// the browser has none: the cookie holds a random value (HttpOnly, SameSite=Strict,
// Secure on https), the token is that value sealed with the cookie keys. Only a page
// of kerbgate's origin, read by the browser that holds the cookie, can post both.
func csrf(w http.ResponseWriter, r *http.Request, keys *keyset.Set) string {
	name := frontend.From(r).CookieName(csrfCookie, "/")
	if c, err := r.Cookie(name); err == nil && len(c.Value) == 43 {
		return keys.Seal(csrfPurpose, c.Value)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: "/", MaxAge: 12 * 3600, HttpOnly: true,
		Secure: frontend.From(r).Secure(), SameSite: http.SameSiteStrictMode})
	return keys.Seal(csrfPurpose, v)
}

// csrfValid checks the posted token against the browser's form cookie, in
// constant time.
func csrfValid(r *http.Request, keys *keyset.Set, token string) bool {
	c, err := r.Cookie(frontend.From(r).CookieName(csrfCookie, "/"))
	if err != nil || len(token) > 256 {
		return false
	}
	v, ok := keys.Open(csrfPurpose, token)
	return ok && subtle.ConstantTimeCompare([]byte(v), []byte(c.Value)) == 1
}

// writeForm renders the form with status.
func writeForm(w http.ResponseWriter, status int, d formData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers post "Origin: null"
	h.Set("Content-Security-Policy", formCSP)
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = formPage.Execute(w, d)
}
