package oidcprovider

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/kerbgate/kerbgate/internal/frontend"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// This file is kerbgate's view of what the protocol library answers: every
// authorization, token grant, introspection, revocation and logout is counted by
// client and outcome, and every refusal gets kerbgate's reason code, one log line
// with its facts and kerbgate_refusals_total (refusal.Reporter.Note), while the
// answer itself stays the library's OAuth error. It also adapts the two endpoints
// whose client authentication the library gets wrong (introspection takes only HTTP
// Basic there, and answers refusals in plain text), and discovery's claims.

// metrics are the provider's Prometheus series. The client label is a registered
// client id, or "-" for a request naming none or one that is not registered (what a
// request names never becomes a label: the series stay bounded).
type metrics struct {
	authorizations *prometheus.CounterVec   // client, outcome
	tokens         *prometheus.CounterVec   // client, grant_type, outcome
	tokenSeconds   *prometheus.HistogramVec // grant_type
	refreshReuses  *prometheus.CounterVec   // client
	introspections *prometheus.CounterVec   // client, outcome
	revocations    *prometheus.CounterVec   // client, outcome
	logouts        *prometheus.CounterVec   // client, outcome
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_authorizations_total",
			Help: "OpenID Provider authorization requests answered, by client and outcome: ok (a code), or the reason code of the refusal (oidc_login_required counts prompt=none challenges; a browser with a ticket answers at once and is counted again).",
		}, []string{"client", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_token_requests_total",
			Help: "OpenID Provider token endpoint requests, by client, grant type and outcome: ok, or the reason code of the refusal.",
		}, []string{"client", "grant_type", "outcome"}),
		tokenSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kerbgate_oidc_token_request_duration_seconds",
			Help:    "Time to answer an OpenID Provider token request, by grant type.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"grant_type"}),
		refreshReuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_refresh_token_reuses_total",
			Help: "Refresh tokens presented a second time (each revoked its family), by client.",
		}, []string{"client"}),
		introspections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_introspections_total",
			Help: "OpenID Provider token introspections, by client and outcome: active, inactive, or the reason code of the refusal.",
		}, []string{"client", "outcome"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_revocations_total",
			Help: "OpenID Provider token revocations, by client and outcome: revoked, unknown_token (answered 200, RFC 7009), or the reason code of the refusal.",
		}, []string{"client", "outcome"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerbgate_oidc_logouts_total",
			Help: "OpenID Provider end_session requests, by client and outcome: signed_out, no_hint (nobody signed out: no id_token_hint), or the reason code of the refusal.",
		}, []string{"client", "outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.authorizations, m.tokens, m.tokenSeconds, m.refreshReuses, m.introspections, m.revocations, m.logouts} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// clientLabel is id when it is a registered client, else "-".
func (p *Provider) clientLabel(id string) string {
	if _, ok := p.clients[id]; ok {
		return id
	}
	return "-"
}

// grantLabel is the grant type as a label.
func grantLabel(g string) string {
	switch oidc.GrantType(g) {
	case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken:
		return g
	}
	return "other"
}

// requestKey carries a request's requestInfo to the storage and the library's log.
type requestKey struct{}

// requestInfo is what kerbgate learns of one request while the library serves it:
// the client's address (for clientauth), the request and its writer (end_session's
// cookie), the log it belongs in, and the facts of its outcome the storage found.
type requestInfo struct {
	addr string
	w    http.ResponseWriter
	r    *http.Request
	log  *slog.Logger

	client  string        // the client id the request authenticated as or named
	user    string        // the signed-in account, when the request came to one
	refusal *reason.Error // the precise refusal, when the storage refused
	revoked bool          // revocation ended a token
	logout  string        // end_session's outcome
}

// requestInfoOf returns ctx's requestInfo, or a detached one (nothing is recorded).
func requestInfoOf(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// refuse records the precise refusal (the first one wins: it is the cause).
func (ri *requestInfo) refuse(e *reason.Error) {
	if ri.refusal == nil {
		ri.refusal = e
	}
}

func (ri *requestInfo) signedIn(client string, id *identity.Identity) {
	ri.client = client
	if id != nil {
		ri.user = id.Principal
	}
}

// withRequestInfo gives r a requestInfo for the storage and the library's log.
func (p *Provider) withRequestInfo(w http.ResponseWriter, r *http.Request) (*http.Request, *requestInfo) {
	ri := &requestInfo{addr: frontend.From(r).ClientAddr(), w: w, log: p.opts.Log}
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, ri))
	ri.r = r
	return r, ri
}

// maxFormBytes bounds a request body the provider reads (a code or a hint is a few
// KiB).
const maxFormBytes = 256 << 10

