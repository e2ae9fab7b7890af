package store

// This file makes a write durable before the store reports it done: the write
// and a WAIT go to the primary on one connection, because WAIT counts the
// replicas that hold every write made on its own connection so far.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ackedWrite is what a write that must reach replicas carries in its context: the
// key it writes and how many replicas must acknowledge it. The hook that sends it
// records the answer of the WAIT sent with the attempt that succeeded.
type ackedWrite struct {
	key      string
	replicas int           // replicas required
	timeout  time.Duration // WAIT's own timeout
	// Set by the hook for the attempt whose write succeeded: acknowledged is
	// WAIT's count (-1 until then), waitErr its error.
	acknowledged int
	waitErr      error
}

type ackedWriteKey struct{}

// withAcks marks ctx for the write of key, when replicas must acknowledge writes.
func (r *Redis) withAcks(ctx context.Context, key string) (context.Context, *ackedWrite) {
	if r.acks <= 0 {
		return ctx, nil
	}
	w := &ackedWrite{key: key, replicas: r.acks, timeout: r.ackTimeout, acknowledged: -1}
	return context.WithValue(ctx, ackedWriteKey{}, w), w
}

// durable checks a write the store made under w: nil when enough replicas hold
// it, otherwise an error for fail (the write may be lost in a failover, so the
// caller must not be told it is done).
func (w *ackedWrite) durable() error {
	switch {
	case w == nil:
		return nil
	case w.waitErr != nil:
		return &ackError{want: w.replicas, timeout: w.timeout, err: w.waitErr}
	case w.acknowledged < w.replicas:
		return &ackError{got: max(w.acknowledged, 0), want: w.replicas, timeout: w.timeout}
	}
	return nil
}

// ackError is a write that did not reach enough replicas in time. It has no
// Unwrap, so that the client library never retries the write for it.
type ackError struct {
	got, want int
	timeout   time.Duration
	err       error
}

func (e *ackError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("write not confirmed by %d replica(s): WAIT failed: %v", e.want, e.err)
	}
	return fmt.Sprintf("write acknowledged by %d of the %d replica(s) required within %v (store.redis.min_replica_acks, replica_ack_timeout)",
		e.got, e.want, e.timeout)
}

// markedWrite returns the ackedWrite of ctx if cmd is its write.
func markedWrite(ctx context.Context, cmd redis.Cmder) *ackedWrite {
	w, _ := ctx.Value(ackedWriteKey{}).(*ackedWrite)
	if w == nil {
		return nil
	}
	args := cmd.Args()
	switch strings.ToLower(cmd.Name()) {
	case "set", "del":
		if len(args) > 1 && args[1] == w.key {
			return w
		}
	case "eval", "evalsha":
		if len(args) > 3 && args[3] == w.key {
			return w
		}
	}
	return nil
}

// waitCmd is WAIT for w: the replicas it requires, and its timeout in whole
// milliseconds (at least 1: WAIT 0 would wait for ever).
func waitCmd(ctx context.Context, w *ackedWrite) *redis.IntCmd {
	return redis.NewIntCmd(ctx, "wait", w.replicas, max(w.timeout.Milliseconds(), 1))
}

// ackHook is installed on every client that talks to a primary: the one client
// of a single server or of Sentinel, each node's client in a Cluster. It sends a
// marked write with a WAIT behind it on the same connection, and records WAIT's
// answer when the write succeeded. In a Cluster it sits below the redirections:
// a write sent again after MOVED or ASK (slot migration, failover) gets its WAIT
// on the node that finally took it.
type ackHook struct{ node *redis.Client }

func (ackHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h ackHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w := markedWrite(ctx, cmd)
		if w == nil {
			return next(ctx, cmd)
		}
		wait := waitCmd(ctx, w)
		_, _ = h.node.Pipelined(ctx, func(p redis.Pipeliner) error {
			_ = p.Process(ctx, cmd)
			_ = p.Process(ctx, wait)
			return nil
		})
		record(w, cmd, wait)
		return cmd.Err()
	}
}

func (ackHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var w *ackedWrite
		var write redis.Cmder
		for _, c := range cmds {
			if c.Name() == "wait" {
				return next(ctx, cmds) // ProcessHook's own pipeline
			}
			if mw := markedWrite(ctx, c); mw != nil {
				w, write = mw, c
			}
		}
		if w == nil {
			return next(ctx, cmds)
		}
		// ASKING then the write, during a slot migration. WAIT's own failure is
		// recorded, not returned: the client would send the write again for it.
		wait := waitCmd(ctx, w)
		_ = next(ctx, append(cmds[:len(cmds):len(cmds)], wait))
		record(w, write, wait)
		return write.Err()
	}
}

// record keeps WAIT's answer for the attempt whose write succeeded.
func record(w *ackedWrite, write redis.Cmder, wait *redis.IntCmd) {
	if write.Err() != nil {
		return
	}
	w.acknowledged, w.waitErr = int(wait.Val()), wait.Err()
}

// installAckHook puts the hook on the clients that reach primaries.
func installAckHook(c redis.UniversalClient) {
	switch c := c.(type) {
	case *redis.ClusterClient:
		c.OnNewNode(func(n *redis.Client) { n.AddHook(ackHook{node: n}) })
	case *redis.Client:
		c.AddHook(ackHook{node: c})
	}
}
