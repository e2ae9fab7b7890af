// Package loadgen is a load generator for Negotiate-protected URLs: every request
// carries a fresh Kerberos authenticator built from one service ticket, so the server
// does its full verification each time and never sees a replay.
//
// It owns the request loop, the tokens and the latency statistics. It must not talk
// to a KDC (the caller brings the ticket) nor decide what a result means.
package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
	"github.com/kerbgate/kerbgate/internal/krb/kdc"
	"github.com/kerbgate/kerbgate/internal/krb/spnego"
	"github.com/kerbgate/kerbgate/internal/krb/wire"
)

// Options describe a load run.
type Options struct {
	URL string
	// Credential is the service ticket tokens are made from; nil sends no
	// Authorization (the HTTP floor, or Cookie).
	Credential *initiator.Credential
	// Raw sends raw GSS Kerberos tokens instead of SPNEGO.
	Raw bool
	// ChannelBindingHash is put in every authenticator (see ServerBindings).
	ChannelBindingHash []byte
	// Cookie is sent with every request ("name=value"), e.g. a session cookie.
	Cookie string
	// Host overrides the Host header.
	Host string
	// Header is sent with every request (a proxy's X-Forwarded-* headers, say).
	Header      http.Header
	Connections int
	// Requests, if set, ends the run after that many requests; else Duration.
	Requests int
	Duration time.Duration
	// CAFile verifies an https server; KeepAlive false opens a connection per request.
	CAFile      string
	NoKeepAlive bool
	// Flow, when set, replaces the GET of URL: each iteration runs it, and the
	// iteration's latency is the whole flow's (Result.Steps has each step's).
	Flow Flow
}

// Flow is one iteration of a multi-request load, like an authorization-code flow:
// it sends its requests with s.Do and returns an error when an answer is not the
// one expected (the iteration then counts as an error).
type Flow func(ctx context.Context, s *Steps) error

// Steps is what a flow iteration sends its requests with: the run's HTTP client
// (which follows no redirect), fresh Negotiate headers, and each step's timing.
type Steps struct {
	o      *Options
	client *http.Client
	mu     *sync.Mutex
	steps  map[string]*stepLog
}

type stepLog struct {
	lat    []time.Duration
	status map[int]int
}

// maxBody bounds what Do reads of an answer.
const maxBody = 1 << 20

// Negotiate returns a fresh Negotiate Authorization header value from the run's
// Credential (with its Raw and ChannelBindingHash).
func (s *Steps) Negotiate() (string, error) {
	if s.o.Credential == nil {
		return "", errors.New("loadgen: no credential for a Negotiate step")
	}
	return HeaderBound(s.o.Credential, s.o.Raw, s.o.ChannelBindingHash)
}

// Do sends req (with the run's Host and Cookie when set), reads the answer's body
// (at most 1 MiB) and records the step's latency and status under step.
func (s *Steps) Do(step string, req *http.Request) (*http.Response, []byte, error) {
	if s.o.Host != "" {
		req.Host = s.o.Host
	}
	if s.o.Cookie != "" && req.Header.Get("Cookie") == "" {
		req.Header.Set("Cookie", s.o.Cookie)
	}
	t0 := time.Now()
	resp, err := s.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	d := time.Since(t0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", step, err)
	}
	s.mu.Lock()
	l := s.steps[step]
	if l == nil {
		l = &stepLog{status: map[int]int{}}
		s.steps[step] = l
	}
	l.lat = append(l.lat, d)
	l.status[resp.StatusCode]++
	s.mu.Unlock()
	return resp, body, nil
}

