// Package frontend says what the client sees of a request that may have crossed a
// load balancer or reverse proxy: the scheme and host it asked for, and its own
// address. Behind a TLS-terminating balancer the connection kerbgate accepts is
// plain HTTP from the balancer, yet the browser speaks https: cookies must still be
// Secure, the same-origin check must compare against https://host, and logs and rate
// limits must name the browser, not the balancer.
//
// It owns the rules for believing forwarded headers: X-Forwarded-Proto,
// X-Forwarded-For, X-Forwarded-Host (and any other X-Forwarded-* header a face asks
// for through Forwarded, such as forward-auth's X-Forwarded-Method and
// X-Forwarded-Uri) are believed only from a peer whose address is in the trusted
// proxies; from anyone else they are ignored. A configured external URL is
// authoritative for the scheme and host. Faces (sso, proxy, forward-auth) and the
// refusal reporter read the View; none of them reads those headers itself.
//
// It must not decide policy (what to refuse) nor know configuration files: it is
// given an external URL and a list of prefixes.
package frontend

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Frontend computes the View of requests.
type Frontend struct {
	external *url.URL
	trusted  []netip.Prefix
}

// New returns a Frontend. external (nil for none) is the scheme and host clients
// use; trusted are the addresses whose X-Forwarded-* headers are believed.
func New(external *url.URL, trusted []netip.Prefix) *Frontend {
	f := &Frontend{trusted: append([]netip.Prefix(nil), trusted...)}
	if external != nil {
		f.external = &url.URL{Scheme: strings.ToLower(external.Scheme), Host: strings.ToLower(external.Host)}
	}
	return f
}

// View is what the client sees of one request.
type View struct {
	// Scheme is "https" or "http", as the client's browser used it.
	Scheme string
	// Host is the host[:port] the client asked for.
	Host string
	// Client is the client's IP address: the peer's, or, from a trusted proxy, the
	// nearest untrusted address in X-Forwarded-For.
	Client netip.Addr
	// Peer is the address of the connection (the balancer's, behind one).
	Peer netip.Addr
	// ViaTrustedProxy reports whether the peer is a trusted proxy, whose
	// X-Forwarded-* headers were believed.
	ViaTrustedProxy bool
}

// Secure reports whether the client uses https: cookies must then be Secure.
func (v View) Secure() bool { return v.Scheme == "https" }

// Origin is the client's origin for this request, "https://host[:port]", in the
// form an Origin header carries it.
func (v View) Origin() string { return v.Scheme + "://" + v.Host }

// SameOrigin reports whether r was sent by a page of the client's own origin (so
// not forged by another site), and what it judged by. It believes, in this order,
// the Origin header (equal to Origin), else Sec-Fetch-Site ("same-origin"), else
// the Referer (of the same origin). A request with none of them is not judged
// same-origin: browsers send Origin with every POST, so only non-browsers lack it.
func (v View) SameOrigin(r *http.Request) (bool, string) {
	want := strings.ToLower(v.Origin())
	if o := r.Header.Get("Origin"); o != "" {
		return strings.ToLower(o) == want, "origin"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin", "sec-fetch-site " + site
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return false, "referer malformed"
		}
		return strings.ToLower(u.Scheme+"://"+u.Host) == want, "referer"
	}
	return false, "none"
}

// ClientAddr is Client as text, or "" if unknown.
func (v View) ClientAddr() string {
	if !v.Client.IsValid() {
		return ""
	}
	return v.Client.String()
}

// CookieName is the name a cookie called base must have for this client at path:
// with https, "__Host-"+base when path is "/" (the browser then also forbids a
// Domain and requires Secure), else "__Secure-"+base; over plain HTTP, base. A
// prefix already in base is replaced, so a configured "__Host-x" cannot end up on a
// path the browser would refuse it for.
func (v View) CookieName(base, path string) string {
	return v.CookieNameOf(NewCookieNames(base), path)
}

// CookieNames are the names a cookie called base can have (see CookieName), made
// once: a cookie read on every request does not build its name each time.
type CookieNames struct{ plain, host, secure string }

// NewCookieNames returns the names of a cookie called base.
func NewCookieNames(base string) CookieNames {
	for _, p := range []string{"__Host-", "__Secure-"} {
		if len(base) > len(p) && strings.EqualFold(base[:len(p)], p) {
			base = base[len(p):]
			break
		}
	}
	return CookieNames{plain: base, host: "__Host-" + base, secure: "__Secure-" + base}
}

// CookieNameOf is CookieName with the names made beforehand.
func (v View) CookieNameOf(n CookieNames, path string) string {
	switch {
	case !v.Secure():
		return n.plain
	case path == "/":
		return n.host
	default:
		return n.secure
	}
}

// Of computes the View of r.
func (f *Frontend) Of(r *http.Request) View {
	v := View{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		v.Scheme = "https"
	}
	v.Peer = peerAddr(r.RemoteAddr)
	v.Client = v.Peer
	if f != nil && v.Peer.IsValid() && f.isTrusted(v.Peer) {
		v.ViaTrustedProxy = true
		if p := strings.ToLower(strings.TrimSpace(first(r.Header.Get("X-Forwarded-Proto")))); p == "https" || p == "http" {
			v.Scheme = p
		}
		if h := strings.TrimSpace(first(r.Header.Get("X-Forwarded-Host"))); h != "" && validHost(h) {
			v.Host = h
		}
		v.Client = f.client(r.Header.Values("X-Forwarded-For"), v.Peer)
	}
	if f != nil && f.external != nil {
		v.Scheme, v.Host = f.external.Scheme, f.external.Host
	}
	return v
}

// Forwarded returns the X-Forwarded-* header name of r when the peer is a trusted
// proxy, and "" otherwise (forward-auth reads X-Forwarded-Method and
// X-Forwarded-Uri this way).
func (f *Frontend) Forwarded(r *http.Request, name string) string {
	if f == nil || !f.isTrusted(peerAddr(r.RemoteAddr)) {
		return ""
	}
	return r.Header.Get(name)
}

func (f *Frontend) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client walks X-Forwarded-For from the right (the hop nearest kerbgate): trusted
// proxies are skipped and the first other address is the client. Entries left of
// it were written by the client itself and prove nothing. A malformed entry stops
// the walk at the last address known good.
func (f *Frontend) client(xff []string, peer netip.Addr) netip.Addr {
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !f.isTrusted(client) {
			break
		}
	}
	return client
}

// Middleware computes each request's View once and keeps it in the request's
// context for From.
func (f *Frontend) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := f.Of(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewKey{}, v)))
	})
}

type viewKey struct{}

// WithView returns r with v as its View: forward-auth answers for the application
// a proxy asks about, so cookies it sets are named and flagged for that
// application's scheme, not for the proxy's connection to kerbgate.
func WithView(r *http.Request, v View) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), viewKey{}, v))
}

// From returns the View the Middleware computed for r, or, without it, the View of
// a direct connection (no proxy believed, no external URL).
func From(r *http.Request) View {
	if v, ok := r.Context().Value(viewKey{}).(View); ok {
		return v
	}
	return (*Frontend)(nil).Of(r)
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func first(list string) string {
	s, _, _ := strings.Cut(list, ",")
	return s
}

// validHost accepts a host[:port] made of the characters a host name, an IPv4 or a
// bracketed IPv6 address and a port are written in.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune(".-:[]", c):
		default:
			return false
		}
	}
	return true
}
