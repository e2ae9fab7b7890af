package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
)

// Options choose the store a node runs with: the embedded file (Path) or Redis
// (Redis), exactly one.
type Options struct {
	// Path is the embedded bbolt file (one node).
	Path string
	// Redis is the shared store of a farm; it is also the replay cache.
	Redis *RedisOptions
	// ReplayCacheSize bounds the in-memory replay cache that goes with the
	// embedded file.
	ReplayCacheSize int
	// Log receives the start-up report (and, with Redis, the client library's
	// messages unless Redis.Logger is set); nil discards it.
	Log *slog.Logger
	// Now is the store's clock; time.Now when nil.
	Now func() time.Time
}

// Open opens the store of o and the replay cache the acceptor consults: the
// embedded file with an in-memory replay cache (one node), or Redis for both (a
// farm: every node sees every token, session and authenticator).
//
// A Redis that cannot be reached is not an error: Open logs it, and requests that
// need the store are refused with ErrUnavailable until Redis answers. A Redis that
// refuses the credentials is an error that wraps ErrRedisAuth.
func Open(o Options) (Store, replay.Cache, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Redis == nil {
		st, err := OpenBolt(o.Path, BoltOptions{Now: o.Now})
		if err != nil {
			return nil, nil, fmt.Errorf("store %s: %w", o.Path, err)
		}
		return st, replay.NewMemory(o.ReplayCacheSize), nil
	}
	ro := *o.Redis
	if ro.Now == nil {
		ro.Now = o.Now
	}
	if ro.Logger == nil {
		ro.Logger = o.Log
	}
	rs, err := OpenRedis(ro)
	if err != nil {
		return nil, nil, err
	}
	dial, op := ro.DialTimeout, ro.Timeout
	if dial <= 0 {
		dial = DefaultRedisDialTimeout
	}
	if op <= 0 {
		op = DefaultRedisTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), dial+op)
	defer cancel()
	attrs := []any{"addrs", strings.Join(ro.Addrs, ","), "master_name", ro.MasterName, "user", ro.Username,
		"tls", ro.TLS != nil, "db", ro.DB, "prefix", ro.Prefix, "min_replica_acks", ro.MinReplicaAcks}
	// Reachability first: missing replicas are a different report.
	if err = rs.client.Ping(ctx).Err(); err != nil {
		err = rs.fail(nil, "ping", err)
	}
	switch {
	case errors.Is(err, ErrRedisAuth):
		rs.Close()
		return nil, nil, fmt.Errorf("Redis refused kerbgate's credentials: %w", err)
	case err != nil:
		log.Error("Redis cannot be reached; requests that need the store are refused with store_unavailable until it answers",
			append(attrs, "error", err.Error())...)
	default:
		log.Info("store: Redis", attrs...)
	}
	if err == nil {
		switch err := rs.checkCommands(ctx); {
		case errors.Is(err, ErrRedisAuth):
			rs.Close()
			return nil, nil, fmt.Errorf("Redis refused a command kerbgate needs (the ACL user needs +wait with store.redis.min_replica_acks, "+
				"and +cluster|slots +asking with a Cluster; see docs/farm.md): %w", err)
		case err != nil:
			// Writes would all be refused: say so now, with the fix.
			log.Error("Redis has fewer replicas acknowledging writes than store.redis.min_replica_acks; "+
				"every write that needs them is refused with store_unavailable until they catch up (add replicas, or lower min_replica_acks)",
				append(attrs, "error", err.Error())...)
		}
	}
	return rs, rs, nil
}
