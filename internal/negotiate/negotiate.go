// Package negotiate is the HTTP Negotiate authentication scheme (RFC 4559) as
// middleware: it challenges, bounds and decodes the Authorization header, hands the
// Kerberos AP-REQ to the acceptor, answers mutual authentication, and puts the
// verified Identity in the request context.
//
// It owns the HTTP side of sign-in only. It must not verify Kerberos itself (the
// acceptor does), nor decide what a signed-in user may do (flows do).
package negotiate

import (
	"context"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/refusal"
)

// DefaultMaxTokenBytes bounds the base64 token in the Authorization header: 64 KiB
// holds the ticket of a user in well over a thousand groups.
const DefaultMaxTokenBytes = 64 << 10

// Acceptor verifies a Kerberos AP-REQ (the *acceptor.Acceptor in production).
type Acceptor interface {
	Accept(ctx context.Context, apReq []byte) (*acceptor.Result, error)
}

// Options configure the middleware.
type Options struct {
	Acceptor Acceptor
	Reporter *refusal.Reporter
	// MaxTokenBytes bounds the base64 token; larger ones are refused with
	// token_too_large. DefaultMaxTokenBytes when zero.
	MaxTokenBytes int
	// Registerer receives the sign-in metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// EPA is the Extended Protection policy applied to every accepted token; nil
	// means token_checking None.
	EPA *epa.Policy
	// Channel describes the request's connection for EPA (which certificate
	// kerbgate served on it); nil means no TLS of kerbgate's own.
	Channel func(*http.Request) epa.Channel
}

type ctxKey struct{}

// Signin is what the middleware puts in the request context.
type Signin struct {
	Identity identity.Identity
	Result   *acceptor.Result
}

// FromContext returns the verified sign-in of the request, if any.
func FromContext(ctx context.Context) (*Signin, bool) {
	s, ok := ctx.Value(ctxKey{}).(*Signin)
	return s, ok
}

// Middleware returns the Negotiate middleware. Requests without a valid Kerberos
// token never reach next.
func Middleware(o Options) (func(http.Handler) http.Handler, error) {
	if o.Acceptor == nil || o.Reporter == nil {
		return nil, errors.New("negotiate: Acceptor and Reporter are required")
	}
	if o.MaxTokenBytes <= 0 {
		o.MaxTokenBytes = DefaultMaxTokenBytes
	}
	m := &middleware{opts: o}
	m.signins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_signins_total",
		Help: "Successful Kerberos sign-ins, by ticket enctype.",
	}, []string{"enctype"})
	m.acceptSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kerbgate_negotiate_seconds",
		Help:    "Time to decode and verify a Negotiate token, accepted or not.",
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3},
	})
	m.epaChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kerbgate_epa_checks_total",
		Help: "Extended Protection outcomes of accepted Kerberos tokens: channel_bound, unbound_allowed, service_bound, not_checked, refused (refusals by reason are in kerbgate_refusals_total).",
	}, []string{"outcome"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{m.signins, m.acceptSeconds, m.epaChecks} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(w, r, next)
		})
	}, nil
}

type middleware struct {
	opts          Options
	signins       *prometheus.CounterVec
	acceptSeconds prometheus.Histogram
	epaChecks     *prometheus.CounterVec
}

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := time.Now()
	in, err := m.authenticate(w, r)
	m.acceptSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		m.refuse(w, r, reason.Of(err))
		return
	}
	m.signins.WithLabelValues(kcrypto.EnctypeName(in.Result.EType)).Inc()
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, in)))
}

// refuse renders a refusal. A 401 always carries the bare Negotiate challenge, so a
// client that can do better (get a ticket, fix its clock) retries.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, e *reason.Error) {
	if reason.Lookup(e.Code).Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Negotiate")
	}
	m.opts.Reporter.Refuse(w, r, e)
}

