package store

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps an attempt count under Prefix + "att:" + hex(SHA-256(key)) as
// "COUNT:LAST:UNTIL" (milliseconds), living until the window ends plus Grace, and a
// familiar source under Prefix + "fam:" + hex(SHA-256(key)) as its expiry (Unix
// nanoseconds). TakeAttempt is one Lua script: atomic across the farm. Each names
// one key (a Cluster's slot) and, with MinReplicaAcks, every write waits for the
// replicas as the other records' do: a count lost in a failover would be a guess
// more before the domain's lockout.

var _ Attempts = (*Redis)(nil)

func (r *Redis) attemptKey(key string) string {
	h := hashID(key)
	return r.prefix + "att:" + hex.EncodeToString(h[:])
}

func (r *Redis) familiarKey(key string) string {
	h := hashID(key)
	return r.prefix + "fam:" + hex.EncodeToString(h[:])
}

// takeAttemptScript is attemptRecord.take in Lua: KEYS[1] the count's key;
// ARGV now, Max, Window, Backoff, MaxBackoff (milliseconds but Max) and the key's
// lifetime beyond the window (Grace, milliseconds). It answers {taken, count,
// retry_after_ms, backing_off}. Times stay below 2^53, exact in Lua's doubles.
var takeAttemptScript = redis.NewScript(`
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base, cap, grace = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local n, last, untl = 0, 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
  if a then n, last, untl = tonumber(a), tonumber(b), tonumber(c) end
end
if untl <= now then n, last, untl = 0, 0, 0 end
if n >= max then return {0, n, untl - now, 0} end
if base > 0 and n >= 1 then
  local wait = base
  local i = 1
  while i < n and wait < cap do wait = wait * 2; i = i + 1 end
  if cap > base and wait > cap then wait = cap end
  if now < last + wait then return {0, n, last + wait - now, 1} end
end
n = n + 1
redis.call('SET', KEYS[1], string.format('%d:%d:%d', n, now, now + window), 'PX', window + grace)
return {1, n, 0, 0}
`)

// returnAttemptScript takes one attempt back, keeping the key's lifetime.
var returnAttemptScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
if not a then return 0 end
local n = tonumber(a)
if n > 0 then n = n - 1 end
redis.call('SET', KEYS[1], string.format('%d:%s:%s', n, b, c), 'KEEPTTL')
return 1
`)

// TakeAttempt implements Attempts.
func (r *Redis) TakeAttempt(ctx context.Context, key string, now time.Time, l AttemptLimit) (AttemptResult, error) {
	if err := ctxErr(ctx); err != nil {
		return AttemptResult{}, err
	}
	if err := checkLimit(l); err != nil {
		return AttemptResult{}, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	grace := max(r.grace, time.Second)
	k := r.attemptKey(key)
	octx, w := r.withAcks(octx, k)
	vals, err := takeAttemptScript.Run(octx, r.client, []string{k},
		now.UnixMilli(), l.Max, l.Window.Milliseconds(), l.Backoff.Milliseconds(), l.MaxBackoff.Milliseconds(), grace.Milliseconds()).Int64Slice()
	if err == nil {
		err = w.durable() // a count lost in a failover would be a guess more
	}
	if err != nil {
		return AttemptResult{}, r.fail(ctx, "take_attempt", err)
	}
	if len(vals) != 4 {
		return AttemptResult{}, errCorrupt
	}
	return AttemptResult{Taken: vals[0] == 1, Count: int(vals[1]), RetryAfter: time.Duration(vals[2]) * time.Millisecond, BackingOff: vals[3] == 1}, nil
}

// ReturnAttempt implements Attempts.
func (r *Redis) ReturnAttempt(ctx context.Context, key string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	k := r.attemptKey(key)
	octx, w := r.withAcks(octx, k)
	err := returnAttemptScript.Run(octx, r.client, []string{k}).Err()
	if err == nil {
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "return_attempt", err)
	}
	return nil
}

// ResetAttempts implements Attempts.
func (r *Redis) ResetAttempts(ctx context.Context, key string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	k := r.attemptKey(key)
	octx, w := r.withAcks(octx, k)
	err := r.client.Del(octx, k).Err()
	if err == nil {
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "reset_attempts", err)
	}
	return nil
}

// PutFamiliar implements Attempts.
func (r *Redis) PutFamiliar(ctx context.Context, key string, expires time.Time) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	k := r.familiarKey(key)
	octx, w := r.withAcks(octx, k)
	err := r.client.Set(octx, k, strconv.FormatInt(expires.UnixNano(), 10), r.lifetime(r.now(), expires)).Err()
	if err == nil {
		err = w.durable()
	}
	if err != nil {
		return r.fail(ctx, "put_familiar", err)
	}
	return nil
}

// Familiar implements Attempts.
func (r *Redis) Familiar(ctx context.Context, key string, now time.Time) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	octx, cancel := r.opContext(ctx)
	defer cancel()
	v, err := r.client.Get(octx, r.familiarKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, r.fail(ctx, "get_familiar", err)
	}
	exp, err := strconv.ParseInt(v, 10, 64)
	return err == nil && exp > now.UnixNano(), nil
}
