package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
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
// an append-only file (fsync every second). The b.N operations of each kind and
// store run in five rounds, the stores in turn within each round, so that load from
// elsewhere on the machine falls on all of them; the table gives each store's
// median round and its ratio to one Redis.
//
//	go test -run '^$' -bench ReplicaAcks -benchtime 10000x ./internal/store
func BenchmarkReplicaAcks(b *testing.B) {
	persist := redistest.Options{Persist: true}
	one := redistest.Start(b, persist)
	s := redistest.StartSentinel(b, redistest.SentinelOptions{Server: persist})
	c := redistest.StartCluster(b, redistest.ClusterOptions{Server: persist})
	const timeout, ack = 3 * time.Second, time.Second
	var stores []namedStore
	for _, st := range []struct {
		name string
		o    store.RedisOptions
	}{
		{"one Redis", store.RedisOptions{Addrs: []string{one.Addr}}},
		{"Sentinel 1+2, acks 0", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName}},
		{"Sentinel 1+2, acks 1", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName, MinReplicaAcks: 1}},
		{"Sentinel 1+2, acks 2", store.RedisOptions{Addrs: s.SentinelAddrs(), MasterName: s.MasterName, MinReplicaAcks: 2}},
		{"Cluster 3+3, acks 0", store.RedisOptions{Addrs: c.Addrs()}},
		{"Cluster 3+3, acks 1", store.RedisOptions{Addrs: c.Addrs(), MinReplicaAcks: 1}},
	} {
		o := st.o
		o.Timeout, o.Prefix = timeout, uniquePrefix()
		if o.MinReplicaAcks > 0 {
			o.ReplicaAckTimeout = ack
		}
		stores = append(stores, namedStore{st.name, openRedis(b, o)})
	}
	// The stores are set up once; the sub-benchmark runs first with b.N = 1,
	// then with -benchtime's count.
	b.Run("rounds", func(b *testing.B) { replicaAckRounds(b, stores) })
}

type namedStore struct {
	name string
	r    *store.Redis
}

// storeOps are the operations BenchmarkReplicaAcks times: each runs n times
// with the given concurrency.
var storeOps = []struct {
	name    string
	callers int
	run     func(r *store.Redis, i int64, now time.Time) error
}{
	{"replay check, 1 caller", 1, replayCheck},
	{"replay check, 8 callers", 8, replayCheck},
	{"token issue+redeem, 1 caller", 1, func(r *store.Redis, i int64, now time.Time) error {
		id, _ := store.NewID(nil)
		if err := r.PutToken(ctx, id, storetest.SampleToken(now, time.Minute)); err != nil {
			return err
		}
		_, err := r.TakeToken(ctx, id, "wiki", now)
		return err
	}},
}

func replayCheck(r *store.Redis, i int64, now time.Time) error {
	seen, err := r.SeenBefore(context.Background(), replayKey(i), now, now.Add(5*time.Minute))
	if err == nil && seen {
		err = errors.New("a new authenticator reported seen")
	}
	return err
}

func replicaAckRounds(b *testing.B, stores []namedStore) {
	const rounds = 5
	per := max(b.N/rounds, 16)
	perOp := map[string][]float64{} // op/store → µs per operation, per round
	for range rounds {
		for _, op := range storeOps {
			for _, st := range stores {
				var next atomic.Int64
				next.Store(prefixSeq.Add(1) << 32)
				base := next.Load()
				now := time.Now()
				var wg sync.WaitGroup
				var first atomic.Value
				start := time.Now()
				for range op.callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > base+int64(per) {
								return
							}
							if err := op.run(st.r, i, now); err != nil {
								first.CompareAndSwap(nil, err)
							}
						}
					}()
				}
				wg.Wait()
				if err, _ := first.Load().(error); err != nil {
					b.Fatalf("%s, %s: %v", op.name, st.name, err)
				}
				key := op.name + "/" + st.name
				perOp[key] = append(perOp[key], float64(time.Since(start).Microseconds())/float64(per))
			}
		}
	}
	fmt.Fprintf(os.Stdout, "\nstore operations, %d rounds of %d per store (median round, µs per operation)\n%-22s", rounds, per, "store")
	for _, op := range storeOps {
		fmt.Fprintf(os.Stdout, " %30s %6s", op.name, "ratio")
	}
	fmt.Fprintln(os.Stdout)
	for _, st := range stores {
		fmt.Fprintf(os.Stdout, "%-22s", st.name)
		for _, op := range storeOps {
			m := median(perOp[op.name+"/"+st.name])
			fmt.Fprintf(os.Stdout, " %28.0fµs %6.2f", m, m/median(perOp[op.name+"/"+stores[0].name]))
		}
		fmt.Fprintln(os.Stdout)
	}
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return v[len(v)/2]
}
