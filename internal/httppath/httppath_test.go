package httppath

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      *Error
	}{
		{in: "/", want: "/"},
		{in: "/a/b", want: "/a/b"},
		{in: "/a/b/", want: "/a/b/"},
		{in: "//", want: "/"},
		{in: "//a///b//", want: "/a/b/"},
		{in: "/a/./b", want: "/a/b"},
		{in: "/a/.", want: "/a/"},
		{in: "/a/..", want: "/"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/../c", want: "/a/c"},
		{in: "/a/b/../../c/", want: "/c/"},
		{in: "/a/%2e/b", want: "/a/b"},
		{in: "/a/%2E%2e/b", want: "/b"},
		{in: "/a/x/.%2E/b", want: "/a/b"},
		{in: "/%61dmin/%7E%5F%2D", want: "/admin/~_-"},
		{in: "/a%3bb/%3A", want: "/a%3Bb/%3A"},
		{in: "/a%c3%a9", want: "/a%C3%A9"},
		{in: "/a b", want: "/a%20b"},
		{in: "/\xc3\xa9\"<>", want: "/%C3%A9%22%3C%3E"},
		{in: "/a;b=c/d:e@f!$&'()*+,=", want: "/a;b=c/d:e@f!$&'()*+,="},
		{in: "/100%25", want: "/100%25"},
		{in: "/100%25zz", want: "/100%25zz"},
		{in: "/%25%25", want: "/%25%25"},
		{in: "/a./b", want: "/a./b"},
		{in: "/;jsessionid=1", want: "/;jsessionid=1"},
		{in: "/a/%20/b", want: "/a/%20/b"},

		{in: "", err: ErrNotAbsolute},
		{in: "a/b", err: ErrNotAbsolute},
		{in: "*", err: ErrNotAbsolute},
		{in: "http://h/a", err: ErrNotAbsolute},
		{in: "/a%2fb", err: ErrEncodedSlash},
		{in: "/a%2Fb", err: ErrEncodedSlash},
		{in: "/a%5cb", err: ErrEncodedBackslash},
		{in: "/a%5Cb", err: ErrEncodedBackslash},
		{in: `/a\b`, err: ErrBackslash},
		{in: "/a%00", err: ErrControl},
		{in: "/a%0a", err: ErrControl},
		{in: "/a%7F", err: ErrControl},
		{in: "/a\x00", err: ErrControl},
		{in: "/a\tb", err: ErrControl},
		{in: "/a%", err: ErrMalformedEscape},
		{in: "/a%2", err: ErrMalformedEscape},
		{in: "/a%zz", err: ErrMalformedEscape},
		{in: "/a%u002e", err: ErrMalformedEscape},
		{in: "/%252e/a", err: ErrDoubleEncoding},
		{in: "/%252F", err: ErrDoubleEncoding},
		{in: "/%25%32%66", err: ErrDoubleEncoding},
		{in: "/..", err: ErrAboveRoot},
		{in: "/a/../..", err: ErrAboveRoot},
		{in: "/%2e%2e/a", err: ErrAboveRoot},
		{in: "/a/..;/b", err: ErrDisguisedDot},
		{in: "/a/.;x/b", err: ErrDisguisedDot},
		{in: "/a/.../b", err: ErrDisguisedDot},
		{in: "/a/..%20/b", err: ErrDisguisedDot},
		{in: "/a/.%20/b", err: ErrDisguisedDot},
		{in: "/a/%2e%2e;/b", err: ErrDisguisedDot},
	} {
		got, err := Canonical(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Canonical(%q) = %q, %v; want error %v", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestFoldKey(t *testing.T) {
	for in, want := range map[string]string{
		"/":                          "/",
		"/admin/secret":              "/admin/secret",
		"/ADMIN/Secret":              "/admin/secret",
		"/admin./secret":             "/admin/secret",
		"/admin%20/secret":           "/admin/secret",
		"/admin;x/secret":            "/admin/secret",
		"/admin::$INDEX_ALLOCATION/": "/admin/",
		"/app/":                      "/app/",
		"/%C5%BFecure":               "/secure", // ſ (U+017F) folds with s and S
		"/adm%C4%B1n":                "/admin",  // ı (U+0131) is I in upper case
		"/%E2%84%AAey":               "/key",    // the Kelvin sign K (U+212A) folds with k
		"/a/%20/b":                   "/a/b",
		"/a/;x":                      "/a/",
		"/%FF":                       "/\xff",
	} {
		got := FoldKey(in)
		// Keys compare by folding: compare with the fold of the expected text.
		if got != FoldKey(want) {
			t.Errorf("FoldKey(%q) = %q, want the key of %q (%q)", in, got, want, FoldKey(want))
		}
	}
	if FoldKey("/Admin") == FoldKey("/Admim") {
		t.Error("different names share a key")
	}
}

func TestHasPrefix(t *testing.T) {
	for _, c := range []struct {
		p, prefix string
		want      bool
	}{
		{"/app/x", "/app/", true},
		{"/app", "/app/", true},
		{"/app/", "/app/", true},
		{"/apple", "/app/", false},
		{"/apple", "/app", false},
		{"/app", "/app", true},
		{"/app/x", "/app", true},
		{"/anything", "/", true},
		{"/", "/", true},
	} {
		if got := HasPrefix(c.p, c.prefix); got != c.want {
			t.Errorf("HasPrefix(%q, %q) = %v", c.p, c.prefix, got)
		}
	}
}

// Raw sees what the client sent, also where url.URL.EscapedPath would re-encode
// Path and lose an encoded slash.
func TestRaw(t *testing.T) {
	for target, want := range map[string]string{
		"/a/b?q=1":              "/a/b",
		"/a%2Fb":                "/a%2Fb",
		"/a%2fb/\"x":            "/a%2fb/\"x",
		"/a/%2e/b":              "/a/%2e/b",
		"http://h.test//a/b":    "//a/b",
		"http://h.test":         "/",
		"/%61":                  "/%61",
		"/caf%C3%A9":            "/caf%C3%A9",
		"/a%5Cb":                "/a%5Cb",
		"/a\\b":                 "/a\\b",
		"/app/x/..%2fadmin/sec": "/app/x/..%2fadmin/sec",
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		if got := Raw(&http.Request{URL: u}); got != want {
			t.Errorf("Raw(%q) = %q, want %q", target, got, want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"/", "//a//b/", "/a/./b/../c", "/%2e%2E/x", "/a%2fb", "/a%5C", `/a\b`, "/%00", "/%252e",
		"/%25%32%65", "/a/..;/b", "/a b/\xff", "/%61dmin", "/x/.%2e/", "/a%", "/a/...", "/a/..%20/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Canonical(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || out != "" {
				t.Fatalf("Canonical(%q) = %q, %v", in, out, err)
			}
			return
		}
		again, err := Canonical(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("%q -> %q: not absolute", in, out)
		}
		lower := strings.ToLower(out)
		for _, bad := range []string{"//", "/./", "/../", "\x00", "\\", "%2f", "%5c", "%00", "%2e"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("%q -> %q contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("%q -> %q ends in a dot segment", in, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x21 || c >= 0x7f {
				t.Fatalf("%q -> %q has the raw byte %#x", in, out, c)
			}
			if out[i] == '%' && (i+2 >= len(out) || strings.ToUpper(out[i+1:i+3]) != out[i+1:i+3]) {
				t.Fatalf("%q -> %q: escape not in upper-case hex", in, out)
			}
		}
		if Decode(out) != mustUnescape(t, out) {
			t.Fatalf("Decode(%q) = %q", out, Decode(out))
		}
		_ = FoldKey(out) // never panics
	})
}

func mustUnescape(t *testing.T, s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return u
}

// BenchmarkRoutePath is what Match adds per request: the canonical path and its
// fold key, for a clean path and for one with escapes and dot segments.
func BenchmarkRoutePath(b *testing.B) {
	for name, p := range map[string]string{
		"clean":   "/apps/intranet/reports/2026/q4/summary.html",
		"unclean": "/apps//intranet/./reports/x/../2026/%71%34/summary%20final.html",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c, err := Canonical(p)
				if err != nil {
					b.Fatal(err)
				}
				_ = FoldKey(c)
			}
		})
	}
}
