package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// SentinelOptions shape a Sentinel set-up.
type SentinelOptions struct {
	// Replicas is the number of replicas of the primary; 2 when 0.
	Replicas int
	// DownAfter is the Sentinels' down-after-milliseconds: how long the primary
	// must not answer before they agree it is down and fail over; 1s when 0.
	DownAfter time.Duration
	// Server shapes every data node (Persist, Users, Password, Directives). With a
	// Password the Sentinels and the replicas authenticate with it.
	Server Options
}

// Sentinel is one primary, its replicas and three Sentinels monitoring it under
// MasterName with a quorum of two: the smallest set-up that fails over by itself.
type Sentinel struct {
	MasterName string
	// Nodes are the data nodes; Nodes[0] was the primary at start. Which one is
	// the primary now is Primary's answer.
	Nodes []*Server
	// Sentinels are the three redis-sentinel processes.
	Sentinels []*Server
	DownAfter time.Duration
}

// StartSentinel starts the data nodes and the Sentinels and waits until every
// Sentinel sees the primary, all its replicas (in sync) and the two other
// Sentinels, so that a failover can happen at once.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	s := &Sentinel{MasterName: "kerbgate-primary", DownAfter: o.DownAfter}
	primary := Start(t, o.Server)
	s.Nodes = append(s.Nodes, primary)
	for range o.Replicas {
		ro := o.Server
		ro.Directives = append(append([][]string(nil), ro.Directives...),
			[]string{"replicaof", "127.0.0.1", strconv.Itoa(primary.Port)})
		s.Nodes = append(s.Nodes, Start(t, ro))
	}
	for range 3 {
		d := [][]string{
			{"sentinel", "monitor", s.MasterName, "127.0.0.1", strconv.Itoa(primary.Port), "2"},
			{"sentinel", "down-after-milliseconds", s.MasterName, strconv.FormatInt(o.DownAfter.Milliseconds(), 10)},
			// A failed attempt is retried after twice this; the replicas are all
			// reconfigured at once.
			{"sentinel", "failover-timeout", s.MasterName, strconv.FormatInt(3*o.DownAfter.Milliseconds(), 10)},
			{"sentinel", "parallel-syncs", s.MasterName, strconv.Itoa(o.Replicas)},
		}
		if o.Server.Password != "" {
			d = append(d, []string{"sentinel", "auth-pass", s.MasterName, o.Server.Password})
		}
		s.Sentinels = append(s.Sentinels, Start(t, Options{sentinel: true, Directives: d}))
	}
	s.WaitReady(t, 20*time.Second)
	return s
}

// SentinelAddrs are the Sentinels' addresses, as store.redis.addrs lists them.
func (s *Sentinel) SentinelAddrs() []string {
	var a []string
	for _, x := range s.Sentinels {
		a = append(a, x.Addr)
	}
	return a
}

