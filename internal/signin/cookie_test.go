package signin

import (
	"net/http"
	"testing"
)

// cookieValue finds the cookie Request.Cookie finds, for every well-formed value a
// sealed session id can have, among other cookies and Cookie lines.
func TestCookieValueFindsWhatRequestCookieFinds(t *testing.T) {
	for _, lines := range [][]string{
		{"kg=abc.DEF-_"},
		{"a=1; kg=abc.DEF; b=2"},
		{"a=1;kg=abc.DEF"},
		{"  kg=abc.DEF  ;  b=2"},
		{`kg="abc.DEF"`},
		{"a=1", "kg=abc.DEF"},
		{"kg=first", "kg=second"},
		{"kg2=x; xkg=y; kg=z"},
		{"kg="},
		{"kg"},
		{"a=1; b=2"},
		{""},
		{";;; kg=v;;"},
	} {
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		want := ""
		if c, err := r.Cookie("kg"); err == nil {
			want = c.Value
		}
		if got := cookieValue(r.Header, "kg"); got != want {
			t.Errorf("%q: %q, Request.Cookie %q", lines, got, want)
		}
	}
}
