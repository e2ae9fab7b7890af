package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
)

// Defaults of RedisOptions.
const (
	DefaultRedisPrefix      = "kerbgate:"
	DefaultRedisTimeout     = time.Second
	DefaultRedisDialTimeout = 2 * time.Second
	DefaultRedisGrace       = 5 * time.Minute
	// DefaultRedisReplicaAckTimeout is how long a write waits for its replicas'
	// acknowledgements when MinReplicaAcks is set and ReplicaAckTimeout is not.
	DefaultRedisReplicaAckTimeout = 500 * time.Millisecond

	// clusterReloadInterval is how often a Cluster's slot map is reloaded when
	// nothing fails (go-redis's default is a minute).
	clusterReloadInterval = 10 * time.Second
)

// RedisOptions configures OpenRedis: where Redis is, how to authenticate, and how
// long to wait for it. The Password is never logged nor put in an error.
type RedisOptions struct {
	// Addrs is one host:port for a single server; several for a Redis Cluster (seed
	// nodes); the Sentinels' addresses when MasterName is set.
	Addrs []string
	// MasterName selects Redis Sentinel: the name of the monitored master.
	MasterName string
	// Username and Password authenticate with an ACL user (Redis 6+); Username ""
	// with a Password is the default user (requirepass).
	Username string
	Password string
	// DB is the database number (single server and Sentinel only).
	DB int
	// TLS, when not nil, is used for every connection (see RedisTLSConfig).
	TLS *tls.Config

	// Prefix starts every key ("kerbgate:" when empty), so that one Redis can serve
	// several kerbgate farms or other programs. An ACL user can be confined to it
	// (~kerbgate:*).
	Prefix string
	// DialTimeout bounds establishing a connection (2s when zero).
	DialTimeout time.Duration
	// Timeout bounds each store operation as a whole, connecting, a retry and the
	// replicas' acknowledgement included (1s when zero): a hung Redis delays a
	// request by at most this long before it is refused with ErrUnavailable.
	Timeout time.Duration
	// MinReplicaAcks is how many replicas must hold a write before the store
	// reports it done (WAIT, sent on the write's connection): a token, an OIDC
	// code, a session, a revocation, a redemption or a replay entry then survives
	// the loss of the primary. A write that fewer replicas acknowledge within
	// ReplicaAckTimeout fails with ErrUnavailable (it stays on the primary, which
	// may lose it: the caller refuses the request, so nothing was promised). 0
	// does not wait: a failover can lose the last writes.
	MinReplicaAcks int
	// ReplicaAckTimeout bounds the wait for MinReplicaAcks (500ms when zero); it
	// must be shorter than Timeout.
	ReplicaAckTimeout time.Duration
	// Grace is how long Redis keeps a record after its expiry (5m when zero): a
	// node whose clock lags the writer's still finds a replay entry or a used
	// token's tombstone for as long as it would accept the authenticator or token.
	// Validity is always decided by the stored expiry against the caller's time;
	// Grace only delays the purge. kerbgate sets it to kerberos.clock_skew.
	Grace time.Duration
	// Now is the clock from which key lifetimes are derived when a method is not
	// given the time (PutToken, PutSession); time.Now when nil.
	Now func() time.Time
	// Logger receives the Redis client library's own messages (failed dials, pool
	// events) at debug level; nil discards them. Requests refused for an
	// unavailable store are logged by the caller at error level with the facts.
	// The library keeps one logger per process: the Redis opened last with a
	// Logger receives the messages of every client.
	Logger *slog.Logger
}

