package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kerbgate/kerbgate/internal/keyset"
	"github.com/kerbgate/kerbgate/internal/krb/initiator"
	"github.com/kerbgate/kerbgate/internal/loadgen"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/testrealm"
)

// BenchmarkOIDCProvider is the OpenID Provider's table of docs/PERFORMANCE.md
// (issue 15's figures), side by side in one run, in alternating rounds:
//
//   - complete authorization-code flows per second at 16 connections: kerbgate
//     (a `kerbgate serve` process built from cmd/kerbgate) with Redis as the store,
//     the same with bbolt, and npm oidc-provider (testrealm/oidc/provider.mjs, its
//     in-memory adapter) on the same machine. A kerbgate flow is GET /authorize →
//     302 to the login step → GET /login with a fresh Negotiate authenticator → 302
//     to the client with the code (through the library's callback before kerbgate
//     answered the login step with the code) → POST /token
//     (client_secret_basic and PKCE S256) → GET /userinfo with the access token.
//     oidc-provider's flow is the same code flow with its interaction skipped: the
//     client holds a session and a grant made once before the run (by the
//     provider's auto-completing interaction), so GET /auth answers with the code
//     at once, then POST /token (client_secret_basic, PKCE S256), GET /me. Both sign
//     their ID tokens with the same ES256 key. Clients do not verify the ID token's
//     signature in the loop (once before it).
//
//   - JWKS and userinfo requests per second against kerbgate's /healthz (the HTTP
//     floor), on the Redis node (userinfo on the bbolt node too);
//
//   - the token endpoint's p50/p99 at 16 connections: within the Redis flow run,
//     and alone (codes made before, then only POST /token).
//
//     go test -run '^$' -bench OIDCProvider -benchtime 1x -timeout 20m ./internal/server   (scripts/bench.sh)
//
// KERBGATE_BENCH_SECONDS sets a round's length (4 s). KERBGATE_BENCH_BASELINE=REV
// adds kerbgate built from git revision REV (with Redis) to the flow and userinfo
// runs, for a before/after in one run. KERBGATE_BENCH_PPROF=DIR
// builds kerbgate with -tags pprof and writes CPU profiles of the kerbgate nodes
// (the first round of each flow run and of the Redis node's userinfo run) to DIR.
func BenchmarkOIDCProvider(b *testing.B) {
	r := testrealm.Require(b)
	r.LockGateway(b, false)
	round := time.Duration(envInt("KERBGATE_BENCH_SECONDS", 4)) * time.Second
	profiles := os.Getenv("KERBGATE_BENCH_PPROF")
	cc := ticket(b, r, "alice")
	cred, err := initiator.FromCCache(cc, testrealm.GatewaySPN)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	keys := filepath.Join(dir, "oidc-keys.json")
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		b.Fatal(err)
	}
	jwks, err := os.ReadFile(keys)
	if err != nil {
		b.Fatal(err)
	}
	bin := benchBuild(b, profiles != "")
	redis := redistest.Start(b, redistest.Options{})
	kgRedis := startOPNode(b, r, bin, keys, fmt.Sprintf("  redis:\n    url: redis://%s\n    prefix: \"kerbgate:\"\n    timeout: 1s\n  cookie_keys_file: %s\n",
		redis.Addr, cookieKeysFile(b)), profiles != "")
	kgBolt := startOPNode(b, r, bin, keys, fmt.Sprintf("  path: %s\n", filepath.Join(b.TempDir(), "kerbgate.db")), profiles != "")
	var baseline *opNode
	if rev := os.Getenv("KERBGATE_BENCH_BASELINE"); rev != "" {
		baseline = startOPNode(b, r, buildRevision(b, rev), keys, fmt.Sprintf("  redis:\n    url: redis://%s\n    prefix: \"kerbgate:\"\n    timeout: 1s\n  cookie_keys_file: %s\n",
			redis.Addr, cookieKeysFile(b)), false)
	}
	node := testrealm.StartOIDC(b, testrealm.OIDCOptions{ClientID: "rp", ClientSecret: demoSecret,
		RedirectURIs: []string{opRPCallback}, JWKS: string(jwks)})
	nodeCookie := nodeSession(b, node.Issuer)

	// One flow each, outside the timing: the answers are what a relying party
	// needs (the ID token verifies, userinfo names the same subject).
	for _, t := range []struct {
		name string
		flow loadgen.Flow
		iss  string
	}{
		{"kerbgate-redis", kgRedis.flow(), kgRedis.issuer},
		{"kerbgate-bbolt", kgBolt.flow(), kgBolt.issuer},
		{"oidc-provider", nodeFlow(node.Issuer, nodeCookie), node.Issuer},
	} {
		res, err := loadgen.Run(context.Background(), loadgen.Options{Flow: checkedFlow(b, t.flow, t.iss), Credential: cred, Requests: 1, Connections: 1})
		if err != nil || res.Errors > 0 {
			b.Fatalf("%s: one flow: %v %v", t.name, err, res)
		}
	}
	accessToken := kgRedis.accessToken(b, cred)
	boltToken := kgBolt.accessToken(b, cred)

	type target struct {
		name   string
		server int     // the pid serving it
		node   *opNode // profiled when KERBGATE_BENCH_PPROF is set
		o      loadgen.Options
	}
	flows := []target{
		{"kerbgate-redis", kgRedis.pid, kgRedis, loadgen.Options{Flow: kgRedis.flow(), Credential: cred}},
		{"kerbgate-bbolt", kgBolt.pid, kgBolt, loadgen.Options{Flow: kgBolt.flow(), Credential: cred}},
		{"oidc-provider", node.Pid(), nil, loadgen.Options{Flow: nodeFlow(node.Issuer, nodeCookie)}},
	}
	if baseline != nil {
		flows = append(flows, target{"kerbgate-redis (baseline)", baseline.pid, nil, loadgen.Options{Flow: baseline.flow(), Credential: cred}})
	}
	requests := []target{
		{"floor (/healthz)", kgRedis.pid, nil, loadgen.Options{Flow: single("GET", kgRedis.base+"/healthz", "")}},
		{"jwks", kgRedis.pid, nil, loadgen.Options{Flow: single("GET", kgRedis.issuer+"/keys", "")}},
		{"userinfo (redis)", kgRedis.pid, kgRedis, loadgen.Options{Flow: single("GET", kgRedis.issuer+"/userinfo", accessToken)}},
		{"userinfo (bbolt)", kgBolt.pid, nil, loadgen.Options{Flow: single("GET", kgBolt.issuer+"/userinfo", boltToken)}},
	}
	if baseline != nil {
		requests = append(requests, target{"userinfo (redis, baseline)", baseline.pid, nil,
			loadgen.Options{Flow: single("GET", baseline.issuer+"/userinfo", baseline.accessToken(b, cred))}})
	}
	const rounds = 3
	results := map[string][]*loadgen.Result{}
	costs := map[string][]cpuCost{}
	run := func(tg target, profile bool) {
		o := tg.o
		o.Connections, o.Duration = 16, round
		var wg sync.WaitGroup
		if profile && tg.node != nil {
			wg.Add(1)
			go func() { defer wg.Done(); tg.node.profile(b, profiles, tg.name, round-time.Second) }()
		}
		before := takeCPU(tg.server, redis.Pid())
		res, err := loadgen.Run(context.Background(), o)
		wg.Wait()
		if err != nil || res.Errors > 0 {
			b.Fatalf("%s: %v %v", tg.name, err, res)
		}
		results[tg.name] = append(results[tg.name], res)
		costs[tg.name] = append(costs[tg.name], takeCPU(tg.server, redis.Pid()).since(before, res.Requests))
	}
	for i := 0; i < rounds; i++ {
		for _, tg := range flows {
			run(tg, profiles != "" && i == 0)
		}
		for _, tg := range requests {
			run(tg, profiles != "" && i == 0)
		}
	}
	tokenAlone := kgRedis.tokenAlone(b, cred, round)

	best := func(name string) *loadgen.Result {
		var m *loadgen.Result
		for _, r := range results[name] {
			if m == nil || r.RPS > m.RPS {
				m = r
			}
		}
		return m
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n| complete code flows (16 connections, %d alternating %s rounds) | flows/s | flow p50 | flow p99 | token p50 | token p99 |\n|---|---|---|---|---|---|\n", rounds, round)
	for _, tg := range flows {
		for i, res := range results[tg.name] {
			tok := res.Steps["token"]
			fmt.Fprintf(&tbl, "| %s (round %d) | %.0f | %s | %s | %s | %s |\n", tg.name, i+1, res.RPS, ms(res.P50), ms(res.P99), ms(tok.P50), ms(tok.P99))
		}
	}
	fmt.Fprintf(&tbl, "\n| requests (16 connections) | req/s | p50 | p99 |\n|---|---|---|---|\n")
	for _, tg := range requests {
		for i, res := range results[tg.name] {
			fmt.Fprintf(&tbl, "| %s (round %d) | %.0f | %s | %s |\n", tg.name, i+1, res.RPS, ms(res.P50), ms(res.P99))
		}
	}
	fmt.Fprintf(&tbl, "| POST /token alone, redis (codes made before) | %.0f | %s | %s |\n", tokenAlone.RPS, ms(tokenAlone.P50), ms(tokenAlone.P99))
	fmt.Fprintf(&tbl, "\n| CPU per flow or request (µs; the machine's 2 cores are 2,000,000 µs/s) | server | redis-server | load generator | rest of the machine | machine busy |\n|---|---|---|---|---|---|\n")
	for _, tg := range append(flows, requests...) {
		for i, c := range costs[tg.name] {
			fmt.Fprintf(&tbl, "| %s (round %d) | %.0f | %.0f | %.0f | %.0f | %.0f %% |\n", tg.name, i+1, c.server, c.redis, c.loadgen, c.rest, 100*c.busy)
		}
	}
	kr, kb, np := best("kerbgate-redis").RPS, best("kerbgate-bbolt").RPS, best("oidc-provider").RPS
	fl, jw, ui := best("floor (/healthz)").RPS, best("jwks").RPS, best("userinfo (redis)").RPS
	tok := best("kerbgate-redis").Steps["token"]
	fmt.Fprintf(&tbl, "\nkerbgate (Redis) flows/s: %.0f (target ≥ 1,500); / oidc-provider: %.2f× (target ≥ 3×)\n", kr, kr/np)
	fmt.Fprintf(&tbl, "kerbgate (bbolt) flows/s: %.0f; / oidc-provider: %.2f×\n", kb, kb/np)
	if baseline != nil {
		bl := best("kerbgate-redis (baseline)").RPS
		fmt.Fprintf(&tbl, "kerbgate (Redis) / the baseline %s: %.2f× flows/s; userinfo %.2f×\n", os.Getenv("KERBGATE_BENCH_BASELINE"), kr/bl,
			ui/best("userinfo (redis, baseline)").RPS)
	}
	least := func(name string) cpuCost { // the round least disturbed by the rest of the machine
		var m cpuCost
		for i, c := range costs[name] {
			if i == 0 || c.server < m.server {
				m = c
			}
		}
		return m
	}
	kc, nc := least("kerbgate-redis"), least("oidc-provider")
	fmt.Fprintf(&tbl, "CPU per flow (least of the rounds): kerbgate (Redis) %.0f µs + redis-server %.0f µs, oidc-provider %.0f µs: %.2f× less for kerbgate (%.2f× with redis-server); load generator %.0f / %.0f µs\n",
		kc.server, kc.redis, nc.server, nc.server/kc.server, nc.server/(kc.server+kc.redis), kc.loadgen, nc.loadgen)
	fmt.Fprintf(&tbl, "on an otherwise idle machine that bounds kerbgate (Redis) at %.0f flows/s (2 cores / server+redis+load generator) and oidc-provider at %.0f (one thread: 1 core / server)\n",
		2e6/(kc.server+kc.redis+kc.loadgen), min(1e6/nc.server, 2e6/(nc.server+nc.loadgen)))
	fmt.Fprintf(&tbl, "userinfo / floor: %.0f %% (target ≥ 60 %%); JWKS / floor: %.0f %%\n", 100*ui/fl, 100*jw/fl)
	fmt.Fprintf(&tbl, "token endpoint p99 at 16 connections: %s in the flow run, %s alone (target ≤ 10 ms)\n", ms(tok.P99), ms(tokenAlone.P99))
	fmt.Print(tbl.String())
	b.ReportMetric(kr, "redis-flows/s")
	b.ReportMetric(kr/np, "redis/oidc-provider")
	b.ReportMetric(ui/fl, "userinfo/floor")
}