// StepResult is what a run measured of one step of its flow.
type StepResult struct {
	Requests int           `json:"requests"`
	Status   map[int]int   `json:"status"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// Result is what a run measured.
type Result struct {
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"`
	Status     map[int]int    `json:"status"`
	Elapsed    time.Duration  `json:"elapsed_ns"`
	RPS        float64        `json:"requests_per_second"`
	P50        time.Duration  `json:"p50_ns"`
	P90        time.Duration  `json:"p90_ns"`
	P99        time.Duration  `json:"p99_ns"`
	Max        time.Duration  `json:"max_ns"`
	FirstError string         `json:"first_error,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
	// Steps are the steps of a Flow run, by name; Requests, Errors and the
	// percentiles above are then of whole flows, and Status is empty.
	Steps map[string]*StepResult `json:"steps,omitempty"`
}

func (r *Result) String() string {
	return fmt.Sprintf("%d requests in %.2fs: %.0f req/s, p50 %s p90 %s p99 %s max %s, status %v, errors %d %s",
		r.Requests, r.Elapsed.Seconds(), r.RPS, r.P50, r.P90, r.P99, r.Max, r.Status, r.Errors, r.FirstError)
}

// Header returns a fresh Negotiate Authorization header value.
func Header(c *initiator.Credential, raw bool) (string, error) {
	return HeaderBound(c, raw, nil)
}

// HeaderBound is Header with channel bindings (the Bnd field).
func HeaderBound(c *initiator.Credential, raw bool, bnd []byte) (string, error) {
	ap, err := c.APReq(initiator.Options{ChannelBindingHash: bnd})
	if err != nil {
		return "", err
	}
	tok := spnego.WrapKerberos(spnego.OIDKerberos, spnego.TokIDAPReq, ap)
	if !raw {
		tok = spnego.EncodeNegTokenInit([]asn1.ObjectIdentifier{spnego.OIDKerberos}, tok)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(tok), nil
}

// TokenRate measures how many tokens per second one goroutine makes for d.
func TokenRate(c *initiator.Credential, d time.Duration) (float64, error) {
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if _, err := Header(c, false); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// Run sends the load and returns the measurements.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Connections <= 0 {
		o.Connections = 16
	}
	if o.Requests <= 0 && o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: o.Connections, MaxConnsPerHost: o.Connections, DisableKeepAlives: o.NoKeepAlive}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate in " + o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var (
		mu     sync.Mutex
		lat    []time.Duration
		res    = &Result{Status: map[int]int{}}
		issued int
		wg     sync.WaitGroup
		// stepLogs are the steps of a Flow run.
		stepLogs = map[string]*stepLog{}
	)
	next := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if o.Requests > 0 && issued >= o.Requests {
			return false
		}
		issued++
		return true
	}
	start := time.Now()
	for w := 0; w < o.Connections; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			steps := &Steps{o: &o, client: client, mu: &mu, steps: stepLogs}
			for ctx.Err() == nil && next() {
				if o.Flow != nil {
					t0 := time.Now()
					err := o.Flow(ctx, steps)
					d := time.Since(t0)
					if ctx.Err() != nil && err != nil {
						return // the run ended during this flow
					}
					mu.Lock()
					lat = append(lat, d)
					if err != nil {
						res.Errors++
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					}
					mu.Unlock()
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", o.URL, nil)
				if o.Host != "" {
					req.Host = o.Host
				}
				for k, v := range o.Header {
					req.Header[k] = v
				}
				if o.Cookie != "" {
					req.Header.Set("Cookie", o.Cookie)
				}
				if o.Credential != nil {
					h, err := HeaderBound(o.Credential, o.Raw, o.ChannelBindingHash)
					if err != nil {
						mu.Lock()
						res.Errors++
						res.FirstError = err.Error()
						mu.Unlock()
						return
					}
					req.Header.Set("Authorization", h)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				d := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					return // the run ended during this request
				}
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					res.Status[status]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = len(lat)
	if len(lat) == 0 {
		return res, errors.New("no request completed")
	}
	res.P50, res.P90, res.P99, res.Max = percentiles(lat)
	res.RPS = float64(len(lat)) / res.Elapsed.Seconds()
	if o.Flow != nil {
		res.Status = nil
		res.Steps = map[string]*StepResult{}
		for name, l := range stepLogs {
			sr := &StepResult{Requests: len(l.lat), Status: l.status}
			sr.P50, sr.P90, sr.P99, sr.Max = percentiles(l.lat)
			res.Steps[name] = sr
		}
	}
	return res, nil
}

// percentiles sorts lat (not empty) and returns its p50, p90, p99 and maximum.
func percentiles(lat []time.Duration) (p50, p90, p99, max time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p int) time.Duration { return lat[(len(lat)-1)*p/100] }
	return pct(50), pct(90), pct(99), lat[len(lat)-1]
}

// CredentialFromKeytab signs in as principal with a keytab (or, when password is
// not empty, a password) and gets a service ticket for spn, through the KDCs.
func CredentialFromKeytab(principal, realm, keytabPath, password, spn string, kdcs []string) (*initiator.Credential, error) {
	cfg, err := kdc.Client{Realm: realm, KDCs: kdcs}.Config()
	if err != nil {
		return nil, err
	}
	var cl *krbclient.Client
	if password != "" {
		cl = krbclient.NewWithPassword(principal, realm, password, cfg, krbclient.DisablePAFXFAST(true))
	} else {
		kt, err := keytab.Load(keytabPath)
		if err != nil {
			return nil, err
		}
		cl = krbclient.NewWithKeytab(principal, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	}
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", principal, err)
	}
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		return nil, fmt.Errorf("service ticket for %s: %w", spn, err)
	}
	der, err := tkt.Marshal()
	if err != nil {
		return nil, err
	}
	sk, err := kcrypto.NewKey(key.KeyType, key.KeyValue)
	if err != nil {
		return nil, err
	}
	return &initiator.Credential{Ticket: der, SessionKey: sk, Client: wire.PrincipalName{NameType: 1, Components: strings.Split(principal, "/")},
		ClientRealm: realm, Server: spn + "@" + realm}, nil
}

// ServerBindings connects to an https URL once and returns the Bnd of its
// certificate's tls-server-end-point channel binding (RFC 5929), for clients that
// bind like Windows does.
func ServerBindings(rawURL, caFile string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{ServerName: u.Hostname()}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = x509.NewCertPool()
		conf.RootCAs.AppendCertsFromPEM(pem)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":443"
	}
	c, err := tls.Dial("tcp", host, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, err := epa.ServerEndPoint(c.ConnectionState().PeerCertificates[0])
	if err != nil {
		return nil, err
	}
	h := epa.BindingHash(b)
	return h[:], nil
}