// Redis is a Store in Redis, shared by every node of a farm: a token issued by one
// node can be redeemed on any other, and an authenticator seen by one node is a
// replay on all of them.
//
// Keys are Prefix + "tok:" / "ses:" + hex(SHA-256(id)) for tokens and sessions and
// Prefix + "rpl:" + hex(key) for replay entries; no raw token or session id is sent
// to Redis. A value starts with a kind byte ('L' live, 'U' used token tombstone)
// and the expiry as 19 decimal digits of Unix nanoseconds; live records go on with
// their JSON (the same JSON as Bolt's). Replay values are the expiry alone.
//
// Every check-and-modify (TakeToken, SeenBefore) is one Lua script, so it is atomic
// across nodes; PutToken is SET NX. Each record's Redis lifetime is its remaining
// validity plus Grace; expired records are refused by every read regardless, so no
// purge goroutine is needed.
//
// Any failure to talk to Redis (refused connection, timeout, authentication or ACL
// error, failover in progress, out of memory) is an error that matches
// ErrUnavailable (and replay.ErrUnavailable) and names the operation and the
// address; callers refuse the request. The client reconnects by itself, so the
// store works again as soon as Redis does.
//
// A failed connection is retried once within Timeout. If Redis executed a
// TakeToken or SeenBefore but its answer was lost, the retry sees the token used or
// the authenticator seen: the request is refused, never accepted twice.
//
// Redis 6.0 or later is required (ACL users, SET KEEPTTL). With Sentinel or a
// Cluster the client follows a failover by itself (the Sentinels name the new
// primary; a Cluster's nodes redirect with MOVED), and a slot migration (ASK).
// With MinReplicaAcks every write is reported done only once that many replicas
// hold it, so a failover loses nothing acknowledged; without it, the primary's
// word is all there is, and a failover can lose the last writes (a token would
// then be unknown, a replay entry forgotten).
//
// Every operation touches exactly one key, and every Lua script is given that
// key alone, so in a Cluster no operation spans two slots and none needs a hash
// tag; a prefix with a hash tag ({...}) would put every key in one slot, and the
// configuration refuses it for a Cluster.
type Redis struct {
	client     redis.UniversalClient
	prefix     string
	addr       string // for error messages: the address(es) as configured
	timeout    time.Duration
	grace      time.Duration
	acks       int
	ackTimeout time.Duration
	now        func() time.Time
	once       sync.Once
	err        error
}

var _ Store = (*Redis)(nil)

// OpenRedis returns a store over a new go-redis UniversalClient: a single server
// for one address, Sentinel with MasterName, a Cluster for several addresses. It
// does not connect; see Ping.
func OpenRedis(o RedisOptions) (*Redis, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("store: no Redis address")
	}
	if len(o.Addrs) > 1 && o.MasterName == "" && o.DB != 0 {
		return nil, errors.New("store: Redis Cluster has only database 0")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultRedisDialTimeout
	}
	if o.MinReplicaAcks < 0 {
		return nil, errors.New("store: negative number of replica acknowledgements")
	}
	if o.MinReplicaAcks > 0 && o.ReplicaAckTimeout <= 0 {
		o.ReplicaAckTimeout = DefaultRedisReplicaAckTimeout
	}
	if o.MinReplicaAcks > 0 && o.ReplicaAckTimeout >= o.Timeout {
		return nil, fmt.Errorf("store: replica acknowledgement timeout %v is not shorter than the operation timeout %v", o.ReplicaAckTimeout, o.Timeout)
	}
	useRedisLogger(o.Logger)
	uo := &redis.UniversalOptions{
		Addrs:      o.Addrs,
		MasterName: o.MasterName,
		Username:   o.Username,
		Password:   o.Password,
		DB:         o.DB,
		TLSConfig:  o.TLS,
		// Bounded waits: each operation runs under a context deadline of Timeout,
		// which the client honours for dialling, the pool and the reply.
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		// A refused connection fails fast: two dial attempts 50ms apart. After
		// PoolSize failed dials the client fails at once and probes Redis every
		// second in the background, so it recovers within a second of Redis.
		DialerRetries:      2,
		DialerRetryTimeout: 50 * time.Millisecond,
		// No client-name handshake (CLIENT SETINFO, Redis 7.2+) and no maintenance
		// push notifications: fewer commands for the ACL to allow.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	var client redis.UniversalClient
	if o.MasterName == "" && len(o.Addrs) > 1 {
		co := uo.Cluster()
		// The slot map is reloaded when an operation fails (fail), which is
		// how a failover is followed; this is the backstop.
		co.ClusterStateReloadInterval = clusterReloadInterval
		// Every command names its one key, so it goes to that key's primary.
		// go-redis's request routing policies would read COMMAND's table, which
		// kerbgate's ACL need not allow: refused, it is asked for again before
		// every command, of up to three random nodes.
		co.DisableRoutingPolicies = true
		client = redis.NewClusterClient(co)
	} else {
		client = redis.NewUniversalClient(uo)
	}
	installAckHook(client)
	return newRedis(client, strings.Join(o.Addrs, ","), o), nil
}