// Node returns the data node at addr, or nil.
func (s *Sentinel) Node(addr string) *Server {
	for _, n := range s.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

func sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// views asks every Sentinel that answers which node is the primary.
func (s *Sentinel) views() map[string]int {
	v := map[string]int{}
	for _, x := range s.Sentinels {
		c := sentinelClient(x.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		cancel()
		c.Close()
		if err == nil && len(a) == 2 {
			v[net.JoinHostPort(a[0], a[1])]++
		}
	}
	return v
}

// Primary is the node a majority of the Sentinels names as the primary now.
func (s *Sentinel) Primary(t testing.TB) *Server {
	t.Helper()
	for addr, n := range s.views() {
		if n >= 2 {
			if node := s.Node(addr); node != nil {
				return node
			}
			t.Fatalf("redistest: the Sentinels name %s, which is none of the nodes", addr)
		}
	}
	t.Fatalf("redistest: no majority of the Sentinels names a primary: %v", s.views())
	return nil
}

// role returns a node's ROLE: "master" or "slave", and for a replica its
// master's address and whether the link is up ("connected").
func role(n *Server) (kind, master, state string, err error) {
	c := n.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", "", "", err
	}
	kind, _ = r[0].(string)
	if kind == "slave" && len(r) >= 4 {
		host, _ := r[1].(string)
		port, _ := r[2].(int64)
		state, _ = r[3].(string)
		master = net.JoinHostPort(host, strconv.FormatInt(port, 10))
	}
	return kind, master, state, nil
}

// ready reports what is not yet as it should be with primary as the primary and
// every node in live a replica of it in sync, seen alike by all three Sentinels.
func (s *Sentinel) ready(primary *Server, live []*Server) string {
	if k, _, _, err := role(primary); err != nil || k != "master" {
		return fmt.Sprintf("%s is %q (%v), not a master", primary.Addr, k, err)
	}
	for _, n := range live {
		if n == primary {
			continue
		}
		k, m, st, err := role(n)
		if err != nil || k != "slave" || m != primary.Addr || st != "connected" {
			return fmt.Sprintf("%s: role %q of %s, link %q (%v)", n.Addr, k, m, st, err)
		}
	}
	for _, x := range s.Sentinels {
		c := sentinelClient(x.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := c.Master(ctx, s.MasterName).Result()
		var reps []map[string]string
		if err == nil {
			reps, err = c.Replicas(ctx, s.MasterName).Result()
		}
		cancel()
		c.Close()
		if err != nil {
			return fmt.Sprintf("sentinel %s: %v", x.Addr, err)
		}
		if addr := net.JoinHostPort(m["ip"], m["port"]); addr != primary.Addr || m["flags"] != "master" {
			return fmt.Sprintf("sentinel %s sees %s as %q", x.Addr, addr, m["flags"])
		}
		if m["num-other-sentinels"] != "2" {
			return fmt.Sprintf("sentinel %s knows %s other Sentinels", x.Addr, m["num-other-sentinels"])
		}
		good := 0
		for _, r := range reps {
			if r["flags"] == "slave" && r["master-link-status"] == "ok" {
				good++
			}
		}
		if good < len(live)-1 {
			return fmt.Sprintf("sentinel %s sees %d healthy replicas of %d", x.Addr, good, len(live)-1)
		}
	}
	return ""
}

// WaitReady waits until every node runs (the primary as master, every other node
// its replica in sync) and the three Sentinels agree on it and on one another.
func (s *Sentinel) WaitReady(t testing.TB, timeout time.Duration) *Server {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := "no majority of the Sentinels names a primary"
		for addr, n := range s.views() {
			if p := s.Node(addr); p != nil && n >= 2 {
				if why = s.ready(p, s.Nodes); why == "" {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: Sentinel set-up not ready after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitFailover waits until a majority of the Sentinels names a primary other than
// old and that node answers as a master; it returns the new primary.
func (s *Sentinel) WaitFailover(t testing.TB, old *Server, timeout time.Duration) *Server {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for addr, n := range s.views() {
			if p := s.Node(addr); p != nil && p != old && n >= 2 {
				if k, _, _, err := role(p); err == nil && k == "master" {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no failover away from %s within %v: Sentinels name %v", old.Addr, timeout, s.views())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the tail of every process's log, for a failing test.
func (s *Sentinel) Log() string {
	var b strings.Builder
	for _, n := range append(append([]*Server(nil), s.Nodes...), s.Sentinels...) {
		fmt.Fprintf(&b, "== %s\n%s\n", n.Addr, n.LogTail())
	}
	return b.String()
}

// Current is the node a majority of the Sentinels names as the primary now, or
// nil (during a failover, say).
func (s *Sentinel) Current() *Server {
	for addr, n := range s.views() {
		if n >= 2 {
			return s.Node(addr)
		}
	}
	return nil
}

// Ready reports whether WaitReady would return now: every node runs, the primary
// as master and every other node its replica in sync, and the Sentinels agree.
func (s *Sentinel) Ready() bool {
	p := s.Current()
	return p != nil && s.ready(p, s.Nodes) == ""
}