// serve is the provider's handler under the issuer's path (stripped).
func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	switch r.URL.Path {
	case p.op.AuthorizationEndpoint().Relative():
		if p.refuseResponseType(w, r) {
			return
		}
		p.observed(w, r, p.authorizeOutcome)
	case p.op.AuthorizationEndpoint().Relative() + "/callback":
		p.observed(w, r, p.callbackOutcome)
	case p.op.TokenEndpoint().Relative():
		start := time.Now()
		p.observed(w, r, func(r *http.Request, ri *requestInfo, a *answer) {
			p.tokenOutcome(r, ri, a)
			p.metrics.tokenSeconds.WithLabelValues(grantLabel(r.PostForm.Get("grant_type"))).Observe(time.Since(start).Seconds())
		})
	case p.op.IntrospectionEndpoint().Relative():
		p.introspect(w, r)
	case p.op.RevocationEndpoint().Relative():
		p.observed(w, r, p.revocationOutcome)
	case p.op.EndSessionEndpoint().Relative():
		p.observed(w, r, p.logoutOutcome)
	case p.op.UserinfoEndpoint().Relative():
		p.userinfoHandler.ServeHTTP(w, r)
	case oidc.DiscoveryEndpoint:
		p.discovery(w, r)
	default:
		r, _ = p.withRequestInfo(w, r)
		p.op.ServeHTTP(w, r)
	}
}

// answer passes the library's answer through and keeps what kerbgate judges it by:
// the status, the Location, and the start of an error's body. A 401 to a client
// that authenticated with HTTP Basic gets the Basic challenge RFC 6749 §5.2 asks
// for.
type answer struct {
	http.ResponseWriter
	status   int
	location string
	body     []byte
	basic    bool
}

func (a *answer) WriteHeader(code int) {
	if a.status != 0 {
		return
	}
	a.status, a.location = code, a.Header().Get("Location")
	if code == http.StatusUnauthorized && a.basic && a.Header().Get("WWW-Authenticate") == "" {
		a.Header().Set("WWW-Authenticate", `Basic realm="kerbgate"`)
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answer) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if a.status >= 400 && len(a.body) < 4<<10 {
		a.body = append(a.body, b[:min(len(b), 4<<10-len(a.body))]...)
	}
	return a.ResponseWriter.Write(b)
}

func (a *answer) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// oauthError is an OAuth error answer's body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (a *answer) oauthError() oauthError {
	var e oauthError
	_ = json.Unmarshal(a.body, &e)
	return e
}

// observed serves r with the library, then judges its answer with outcome. The
// request's form is read first (bounded), and client authentication by
// client_secret_post together with HTTP Basic is refused as RFC 6749 §2.3 says.
func (p *Provider) observed(w http.ResponseWriter, r *http.Request, outcome func(*http.Request, *requestInfo, *answer)) {
	_, _, basic := r.BasicAuth()
	a := &answer{ResponseWriter: w, basic: basic}
	r, ri := p.withRequestInfo(a, r)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(a, http.StatusBadRequest, "invalid_request", "the request's form cannot be read")
		ri.refuse(reason.New(reason.OIDCInvalidRequest, "the request's form cannot be read", "error", err.Error()))
	} else if r.Method == http.MethodPost && basic && r.PostForm.Get("client_secret") != "" {
		writeOAuthError(a, http.StatusBadRequest, "invalid_request", "use one client authentication method: HTTP Basic or client_secret in the body")
		ri.refuse(reason.New(reason.OIDCInvalidRequest, "the client authenticated twice (HTTP Basic and client_secret_post)"))
	} else {
		p.op.ServeHTTP(a, r)
	}
	outcome(r, ri, a)
}

// writeOAuthError answers an RFC 6749 §5.2 error.
func writeOAuthError(w http.ResponseWriter, status int, errorType, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(oauthError{Error: errorType, Description: description})
}

// oauthReason is kerbgate's reason code for an OAuth error the library answered.
func oauthReason(errorType string) reason.Code {
	switch errorType {
	case "invalid_grant":
		return reason.OIDCInvalidGrant
	case "invalid_client":
		return reason.BadClientCredentials
	case "unauthorized_client":
		return reason.OIDCUnauthorizedClient
	case "unsupported_grant_type":
		return reason.OIDCUnsupportedGrantType
	case "unsupported_response_type":
		return reason.OIDCUnsupportedResponseType
	case "invalid_scope":
		return reason.OIDCInvalidScope
	case "login_required":
		return reason.OIDCLoginRequired
	case "server_error":
		return reason.Internal
	}
	return reason.OIDCInvalidRequest
}