func newRedis(client redis.UniversalClient, addr string, o RedisOptions) *Redis {
	r := &Redis{client: client, prefix: o.Prefix, addr: addr, timeout: o.Timeout, grace: o.Grace, now: o.Now,
		acks: o.MinReplicaAcks, ackTimeout: o.ReplicaAckTimeout}
	if r.prefix == "" {
		r.prefix = DefaultRedisPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.grace <= 0 {
		r.grace = DefaultRedisGrace
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// RedisTLSConfig builds the TLS configuration of a Redis connection: the server's
// certificate is verified against the CA certificates in caFile (the system's when
// ""), for serverName (the address's host when ""); certFile and keyFile, both or
// neither, are the client certificate for servers that require one.
func RedisTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("store: redis CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store: redis CA: no certificate in %s", caFile)
		}
		c.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("store: redis client certificate needs both a certificate and a key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("store: redis client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Close closes the connections. It is safe to call twice.
func (r *Redis) Close() error {
	r.once.Do(func() { r.err = r.client.Close() })
	return r.err
}

// redisLog routes the Redis client library's messages (it has one logger per
// process) to the Logger of the Redis opened last with one.
var redisLog struct {
	once sync.Once
	cur  atomic.Pointer[slog.Logger]
}

func useRedisLogger(l *slog.Logger) {
	if l != nil {
		redisLog.cur.Store(l)
	}
	redisLog.once.Do(func() { redis.SetLogger(redisLogger{}) })
}

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLog.cur.Load(); l != nil {
		l.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
	}
}

// ErrRedisAuth is matched, along with ErrUnavailable, by an error of a Redis that
// refused kerbgate's credentials (wrong user or password, or an ACL without the
// commands kerbgate needs).
var ErrRedisAuth = errors.New("redis refused the credentials")

// unavailableError is a failure to use Redis. Its text names the operation, the
// address and the client's error (never a key or a password).
type unavailableError struct {
	op, addr string
	err      error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("store: redis %s at %s: %v", e.op, e.addr, e.err)
}

func (e *unavailableError) Unwrap() error { return e.err }

func (e *unavailableError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return true
	case ErrRedisAuth:
		return redis.IsAuthError(e.err) || redis.IsPermissionError(e.err)
	}
	return false
}

// fail classifies an error of the client. A request whose own context ended gets
// that context's error (the client went away: nothing is unavailable).
//
// In a Cluster, a failure also reloads the slot map (in the background, one
// reload at a time): the client learns of a new primary only from a MOVED reply
// or a reload, and a dead or hung primary sends no MOVED, so this is how the
// store follows a failover.
func (r *Redis) fail(parent context.Context, op string, err error) error {
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		var ack *ackError
		if !errors.As(err, &ack) && !redis.IsAuthError(err) && !redis.IsPermissionError(err) {
			cc.ReloadState(context.Background())
		}
	}
	if parent != nil && parent.Err() != nil {
		return fmt.Errorf("store: redis %s: %w", op, parent.Err())
	}
	return &unavailableError{op: op, addr: r.addr, err: err}
}

// opContext bounds one operation by the store's Timeout.
func (r *Redis) opContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, r.timeout)
}