// authenticate returns the sign-in, or a refusal.
func (m *middleware) authenticate(w http.ResponseWriter, r *http.Request) (*Signin, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return nil, reason.New(reason.NoToken, "no Authorization header")
	}
	if len(values) > 1 {
		return nil, reason.New(reason.MalformedToken, "more than one Authorization header", "count", len(values))
	}
	scheme, b64, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	b64 = strings.TrimSpace(b64)
	switch {
	case strings.EqualFold(scheme, "Negotiate"):
	case strings.EqualFold(scheme, "NTLM"):
		return nil, reason.New(reason.NTLMOffered, "client used the NTLM scheme")
	default:
		if len(scheme) > 32 {
			scheme = scheme[:32]
		}
		return nil, reason.New(reason.NoToken, "Authorization header uses another scheme", "scheme", scheme)
	}
	if len(b64) > m.opts.MaxTokenBytes {
		return nil, reason.New(reason.TokenTooLarge, "Negotiate token exceeds kerberos.max_token_bytes",
			"token_bytes", len(b64), "max_token_bytes", m.opts.MaxTokenBytes)
	}
	if b64 == "" {
		return nil, reason.New(reason.MalformedToken, "empty Negotiate token")
	}
	raw, err := decodeBase64(b64)
	if err != nil {
		return nil, reason.New(reason.MalformedToken, "Negotiate token is not base64", "error", err.Error())
	}
	if spnego.IsNTLM(raw) {
		return nil, reason.New(reason.NTLMOffered, "client sent a raw NTLMSSP token")
	}
	tok, err := spnego.Decode(raw)
	if err != nil {
		return nil, reason.New(reason.MalformedToken, "Negotiate token does not decode", "error", err.Error())
	}

	var (
		gss     []byte // the Kerberos GSS token (framed AP-REQ)
		wrapped bool   // answer inside a NegTokenResp
	)
	switch tok.Kind {
	case spnego.KindNTLM:
		return nil, reason.New(reason.NTLMOffered, "client sent a raw NTLMSSP token")
	case spnego.KindKerberos:
		gss = tok.MechToken
	case spnego.KindNegTokenInit:
		wrapped = true
		first := tok.MechTypes[0]
		switch {
		case spnego.IsKerberos(first) && len(tok.MechToken) > 0:
			gss = tok.MechToken
		case first.Equal(spnego.OIDNTLM) || spnego.IsNTLM(tok.MechToken):
			return nil, reason.New(reason.NTLMOffered, "client offered NTLM in SPNEGO (no Kerberos ticket for this SPN)",
				"mech_types", oidList(tok.MechTypes))
		case offersKerberos(tok.MechTypes):
			// The client prefers another mechanism but can do Kerberos: select it
			// (RFC 4178 §3.2) and let the client send its Kerberos token.
			w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(
				spnego.EncodeNegTokenResp(spnego.AcceptIncomplete, spnego.OIDKerberos, nil, nil)))
			return nil, reason.New(reason.UnsupportedMech, "client's preferred mechanism is not Kerberos; asked for Kerberos",
				"mech_types", oidList(tok.MechTypes))
		default:
			return nil, reason.New(reason.UnsupportedMech, "client offered no Kerberos mechanism",
				"mech_types", oidList(tok.MechTypes))
		}
	case spnego.KindNegTokenResp:
		wrapped = true
		if len(tok.ResponseToken) == 0 {
			return nil, reason.New(reason.MalformedToken, "NegTokenResp without a response token")
		}
		gss = tok.ResponseToken
	default:
		return nil, reason.New(reason.MalformedToken, "unknown token kind")
	}

	if spnego.IsNTLM(gss) {
		return nil, reason.New(reason.NTLMOffered, "client sent NTLMSSP inside SPNEGO")
	}
	apReq, mech, err := spnego.KerberosAPReq(gss)
	if err != nil {
		return nil, reason.New(reason.MalformedToken, "Kerberos token does not decode", "error", err.Error())
	}
	res, err := m.opts.Acceptor.Accept(r.Context(), apReq)
	if err != nil {
		return nil, err
	}
	bound := false
	if p := m.opts.EPA; p != nil && p.TokenChecking != epa.None {
		var ch epa.Channel
		if m.opts.Channel != nil {
			ch = m.opts.Channel(r)
		}
		outcome, err := p.Check(&epa.Token{SPN: res.SPN, Client: res.Identity.Principal,
			Checksum: res.Checksum, AuthenticatorAD: res.AuthenticatorAD}, ch)
		m.epaChecks.WithLabelValues(string(outcome)).Inc()
		if err != nil {
			return nil, err
		}
		bound = outcome == epa.ChannelBound
	}
	if res.APRep != nil || wrapped {
		w.Header().Set("WWW-Authenticate", "Negotiate "+base64.StdEncoding.EncodeToString(answer(mech, res.APRep, wrapped)))
	}
	in := &Signin{Identity: res.Identity, Result: res}
	in.Identity.ChannelBound = bound
	return in, nil
}

// answer builds the final server token: the AP-REP in GSS framing, inside an
// accept-completed NegTokenResp when the client used SPNEGO.
func answer(mech asn1.ObjectIdentifier, apRep []byte, wrapped bool) []byte {
	var inner []byte
	if apRep != nil {
		inner = spnego.WrapKerberos(mech, spnego.TokIDAPRep, apRep)
	}
	if !wrapped {
		return inner
	}
	return spnego.EncodeNegTokenResp(spnego.AcceptCompleted, mech, inner, nil)
}

func offersKerberos(mechs []asn1.ObjectIdentifier) bool {
	for _, m := range mechs {
		if spnego.IsKerberos(m) {
			return true
		}
	}
	return false
}

func oidList(oids []asn1.ObjectIdentifier) string {
	s := make([]string, len(oids))
	for i, o := range oids {
		s[i] = o.String()
	}
	return strings.Join(s, ",")
}

// decodeBase64 accepts standard base64 with or without padding (some clients and
// proxies strip it).
func decodeBase64(s string) ([]byte, error) {
	if len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