// opNode is a `kerbgate serve` process with an OpenID Provider: one confidential
// client, rp (client_secret_basic, PKCE accepted), any domain user.
type opNode struct {
	base, issuer string
	pid          int
	pprof        string // host:port of its pprof listener, with -tags pprof
}

// benchBuild builds cmd/kerbgate, with the pprof listener when asked.
func benchBuild(b *testing.B, pprof bool) string {
	if !pprof {
		return testrealm.GoBuild(b, "../../cmd/kerbgate")
	}
	bin := filepath.Join(b.TempDir(), "kerbgate")
	if out, err := exec.Command("go", "build", "-tags", "pprof", "-o", bin, "../../cmd/kerbgate").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// buildRevision builds cmd/kerbgate as it was at git revision rev (a detached
// worktree in a temporary directory).
func buildRevision(b *testing.B, rev string) string {
	dir := filepath.Join(b.TempDir(), "src")
	if out, err := exec.Command("git", "worktree", "add", "--detach", dir, rev).CombinedOutput(); err != nil {
		b.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	defer exec.Command("git", "worktree", "remove", "--force", dir).Run()
	bin := filepath.Join(b.TempDir(), "kerbgate-"+rev)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kerbgate")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build at %s: %v\n%s", rev, err, out)
	}
	return bin
}