// Ping checks that Redis answers and accepts the credentials, and, with
// MinReplicaAcks, that the primary has that many replicas acknowledging (a
// single server or Sentinel: writes would all be refused otherwise). In a Cluster
// it asks one node; Open checks every primary's replicas. An error matches
// ErrUnavailable, and also ErrRedisAuth when the credentials were refused.
func (r *Redis) Ping(ctx context.Context) error {
	octx, cancel := r.opContext(ctx)
	defer cancel()
	if c, ok := r.client.(*redis.Client); ok && r.acks > 0 {
		if err := r.pingReplicas(octx, c, false); err != nil {
			return r.fail(ctx, "ping", err)
		}
		return nil
	}
	if err := r.client.Ping(octx).Err(); err != nil {
		return r.fail(ctx, "ping", err)
	}
	return nil
}

// pingReplicas sends PING and, with MinReplicaAcks, WAIT to c's primary on one
// connection: WAIT answers at once with the number of replicas that acknowledge
// its connection's writes (all of them, when it made none). asking first sends
// ASKING, which a Cluster's client needs to follow a slot being migrated, so
// that an ACL without it is found at start-up.
func (r *Redis) pingReplicas(ctx context.Context, c *redis.Client, asking bool) error {
	w := &ackedWrite{replicas: r.acks, timeout: r.ackTimeout}
	wait := waitCmd(ctx, w)
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if asking {
			_ = p.Process(ctx, redis.NewStatusCmd(ctx, "asking"))
		}
		_ = p.Ping(ctx)
		if r.acks > 0 {
			_ = p.Process(ctx, wait)
		}
		return nil
	}); err != nil {
		return err
	}
	if r.acks <= 0 {
		return nil
	}
	w.acknowledged = int(wait.Val())
	return w.durable()
}

// checkCommands checks every primary (each shard of a Cluster) at start-up:
// that kerbgate's ACL allows the commands it will need besides its reads and
// writes (WAIT with MinReplicaAcks, ASKING in a Cluster), and that each has
// MinReplicaAcks replicas acknowledging. The error matches ErrRedisAuth when a
// command was refused.
func (r *Redis) checkCommands(ctx context.Context) error {
	octx, cancel := r.opContext(ctx)
	defer cancel()
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		var bad []string
		var denied error
		err = c.ForEachMaster(octx, func(ctx context.Context, n *redis.Client) error {
			if err := r.pingReplicas(ctx, n, true); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if redis.IsPermissionError(err) {
					denied = err
				}
				bad = append(bad, fmt.Sprintf("%s: %v", n.Options().Addr, err))
			}
			return nil
		})
		switch {
		case err != nil:
		case denied != nil:
			err = denied
		case len(bad) > 0:
			sort.Strings(bad)
			err = errors.New(strings.Join(bad, "; "))
		}
	case *redis.Client:
		if r.acks > 0 {
			err = r.pingReplicas(octx, c, false)
		}
	}
	if err != nil {
		return r.fail(ctx, "start_check", err)
	}
	return nil
}

// Key kinds and value layout.
const (
	redisLive = 'L'
	redisUsed = 'U'
	expDigits = 19 // decimal digits of a non-negative int64
)

func (r *Redis) tokenKey(token string) string {
	h := hashID(token)
	return r.prefix + "tok:" + hex.EncodeToString(h[:])
}

func (r *Redis) sessionKey(id string) string {
	h := hashID(id)
	return r.prefix + "ses:" + hex.EncodeToString(h[:])
}

func (r *Redis) replayKey(k replay.Key) string {
	return r.prefix + "rpl:" + hex.EncodeToString(k[:])
}

// stamp renders t as 19 decimal digits of Unix nanoseconds, so that the Lua scripts
// compare times exactly (Lua numbers are doubles: they hold 53 bits, not 63).
// Times before 1970 are clamped to 0.
func stamp(t time.Time) string {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%019d", n)
}

// lifetime is how long Redis keeps a record that expires at exp: its remaining
// validity at now plus the grace period, and at least a second, so that a record
// put already expired still reads as expired for a moment. Redis counts it on its
// own clock from the write, so nodes' clocks need not agree with Redis's.
func (r *Redis) lifetime(now, exp time.Time) time.Duration {
	d := exp.Sub(now) + r.grace
	if d < time.Second {
		d = time.Second
	}
	return d
}

