package store_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/store"
	"github.com/kerbgate/kerbgate/internal/store/redistest"
	"github.com/kerbgate/kerbgate/internal/store/storetest"
)

// Side-by-side benchmarks of the stores, in one run:
//
//	go test -run '^$' -bench 'ReplayCache|TokenIssueRedeem' -benchtime 2000x ./internal/store
//
// Redis is a local redis-server on loopback (redistest): the figures are the
// round trip and Lua script cost without a network in between; across a real
// network add the RTT per operation (one for SeenBefore, two for issue+redeem).

// replayKey returns a distinct key per i.
func replayKey(i int64) replay.Key {
	var k replay.Key
	for j := range 8 {
		k[j] = byte(i >> (8 * j))
	}
	return k
}

// BenchmarkReplayCache records a new authenticator per operation: the check every
// accepted sign-in makes.
func BenchmarkReplayCache(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	b.Run("memory", func(b *testing.B) {
		m := replay.NewMemory(1 << 22)
		start := time.Now()
		b.ReportAllocs()
		for i := range b.N {
			// The clock advances 1ms per call so sweeps keep the cache bounded.
			now := start.Add(time.Duration(i) * time.Millisecond)
			if _, err := m.SeenBefore(context.Background(), replayKey(int64(i)), now, now.Add(5*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis", func(b *testing.B) {
		r := openRedis(b, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()})
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if seen, err := r.SeenBefore(context.Background(), replayKey(int64(i)), now, now.Add(5*time.Minute)); err != nil || seen {
				b.Fatal(seen, err)
			}
		}
	})
	// Eight goroutines at once, as concurrent sign-ins on a node: the client
	// pipelines over its connection pool.
	b.Run("redis-parallel", func(b *testing.B) {
		r := openRedis(b, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()})
		now := time.Now()
		var n atomic.Int64
		b.SetParallelism(4) // 8 goroutines on 2 cores
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if seen, err := r.SeenBefore(context.Background(), replayKey(n.Add(1)), now, now.Add(5*time.Minute)); err != nil || seen {
					b.Error(seen, err)
					return
				}
			}
		})
	})
}

// BenchmarkTokenIssueRedeem is one handoff's store work: PutToken then TakeToken.
func BenchmarkTokenIssueRedeem(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	run := func(b *testing.B, s store.Store) {
		now := time.Now()
		tk := storetest.SampleToken(now, time.Minute)
		ids := make([]string, b.N)
		for i := range ids {
			ids[i], _ = store.NewID(nil)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := s.PutToken(ctx, ids[i], tk); err != nil {
				b.Fatal(err)
			}
			if _, err := s.TakeToken(ctx, ids[i], "wiki", now); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bolt", func(b *testing.B) {
		run(b, openBolt(b, filepath.Join(b.TempDir(), "kerbgate.db"), store.BoltOptions{PurgeInterval: -1}))
	})
	b.Run("redis", func(b *testing.B) {
		run(b, openRedis(b, store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: uniquePrefix()}))
	})
}

// BenchmarkReplicaAcks is the cost of waiting for replicas, per store operation,
// side by side in one run: a replay check (one write) and a token issue + redeem
// (two writes), by one caller (the latency a request sees) and by eight at once,
// against one Redis, Sentinel (1 primary, 2 replicas) with min_replica_acks 0, 1
// and 2, and a Cluster (3 primaries, 3 replicas) with 0 and 1. Every server keeps
// an append-only file (fsync every second).
//
//	go test -run '^$' -bench ReplicaAcks -benchtime 3000x ./internal/store
func BenchmarkReplicaAcks(b *testing.B) {
	persist := redistest.Options{Persist: true}
	one := redistest.Start(b, persist)
	s := redistest.StartSentinel(b, redistest.SentinelOptions{Server: persist})
	c := redistest.StartCluster(b, redistest.ClusterOptions{Server: persist})
	const timeout, ack = 3 * time.Second, time.Second
	type named struct {
		name string
		r    *store.Redis
	}
	var stores []named
	for _, st := range []struct {
		name string
		o    store.RedisOptions
	}{
		{"redis", store.RedisOptions{Addrs: []string{one.Addr}}},
		{"sentinel-acks0", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName}},
		{"sentinel-acks1", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName, MinReplicaAcks: 1}},
		{"sentinel-acks2", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName, MinReplicaAcks: 2}},
		{"cluster-acks0", store.RedisOptions{Addrs: c.Addrs()}},
		{"cluster-acks1", store.RedisOptions{Addrs: c.Addrs(), MinReplicaAcks: 1}},
	} {
		o := st.o
		o.Timeout, o.Prefix = timeout, uniquePrefix()
		if o.MinReplicaAcks > 0 {
			o.ReplicaAckTimeout = ack
		}
		stores = append(stores, named{st.name, openRedis(b, o)})
	}
	for _, st := range stores {
		b.Run("replay-check/"+st.name, func(b *testing.B) {
			now := time.Now()
			base := prefixSeq.Add(1) << 32
			b.ResetTimer()
			for i := range b.N {
				if seen, err := st.r.SeenBefore(context.Background(), replayKey(base+int64(i)), now, now.Add(5*time.Minute)); err != nil || seen {
					b.Fatal(seen, err)
				}
			}
		})
	}
	for _, st := range stores {
		b.Run("replay-check-8-callers/"+st.name, func(b *testing.B) {
			now := time.Now()
			var n atomic.Int64
			n.Store(prefixSeq.Add(1) << 32)
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if seen, err := st.r.SeenBefore(context.Background(), replayKey(n.Add(1)), now, now.Add(5*time.Minute)); err != nil || seen {
						b.Error(seen, err)
						return
					}
				}
			})
		})
	}
	for _, st := range stores {
		b.Run("token-issue-redeem/"+st.name, func(b *testing.B) {
			now := time.Now()
			tk := storetest.SampleToken(now, time.Minute)
			ids := make([]string, b.N)
			for i := range ids {
				ids[i], _ = store.NewID(nil)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := st.r.PutToken(ctx, ids[i], tk); err != nil {
					b.Fatal(err)
				}
				if _, err := st.r.TakeToken(ctx, ids[i], "wiki", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