// cookieKeysFile is a fresh farm cookie key file.
func cookieKeysFile(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "cookie.keys")
	mustWriteFile(b, p, keyset.NewKeyLine()+"\n")
	return p
}

// startOPNode starts kerbgate with the store section's body storeYAML, the real
// directory (LDAPS, answers cached 60 s as in the example configuration) and log
// level info, and stops it when the benchmark ends.
func startOPNode(b *testing.B, r *testrealm.Realm, bin, keys, storeYAML string, pprof bool) *opNode {
	b.Helper()
	dh, _ := secretHashes(b)
	port := testrealm.FreePort(b)
	n := &opNode{base: "http://127.0.0.1:" + strconv.Itoa(port)}
	n.issuer = n.base + "/oidc"
	cfg := fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [%s]
  spns: [HTTP/sso.example.test]
directory:
  url: ldaps://dc1.example.test:636
  ca_file: %s
  tls_legacy_cn: true
  base_dn: %s
  bind:
    method: simple
    dn: %s
    password_file: %s
  cache_ttl: 60s
store:
%soidc_provider:
  issuer: %s
  signing_keys_file: %s
  clients:
    - id: rp
      secret_hash: '%s'
      redirect_uris: [%s]
log:
  level: info
  format: json
`, port, r.GatewayKeytab, r.CACert, testrealm.BaseDN, testrealm.LDAPBindDN, r.LDAPBindPasswordFile, storeYAML, n.issuer, keys, dh, opRPCallback)
	dir := b.TempDir()
	path := filepath.Join(dir, "kerbgate.yaml")
	mustWriteFile(b, path, cfg)
	cmd := exec.Command(bin, "serve", "--config", path)
	if pprof {
		n.pprof = "127.0.0.1:" + strconv.Itoa(testrealm.FreePort(b))
		cmd.Env = append(os.Environ(), "KERBGATE_PPROF_ADDR="+n.pprof)
	}
	logf, err := os.Create(filepath.Join(dir, "kerbgate.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n.pid = cmd.Process.Pid
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for i := 0; ; i++ {
		resp, err := http.Get(n.issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		if i == 200 {
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("kerbgate did not come up: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profile writes a CPU profile of the node, taken for d, to dir/NAME.pprof.
func (n *opNode) profile(b *testing.B, dir, name string, d time.Duration) {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.pprof, int(d.Seconds())))
	if err != nil {
		b.Errorf("profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(dir, strings.NewReplacer(" ", "-", "(", "", ")", "", "/", "").Replace(name)+".pprof"))
	if err != nil {
		b.Errorf("profile %s: %v", name, err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

// authorizeQuery is the authorization request of one flow, with a fresh PKCE
// verifier, state and nonce.
func authorizeQuery() (url.Values, string) {
	verifier := oauth2.GenerateVerifier()
	return url.Values{
		"client_id": {"rp"}, "redirect_uri": {opRPCallback}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {oauth2.GenerateVerifier()[:16]}, "nonce": {oauth2.GenerateVerifier()[:16]},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}, verifier
}

// redirect sends req as step and returns its Location, resolved against the
// request's URL; the answer must be a redirect.
func redirect(s *loadgen.Steps, step string, req *http.Request) (*url.URL, error) {
	resp, body, err := s.Do(step, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("%s: status %d, want a redirect: %.200s", step, resp.StatusCode, body)
	}
	loc, err := req.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("%s: Location: %w", step, err)
	}
	return loc, nil
}

// code returns the code of a redirect to the client, which must carry state.
func code(step string, loc *url.URL, state string) (string, error) {
	if !strings.HasPrefix(loc.String(), opRPCallback+"?") || loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("%s: redirect to %.200s, want the client's callback with a code", step, loc)
	}
	return loc.Query().Get("code"), nil
}

// tokens is the token endpoint's answer.
type tokens struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
}

// redeem posts the code with the client's secret (client_secret_basic) and the
// PKCE verifier.
func redeem(ctx context.Context, s *loadgen.Steps, tokenURL, code, verifier string) (tokens, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {opRPCallback}, "code_verifier": {verifier}}
	req, _ := http.NewRequestWithContext(ctx, "POST", tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", demoSecret)
	resp, body, err := s.Do("token", req)
	if err != nil {
		return tokens{}, err
	}
	var t tokens
	if resp.StatusCode != 200 || json.Unmarshal(body, &t) != nil || t.AccessToken == "" || t.IDToken == "" {
		return tokens{}, fmt.Errorf("token: status %d: %.300s", resp.StatusCode, body)
	}
	return t, nil
}

// userinfo gets the claims with the access token.
func userinfo(ctx context.Context, s *loadgen.Steps, u, accessToken string) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, body, err := s.Do("userinfo", req)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &claims) != nil || claims["sub"] == "" {
		return nil, fmt.Errorf("userinfo: status %d: %.300s", resp.StatusCode, body)
	}
	return claims, nil
}

// flowResult is what one flow's last steps returned, for checkedFlow.
type flowResult struct {
	tokens tokens
	claims map[string]any
	nonce  string
}

type flowResultKey struct{}

// report hands a flow's outcome to checkedFlow, when it asked for it.
func report(ctx context.Context, t tokens, claims map[string]any, nonce string) {
	if p, ok := ctx.Value(flowResultKey{}).(*flowResult); ok {
		*p = flowResult{t, claims, nonce}
	}
}

// flow is one complete authorization-code flow at kerbgate, signed in with a fresh
// Negotiate authenticator.
func (n *opNode) flow() loadgen.Flow {
	return func(ctx context.Context, s *loadgen.Steps) error {
		_, _, t, claims, nonce, err := n.codeAndTokens(ctx, s, true)
		if err != nil {
			return err
		}
		report(ctx, t, claims, nonce)
		return nil
	}
}

// codeAndTokens runs the flow up to the code, and with redeemIt the token and
// userinfo steps.
func (n *opNode) codeAndTokens(ctx context.Context, s *loadgen.Steps, redeemIt bool) (string, string, tokens, map[string]any, string, error) {
	q, verifier := authorizeQuery()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.issuer+"/authorize?"+q.Encode(), nil)
	login, err := redirect(s, "authorize", req)
	if err != nil {
		return "", "", tokens{}, nil, "", err
	}
	h, err := s.Negotiate()
	if err != nil {
		return "", "", tokens{}, nil, "", err
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", login.String(), nil)
	req.Header.Set("Authorization", h)
	loc, err := redirect(s, "login", req)
	if err != nil {
		return "", "", tokens{}, nil, "", err
	}
	step := "login"
	if !strings.HasPrefix(loc.String(), opRPCallback) { // through the library's callback
		req, _ = http.NewRequestWithContext(ctx, "GET", loc.String(), nil)
		step = "callback"
		if loc, err = redirect(s, step, req); err != nil {
			return "", "", tokens{}, nil, "", err
		}
	}
	c, err := code(step, loc, q.Get("state"))
	if err != nil || !redeemIt {
		return c, verifier, tokens{}, nil, q.Get("nonce"), err
	}
	t, err := redeem(ctx, s, n.issuer+"/oauth/token", c, verifier)
	if err != nil {
		return "", "", tokens{}, nil, "", err
	}
	claims, err := userinfo(ctx, s, n.issuer+"/userinfo", t.AccessToken)
	return c, verifier, t, claims, q.Get("nonce"), err
}

// accessToken runs one flow and returns its access token (for the userinfo runs).
func (n *opNode) accessToken(b *testing.B, cred *initiator.Credential) string {
	var tok string
	flow := func(ctx context.Context, s *loadgen.Steps) error {
		_, _, t, _, _, err := n.codeAndTokens(ctx, s, true)
		tok = t.AccessToken
		return err
	}
	if res, err := loadgen.Run(context.Background(), loadgen.Options{Flow: flow, Credential: cred, Requests: 1, Connections: 1}); err != nil || res.Errors > 0 {
		b.Fatalf("a flow for an access token: %v %v", err, res)
	}
	return tok
}

// tokenAlone makes codes for about d (16 connections), then redeems them all at
// the token endpoint (16 connections) and returns that run.
func (n *opNode) tokenAlone(b *testing.B, cred *initiator.Credential, d time.Duration) *loadgen.Result {
	type pending struct{ code, verifier string }
	var (
		mu    sync.Mutex
		codes []pending
	)
	makeCode := func(ctx context.Context, s *loadgen.Steps) error {
		c, v, _, _, _, err := n.codeAndTokens(ctx, s, false)
		if err == nil {
			mu.Lock()
			codes = append(codes, pending{c, v})
			mu.Unlock()
		}
		return err
	}
	if res, err := loadgen.Run(context.Background(), loadgen.Options{Flow: makeCode, Credential: cred, Connections: 16, Duration: d}); err != nil || res.Errors > 0 {
		b.Fatalf("making codes: %v %v", err, res)
	}
	next := 0
	redeemOne := func(ctx context.Context, s *loadgen.Steps) error {
		mu.Lock()
		p := codes[next]
		next++
		mu.Unlock()
		_, err := redeem(ctx, s, n.issuer+"/oauth/token", p.code, p.verifier)
		return err
	}
	res, err := loadgen.Run(context.Background(), loadgen.Options{Flow: redeemOne, Connections: 16, Requests: len(codes)})
	if err != nil || res.Errors > 0 {
		b.Fatalf("token alone: %v %v", err, res)
	}
	return res
}

// nodeSession signs in once at oidc-provider through its auto-completing
// interaction (login and consent for alice) and returns the session cookies, with
// which its authorization endpoint answers with a code at once.
func nodeSession(b *testing.B, issuer string) string {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), opRPCallback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q, _ := authorizeQuery()
	resp, err := c.Get(issuer + "/auth?" + q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Location"), opRPCallback+"?") {
		b.Fatalf("oidc-provider sign-in: %s: status %d, Location %q: %s", resp.Request.URL, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var cookies []string
	for _, ck := range jar.Cookies(mustURL(b, issuer+"/auth")) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	return strings.Join(cookies, "; ")
}

// nodeFlow is one complete authorization-code flow at oidc-provider with the
// session cookies: GET /auth answers with the code, then the token and userinfo.
func nodeFlow(issuer, cookie string) loadgen.Flow {
	return func(ctx context.Context, s *loadgen.Steps) error {
		q, verifier := authorizeQuery()
		req, _ := http.NewRequestWithContext(ctx, "GET", issuer+"/auth?"+q.Encode(), nil)
		req.Header.Set("Cookie", cookie)
		loc, err := redirect(s, "authorize", req)
		if err != nil {
			return err
		}
		c, err := code("authorize", loc, q.Get("state"))
		if err != nil {
			return err
		}
		t, err := redeem(ctx, s, issuer+"/token", c, verifier)
		if err != nil {
			return err
		}
		claims, err := userinfo(ctx, s, issuer+"/me", t.AccessToken)
		if err != nil {
			return err
		}
		report(ctx, t, claims, q.Get("nonce"))
		return nil
	}
}

// checkedFlow runs flow and checks what a relying party would: the ID token
// verifies with the issuer's JWKS (ES256), names the issuer, the client and the
// nonce, and userinfo's subject is the ID token's.
func checkedFlow(b *testing.B, flow loadgen.Flow, issuer string) loadgen.Flow {
	return func(ctx context.Context, s *loadgen.Steps) error {
		var got flowResult
		if err := flow(context.WithValue(ctx, flowResultKey{}, &got), s); err != nil {
			return err
		}
		p, err := oidc.NewProvider(ctx, issuer)
		if err != nil {
			return err
		}
		idt, err := p.Verifier(&oidc.Config{ClientID: "rp"}).Verify(ctx, got.tokens.IDToken)
		if err != nil {
			return fmt.Errorf("ID token: %w", err)
		}
		if idt.Nonce != got.nonce || idt.Subject != got.claims["sub"] {
			return fmt.Errorf("ID token nonce %q sub %q; userinfo %v", idt.Nonce, idt.Subject, got.claims)
		}
		hdr, _, _ := strings.Cut(got.tokens.IDToken, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(hdr)
		if !strings.Contains(string(raw), `"ES256"`) {
			return errors.New("ID token not signed with ES256: " + string(raw))
		}
		return nil
	}
}

// single is a one-request flow: method url, with a bearer token when not "".
func single(method, u, bearer string) loadgen.Flow {
	return func(ctx context.Context, s *loadgen.Steps) error {
		req, _ := http.NewRequestWithContext(ctx, method, u, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, body, err := s.Do("request", req)
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d: %.200s", u, resp.StatusCode, body)
		}
		return nil
	}
}

// cpuSnapshot is the CPU time used so far by a server, redis-server, this process
// (the load generator) and the whole machine, and the machine's elapsed CPU time.
type cpuSnapshot struct {
	server, redis, self, busy, total time.Duration
}

// cpuCost is a run's CPU time per operation, by process, and how busy the
// machine was.
type cpuCost struct {
	server, redis, loadgen, rest float64 // µs per operation
	busy                         float64 // fraction of the machine's CPU time
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func takeCPU(server, redis int) cpuSnapshot {
	s := cpuSnapshot{server: procCPU(server), redis: procCPU(redis), self: procCPU(os.Getpid())}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			d := time.Duration(n) * clockTick
			if i < 8 { // user nice system idle iowait irq softirq steal
				s.total += d
				if i != 3 && i != 4 {
					s.busy += d
				}
			}
		}
	}
	return s
}

// procCPU is the user and system time of process pid (0 when unknown).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if pid == 0 || err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:])) // from field 3 (state) on
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * clockTick
}

func (s cpuSnapshot) since(before cpuSnapshot, ops int) cpuCost {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(ops, 1)) }
	c := cpuCost{server: per(s.server - before.server), redis: per(s.redis - before.redis), loadgen: per(s.self - before.self)}
	c.rest = per(s.busy-before.busy) - c.server - c.redis - c.loadgen
	if s.total > before.total {
		c.busy = float64(s.busy-before.busy) / float64(s.total-before.total)
	}
	return c
}