func encodeRedis(kind byte, exp time.Time, payload any) (string, error) {
	var b strings.Builder
	b.WriteByte(kind)
	b.WriteString(stamp(exp))
	if payload != nil {
		j, err := json.Marshal(payload)
		if err != nil {
			return "", err
		}
		b.Write(j)
	}
	return b.String(), nil
}

// decodeRedis splits a token or session value.
func decodeRedis(v string) (kind byte, exp int64, payload string, ok bool) {
	if len(v) < 1+expDigits {
		return 0, 0, "", false
	}
	n, err := strconv.ParseInt(v[1:1+expDigits], 10, 64)
	if err != nil {
		return 0, 0, "", false
	}
	return v[0], n, v[1+expDigits:], true
}

// luaBefore compares two 19-digit stamps exactly, in two halves that fit a double.
const luaBefore = `
local function before(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then return ah < bh end
  return tonumber(string.sub(a, 11, 19)) < tonumber(string.sub(b, 11, 19))
end
`

// takeScript consumes a live token: KEYS[1] the token's key, ARGV[1] now, ARGV[2]
// the taking application's id. It answers "N" (not found), "U" (used), "C"
// (corrupt), "E" (expired: refused, the token stays live), "A" (another
// application's token: refused, the token stays live), or the live value it
// replaced with a tombstone that keeps the key's lifetime.
var takeScript = redis.NewScript(luaBefore + `
local v = redis.call('GET', KEYS[1])
if not v then return 'N' end
local kind = string.sub(v, 1, 1)
if kind == 'U' then return 'U' end
if kind ~= 'L' or string.len(v) < 20 then return 'C' end
local exp = string.sub(v, 2, 20)
if not before(ARGV[1], exp) then return 'E' end
local ok, rec = pcall(cjson.decode, string.sub(v, 21))
if not ok or type(rec) ~= 'table' then return 'C' end
local app = rec['app_id']
if app == nil then app = '' end
if app ~= ARGV[2] then return 'A' end
redis.call('SET', KEYS[1], 'U' .. exp, 'KEEPTTL')
return v
`)

// seenScript is SeenBefore: KEYS[1] the entry's key, ARGV[1] now, ARGV[2] the new
// expiry, ARGV[3] the key's lifetime in milliseconds. An entry counts as seen while
// now is not after its expiry (as replay.Memory); otherwise it is (re)recorded.
var seenScript = redis.NewScript(luaBefore + `
local old = redis.call('GET', KEYS[1])
if old and string.len(old) == 19 and not before(old, ARGV[1]) then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 0
`)

// PutToken implements Tokens (SET NX: a token, live or used, is never overwritten).
func (r *Redis) PutToken(ctx context.Context, token string, t Token) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := checkID("token", token); err != nil {
		return err
	}
	if err := checkExpiry("token", t.ExpiresAt); err != nil {
		return err
	}
	v, err := encodeRedis(redisLive, t.ExpiresAt, tokenRecord(t))
	if err != nil {
		return fmt.Errorf("store: encoding token: %w", err)
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	key := r.tokenKey(token)
	octx, w := r.withAcks(octx, key)
	ok, err := r.client.SetNX(octx, key, v, r.lifetime(r.now(), t.ExpiresAt)).Result()
	if err == nil && ok {
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "put_token", err)
	}
	if !ok {
		return ErrExists
	}
	return nil
}