// refused reports a refusal: the precise one the storage recorded, else e; with the
// request's client and user (when known) among the facts. It returns the code.
func (p *Provider) refused(r *http.Request, ri *requestInfo, e *reason.Error, facts ...any) reason.Code {
	if ri.refusal != nil {
		e = ri.refusal
	}
	out := *e
	out.Facts = append([]slog.Attr(nil), e.Facts...)
	out.Facts = append(out.Facts, slog.String("client", truncate(requestClient(r, ri), 128)))
	if ri.user != "" {
		out.Facts = append(out.Facts, slog.String("user", ri.user))
	}
	for i := 0; i+1 < len(facts); i += 2 {
		out.Facts = append(out.Facts, slog.Any(facts[i].(string), facts[i+1]))
	}
	p.opts.Reporter.Note(r, &out)
	return out.Code
}

// requestClient is the client a request authenticated as, or else names (in its
// form or its Basic credentials).
func requestClient(r *http.Request, ri *requestInfo) string {
	if ri.client != "" {
		return ri.client
	}
	if c := r.FormValue("client_id"); c != "" {
		return c
	}
	c, _, _ := r.BasicAuth()
	return c
}

// fromAnswer is the refusal an error answer of the library carries.
func fromAnswer(a *answer, params url.Values) *reason.Error {
	e := oauthError{Error: params.Get("error"), Description: params.Get("error_description")}
	if e.Error == "" {
		e = a.oauthError()
	}
	detail := "the OpenID protocol library refused the request"
	if e.Description != "" {
		detail = redact(truncate(e.Description, 256))
	}
	return reason.New(oauthReason(e.Error), detail, "oauth_error", truncate(e.Error, 64))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// authorizeOutcome judges the library's answer to an authorization request: on to
// the login step (counted there), an error at the client's redirect URI, or a 400
// without a redirect.
func (p *Provider) authorizeOutcome(r *http.Request, ri *requestInfo, a *answer) {
	clientID := r.FormValue("client_id")
	if a.status == http.StatusFound {
		loc, err := url.Parse(a.location)
		if err == nil && loc.Path == p.path+"/login" {
			return
		}
		if err == nil {
			params := loc.Query()
			if params.Get("error") == "" {
				params, _ = url.ParseQuery(loc.Fragment)
			}
			code := p.refused(r, ri, fromAnswer(a, params), "stage", "authorize")
			p.metrics.authorizations.WithLabelValues(p.clientLabel(clientID), string(code)).Inc()
			return
		}
	}
	var e *reason.Error
	c, known := p.clients[clientID]
	switch {
	case !known:
		e = reason.New(reason.UnknownApp, "no such client_id")
	case r.FormValue("redirect_uri") != "" && !contains(c.Client.RedirectURIs, r.FormValue("redirect_uri")):
		e = reason.New(reason.RedirectNotRegistered, "redirect_uri is not one of the client's redirect_uris",
			"redirect_uri", truncate(r.FormValue("redirect_uri"), 256))
	default:
		e = fromAnswer(a, nil)
	}
	code := p.refused(r, ri, e, "stage", "authorize")
	p.metrics.authorizations.WithLabelValues(p.clientLabel(clientID), string(code)).Inc()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// callbackOutcome judges the library's callback: the code issued (ok), or refused
// (a replayed or expired login step).
func (p *Provider) callbackOutcome(r *http.Request, ri *requestInfo, a *answer) {
	if a.status == http.StatusFound {
		if loc, err := url.Parse(a.location); err == nil && (loc.Query().Get("code") != "" || strings.Contains(loc.Fragment, "code=")) {
			p.metrics.authorizations.WithLabelValues(p.clientLabel(ri.client), "ok").Inc()
			return
		}
	}
	e := fromAnswer(a, nil)
	if ri.client == "" { // the library could not take the signed-in request
		e = reason.New(reason.OIDCInvalidRequest, "unknown, used or expired login step", "cause", "callback_replayed_or_expired")
	}
	code := p.refused(r, ri, e, "stage", "callback")
	p.metrics.authorizations.WithLabelValues(p.clientLabel(ri.client), string(code)).Inc()
}

// tokenOutcome judges a token request.
func (p *Provider) tokenOutcome(r *http.Request, ri *requestInfo, a *answer) {
	grant := r.PostForm.Get("grant_type")
	client := requestClient(r, ri)
	if a.status == http.StatusOK {
		p.metrics.tokens.WithLabelValues(p.clientLabel(client), grantLabel(grant), "ok").Inc()
		p.opts.Log.Debug("oidc tokens issued", "client", client, "user", ri.user, "grant_type", grantLabel(grant))
		return
	}
	code := p.refused(r, ri, fromAnswer(a, nil), "grant_type", grantLabel(grant))
	p.metrics.tokens.WithLabelValues(p.clientLabel(client), grantLabel(grant), string(code)).Inc()
}

// revocationOutcome judges a revocation (RFC 7009).
func (p *Provider) revocationOutcome(r *http.Request, ri *requestInfo, a *answer) {
	client := requestClient(r, ri)
	if a.status == http.StatusOK {
		outcome := "unknown_token"
		if ri.revoked {
			outcome = "revoked"
			p.opts.Log.Info("oidc token revoked", "client", client, "user", ri.user)
		}
		p.metrics.revocations.WithLabelValues(p.clientLabel(client), outcome).Inc()
		return
	}
	code := p.refused(r, ri, fromAnswer(a, nil), "stage", "revocation")
	p.metrics.revocations.WithLabelValues(p.clientLabel(client), string(code)).Inc()
}

// logoutOutcome judges end_session.
func (p *Provider) logoutOutcome(r *http.Request, ri *requestInfo, a *answer) {
	if a.status == http.StatusFound && ri.logout != "" {
		p.metrics.logouts.WithLabelValues(p.clientLabel(ri.client), ri.logout).Inc()
		return
	}
	client := requestClient(r, ri)
	code := p.refused(r, ri, fromAnswer(a, nil), "stage", "end_session")
	p.metrics.logouts.WithLabelValues(p.clientLabel(client), string(code)).Inc()
}

// introspect is the introspection endpoint (RFC 7662). The library authenticates
// the client there by HTTP Basic only (a client_id in the body counts as a public
// client, whose secret is never looked at) and answers any refusal as a plain-text
// 401. kerbgate moves client_secret_post's credentials into the Basic header the
// library reads (RFC 6749 §2.3.1 makes the two equivalent), lets the library
// answer, and turns its refusal into RFC 6749 §5.2 JSON.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	_, _, basic := r.BasicAuth()
	rec := httptest.NewRecorder()
	a := &answer{ResponseWriter: rec}
	r, ri := p.withRequestInfo(a, r)
	var e *reason.Error
	switch err := r.ParseForm(); {
	case r.Method != http.MethodPost:
		e = reason.New(reason.OIDCInvalidRequest, "introspection takes POST", "method", r.Method)
	case err != nil:
		e = reason.New(reason.OIDCInvalidRequest, "the request's form cannot be read", "error", err.Error())
	case basic && r.PostForm.Get("client_secret") != "":
		e = reason.New(reason.OIDCInvalidRequest, "the client authenticated twice (HTTP Basic and client_secret_post)")
	case r.PostForm.Get("token") == "":
		e = reason.New(reason.OIDCInvalidRequest, "no token to introspect")
	}
	client := r.PostForm.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok {
		client = u
	}
	ri.client = client
	if e != nil {
		p.refused(r, ri, e, "stage", "introspection")
		p.metrics.introspections.WithLabelValues(p.clientLabel(client), string(e.Code)).Inc()
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", e.Detail)
		return
	}
	if secret := r.PostForm.Get("client_secret"); !basic && secret != "" {
		r.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(secret))
		r.PostForm.Del("client_secret")
		r.Form.Del("client_secret")
		r.PostForm.Del("client_id")
		r.Form.Del("client_id")
	}
	p.op.ServeHTTP(a, r)
	if rec.Code != http.StatusOK {
		e := reason.New(reason.BadClientCredentials, "no client authentication (introspection needs a confidential client's secret)")
		code := p.refused(r, ri, e, "stage", "introspection")
		p.metrics.introspections.WithLabelValues(p.clientLabel(client), string(code)).Inc()
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="kerbgate"`)
		}
		if ri.refusal != nil && ri.refusal.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((ri.refusal.RetryAfter+time.Second-1)/time.Second)))
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var out struct {
		Active bool `json:"active"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	outcome := "inactive"
	if out.Active {
		outcome = "active"
	}
	p.metrics.introspections.WithLabelValues(p.clientLabel(client), outcome).Inc()
	copyAnswer(w, rec)
}

// copyAnswer sends what rec recorded.
func copyAnswer(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// discovery is the library's discovery document, told the truth where the library
// claims more or less than kerbgate serves: the code flow only (no implicit or
// hybrid response types, no implicit grant), client_secret_post at introspection
// too, and the acr values kerbgate asserts.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	r, _ = p.withRequestInfo(rec, r)
	p.op.ServeHTTP(rec, r)
	var d oidc.DiscoveryConfiguration
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &d) != nil {
		copyAnswer(w, rec)
		return
	}
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodNone, oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.ACRValuesSupported = []string{ACRKerberos, ACRKerberosChannelBound}
	if p.opts.PasswordSignIn {
		d.ACRValuesSupported = append(d.ACRValuesSupported, ACRPassword)
	}
	body, err := json.Marshal(&d)
	if err != nil {
		copyAnswer(w, rec)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
