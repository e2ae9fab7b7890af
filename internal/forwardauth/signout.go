package forwardauth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// maxSignOutBody bounds a sign-out form: it carries rd at most.
const maxSignOutBody = 8 << 10

// signOut is GET or POST /forward-auth/sign-out[?rd=URL]: it ends the browser's
// forward-auth session — deleted from the store, dropped from this node's session
// cache, its parent-domain cookie cleared — and sends the browser to rd (303), or
// says it is signed out. rd is checked against the return allowlist first.
//
// Another site must not sign a browser out: the request must come from kerbgate's
// own origin or from a return_domains host (sameSite). A POST is accepted unless
// the browser says it comes from another site; a GET (a plain link) only when the
// browser says where it comes from and that is one of those sites.
//
// Other nodes of a farm may keep the session in their cache for up to
// session_cache_ttl after the store no longer has it.
func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = noStore
	r.Body = http.MaxBytesReader(w, r.Body, maxSignOutBody)
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, &s.signOutPage, reason.New(reason.BadRequest, "sign-out form does not parse", "error", err.Error()))
		return
	}
	rd := r.Form.Get("rd")
	var back *url.URL
	if rd != "" {
		u, err := s.opts.ReturnURLs.Check(rd)
		if err != nil {
			s.refuse(w, r, &s.signOutPage, reason.New(reason.ReturnURLNotAllowed, "rd is not a return URL the sign-out may use: "+err.Error(),
				"rd", logged(rd)))
			return
		}
		back = u
	}
	v := frontend.From(r)
	if ok, why := s.sameSite(r, v); !ok {
		s.refuse(w, r, &s.signOutPage, reason.New(reason.CrossSiteRequest, "forward-auth sign-out not from kerbgate's origin or a return_domains site",
			"origin", v.Origin(), "method", r.Method, "seen", why))
		return
	}
	sess, sid, err := s.session(r, v)
	user := ""
	if sess != nil {
		user = sess.id.Principal
	}
	s.cache.evict(sid)
	if err == nil {
		err = s.sessions.EndID(w, r, s.scope, sid)
	} else {
		s.sessions.EndID(w, r, s.scope, "") // the cookie goes all the same
	}
	if err != nil {
		// The cookie is gone from this browser, but the session could not be
		// revoked: say so rather than claim a sign-out.
		s.refuse(w, r, &s.signOutPage, err)
		return
	}
	s.opts.Log.Info("forward-auth sign-out", "user", user, "had_session", sid != "", "cookie_domain", s.opts.CookieDomain,
		"rd", logged(rd))
	s.signOutPage.add(resultSignedOut)
	if back != nil {
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "You are signed out.")
}

// sameSite reports whether r was sent from a page of kerbgate's own origin or of a
// return_domains host, and what it judged by. It believes, in this order, the
// Origin header, else Sec-Fetch-Site (same-origin, or none: typed or bookmarked;
// same-site is any host of the registrable domain, so a Referer sent with it must
// be one of those sites), else the Referer. A request with none of them is a POST from a
// program (browsers send Origin with every POST) and goes on; a GET with none of
// them may be a link on another site, followed by a browser that sends neither
// header, and does not.
func (s *Service) sameSite(r *http.Request, v frontend.View) (bool, string) {
	ours := func(origin string) bool {
		if strings.EqualFold(origin, v.Origin()) {
			return true
		}
		_, err := s.opts.ReturnURLs.Check(origin + "/")
		return err == nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o != "null" && ours(o), "origin"
	}
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "same-origin", "none":
		return true, "sec-fetch-site " + site
	case "same-site": // any host of the registrable domain: the Referer, if sent, says which
	case "":
	default:
		return false, "sec-fetch-site " + truncate(site, 16)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return false, "referer malformed"
		}
		return ours(u.Scheme + "://" + u.Host), "referer"
	}
	if site != "" {
		return true, "sec-fetch-site " + site
	}
	return r.Method == http.MethodPost, "none"
}