// TakeToken implements Tokens. A successful take replaces the record with a
// tombstone that lives as long as the token would have (its ExpiresAt plus Grace).
func (r *Redis) TakeToken(ctx context.Context, token, appID string, now time.Time) (Token, error) {
	if err := ctxErr(ctx); err != nil {
		return Token{}, err
	}
	if err := checkID("token", token); err != nil {
		return Token{}, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	key := r.tokenKey(token)
	octx, w := r.withAcks(octx, key)
	res, err := takeScript.Run(octx, r.client, []string{key}, stamp(now), appID).Text()
	if err == nil && len(res) > 1 {
		// Taken: the tombstone must outlive a failover, or the token could be
		// redeemed a second time.
		err = w.durable()
	}
	if err != nil {
		return Token{}, r.fail(ctx, "take_token", err)
	}
	return takenToken(res)
}

// takenToken is TakeToken's answer from takeScript's.
func takenToken(res string) (Token, error) {
	switch res {
	case "N":
		return Token{}, ErrNotFound
	case "U":
		return Token{}, ErrTokenUsed
	case "E":
		return Token{}, ErrExpired
	case "A":
		return Token{}, ErrOtherApp
	case "C":
		return Token{}, errCorrupt
	}
	kind, _, payload, ok := decodeRedis(res)
	if !ok || kind != redisLive {
		return Token{}, errCorrupt
	}
	var rec tokenRecord
	if err := json.Unmarshal([]byte(payload), &rec); err != nil {
		return Token{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return Token(rec), nil
}

// TakeTokenReading implements Tokens: the take's script and the GETs go in one
// pipeline. A Redis that no longer knows the script (restarted, SCRIPT FLUSH)
// answers NOSCRIPT without running anything; the pipeline is then sent again with
// the script's source.
//
// With MinReplicaAcks the take is durable as TakeToken's: the hook puts a WAIT
// behind the script in the share of the pipeline sent to the primary that runs
// it (in a Cluster the GETs may go to other nodes; after MOVED or ASK, to the
// node that finally ran it), so it stays one round trip per node.
func (r *Redis) TakeTokenReading(ctx context.Context, token, appID string, now time.Time, ids []string) (Token, []SessionRead, error) {
	if err := ctxErr(ctx); err != nil {
		return Token{}, nil, err
	}
	if err := checkID("token", token); err != nil {
		return Token{}, nil, err
	}
	if err := checkIDs(ids); err != nil {
		return Token{}, nil, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	key := r.tokenKey(token)
	octx, w := r.withAcks(octx, key)
	keys, args := []string{key}, []any{stamp(now), appID}
	var (
		take *redis.Cmd
		gets []*redis.StringCmd
	)
	for _, bySource := range []bool{false, true} {
		pipe := r.client.Pipeline()
		if bySource {
			take = takeScript.Eval(octx, pipe, keys, args...)
		} else {
			take = takeScript.EvalSha(octx, pipe, keys, args...)
		}
		gets = make([]*redis.StringCmd, len(ids))
		for i, id := range ids {
			gets[i] = pipe.Get(octx, r.sessionKey(id))
		}
		_, _ = pipe.Exec(octx) // each command's answer is read below
		if !redis.HasErrorPrefix(take.Err(), "NOSCRIPT") {
			break
		}
	}
	res, err := take.Text()
	if err == nil && len(res) > 1 {
		// Taken: as TakeToken, the tombstone must outlive a failover, or the
		// code could be redeemed a second time.
		err = w.durable()
	}
	if err != nil {
		return Token{}, nil, r.fail(ctx, "take_token", err)
	}
	reads := make([]SessionRead, len(ids))
	for i, get := range gets {
		v, err := get.Result()
		switch {
		case errors.Is(err, redis.Nil):
			reads[i].Err = ErrNotFound
		case err != nil:
			return Token{}, nil, r.fail(ctx, "take_token", err)
		default:
			reads[i].Session, reads[i].Err = decodeRedisSession(v, now)
		}
	}
	t, err := takenToken(res)
	if err != nil {
		return Token{}, nil, err
	}
	return t, reads, nil
}

// PutSession implements Sessions.
func (r *Redis) PutSession(ctx context.Context, id string, s Session) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := checkID("session id", id); err != nil {
		return err
	}
	if err := checkExpiry("session", s.ExpiresAt); err != nil {
		return err
	}
	v, err := encodeRedis(redisLive, s.ExpiresAt, sessionRecord(s))
	if err != nil {
		return fmt.Errorf("store: encoding session: %w", err)
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	key := r.sessionKey(id)
	octx, w := r.withAcks(octx, key)
	err = r.client.Set(octx, key, v, r.lifetime(r.now(), s.ExpiresAt)).Err()
	if err == nil {
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "put_session", err)
	}
	return nil
}

// GetSession implements Sessions.
func (r *Redis) GetSession(ctx context.Context, id string, now time.Time) (Session, error) {
	if err := ctxErr(ctx); err != nil {
		return Session{}, err
	}
	if err := checkID("session id", id); err != nil {
		return Session{}, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	v, err := r.client.Get(octx, r.sessionKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, r.fail(ctx, "get_session", err)
	}
	return decodeRedisSession(v, now)
}

// decodeRedisSession reads a session's value as GetSession answers it.
func decodeRedisSession(v string, now time.Time) (Session, error) {
	kind, exp, payload, ok := decodeRedis(v)
	switch {
	case !ok || kind != redisLive:
		return Session{}, errCorrupt
	case now.UnixNano() >= exp:
		return Session{}, ErrExpired
	}
	var rec sessionRecord
	if err := json.Unmarshal([]byte(payload), &rec); err != nil {
		return Session{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return Session(rec), nil
}

// GetSessions implements Sessions: the GETs go in one pipeline, so one round trip
// to a single server (a Redis Cluster client sends each node its share at once).
// Not MGET: across a Cluster's slots it is refused, and the ACL kerbgate documents
// (docs/farm.md) allows get, not mget.
func (r *Redis) GetSessions(ctx context.Context, ids []string, now time.Time) ([]SessionRead, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := checkIDs(ids); err != nil || len(ids) == 0 {
		return nil, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Get(octx, r.sessionKey(id))
	}
	if _, err := pipe.Exec(octx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.fail(ctx, "get_sessions", err)
	}
	reads := make([]SessionRead, len(ids))
	for i, cmd := range cmds {
		v, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			reads[i].Err = ErrNotFound
		case err != nil:
			return nil, r.fail(ctx, "get_sessions", err)
		default:
			reads[i].Session, reads[i].Err = decodeRedisSession(v, now)
		}
	}
	return reads, nil
}

// DeleteSession implements Sessions.
func (r *Redis) DeleteSession(ctx context.Context, id string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := checkID("session id", id); err != nil {
		return err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	key := r.sessionKey(id)
	octx, w := r.withAcks(octx, key)
	n, err := r.client.Del(octx, key).Result()
	if err == nil && n > 0 {
		// A revocation a failover forgets would bring the session back.
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "delete_session", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SeenBefore implements replay.Cache, shared by every node using the same Redis and
// Prefix. The entry is kept until expires plus Grace. It waits for Redis at most the
// store's Timeout, and not after ctx ends (the error then wraps ctx's, not
// ErrUnavailable: Redis did not fail, the request went away).
func (r *Redis) SeenBefore(ctx context.Context, k replay.Key, now, expires time.Time) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// The script runs under the store's Timeout alone: go-redis honours a
	// context's deadline but not its cancellation while it waits for a reply, so
	// the wait for ctx is here. A cancelled check leaves the script to finish or
	// time out in the background.
	octx, cancel := r.opContext(context.WithoutCancel(ctx))
	key := r.replayKey(k)
	octx, w := r.withAcks(octx, key)
	ttl := r.lifetime(now, expires).Milliseconds()
	type answer struct {
		seen int
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		defer cancel()
		seen, err := seenScript.Run(octx, r.client, []string{key}, stamp(now), stamp(expires), ttl).Int()
		if err == nil && seen == 0 {
			// Recorded: a failover that forgot the entry would accept the
			// authenticator again.
			err = w.durable()
		}
		done <- answer{seen, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		return false, fmt.Errorf("store: redis replay_check: %w", ctx.Err())
	}
	if a.err != nil {
		return false, r.fail(ctx, "replay_check", a.err)
	}
	return a.seen == 1, nil
}
