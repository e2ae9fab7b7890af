package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClusterOptions shape a Redis Cluster.
type ClusterOptions struct {
	// Primaries is the number of primaries; 3 when 0 (the fewest that still elect
	// a replica when one primary is lost).
	Primaries int
	// Replicas is the number of replicas of each primary: 1 when 0, none when
	// negative.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a primary must not answer
	// before the others mark it failed and its replica takes over; 1s when 0.
	NodeTimeout time.Duration
	// Server shapes every node (Persist, Users, Password, Directives). TLS is not
	// supported here.
	Server Options
}

// Cluster is a Redis Cluster created with redis-cli --cluster create.
type Cluster struct {
	// Nodes are all the nodes; the first Primaries were the primaries at start.
	Nodes       []*Server
	NodeTimeout time.Duration
	password    string
}

// StartCluster starts the nodes, creates the cluster (the 16384 slots spread over
// the primaries, each with its replicas) and waits until every node agrees on it.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	switch {
	case o.Replicas == 0:
		o.Replicas = 1
	case o.Replicas < 0:
		o.Replicas = 0
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = time.Second
	}
	if o.Server.TLS || o.Server.ClientCert {
		t.Fatal("redistest: a Cluster over TLS is not supported")
	}
	c := &Cluster{NodeTimeout: o.NodeTimeout, password: o.Server.Password}
	so := o.Server
	so.cluster = true
	so.Directives = append(append([][]string(nil), so.Directives...),
		[]string{"cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10)})
	for range o.Primaries * (1 + o.Replicas) {
		c.Nodes = append(c.Nodes, Start(t, so))
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redistest: redis-cli is not installed (apt-get install redis-tools)")
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	if c.password != "" {
		args = append(args, "-a", c.password, "--no-auth-warning")
	}
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(t, 30*time.Second)
	return c
}

// Addrs are every node's address: the seed list store.redis.addrs gives.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// Node returns the node at addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// do runs one command on n as the administrator.
func do(n *Server, args ...any) (any, error) {
	cl := n.client()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Do(ctx, args...).Result()
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, master string
	flags            map[string]bool
	slots            [][2]int // ranges, both ends included
	connected        bool
}

func (n clusterNode) serves(slot int) bool {
	for _, r := range n.slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// view is CLUSTER NODES as node n sees the cluster.
func view(n *Server) ([]clusterNode, error) {
	v, err := do(n, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	text, _ := v.(string)
	var out []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		cn := clusterNode{id: f[0], master: f[3], flags: map[string]bool{}, connected: f[7] == "connected"}
		cn.addr, _, _ = strings.Cut(f[1], "@")
		for _, fl := range strings.Split(f[2], ",") {
			cn.flags[fl] = true
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being imported or migrated
				continue
			}
			a, b, found := strings.Cut(s, "-")
			lo, _ := strconv.Atoi(a)
			hi := lo
			if found {
				hi, _ = strconv.Atoi(b)
			}
			cn.slots = append(cn.slots, [2]int{lo, hi})
		}
		out = append(out, cn)
	}
	return out, nil
}

// live are the nodes running and not paused.
func (c *Cluster) live() []*Server {
	var l []*Server
	for _, n := range c.Nodes {
		if n.Alive() {
			l = append(l, n)
		}
	}
	return l
}

// slotOwners renders a view's slot-to-primary map, for comparing views.
func slotOwners(v []clusterNode) string {
	var parts []string
	for _, n := range v {
		if n.flags["master"] && len(n.slots) > 0 {
			parts = append(parts, fmt.Sprintf("%s=%v", n.addr, n.slots))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// healthy reports what is not yet so: every live node says cluster_state:ok with
// every slot served, they agree on which primary serves which slots, every such
// primary is live, and every live replica is connected to its primary.
func (c *Cluster) healthy() string {
	var owners string
	for i, n := range c.live() {
		info, err := do(n, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Sprintf("%s: %v", n.Addr, err)
		}
		s, _ := info.(string)
		if !strings.Contains(s, "cluster_state:ok") || !strings.Contains(s, "cluster_slots_ok:16384") {
			return fmt.Sprintf("%s: cluster not ok", n.Addr)
		}
		v, err := view(n)
		if err != nil {
			return fmt.Sprintf("%s: %v", n.Addr, err)
		}
		o := slotOwners(v)
		if i == 0 {
			owners = o
		} else if o != owners {
			return fmt.Sprintf("%s sees slots %s, another node %s", n.Addr, o, owners)
		}
		for _, cn := range v {
			node := c.Node(cn.addr)
			if node == nil || !node.Alive() {
				if cn.flags["master"] && len(cn.slots) > 0 {
					return fmt.Sprintf("%s serves slots but is down", cn.addr)
				}
				continue
			}
			if cn.flags["fail"] || cn.flags["fail?"] || cn.flags["handshake"] {
				return fmt.Sprintf("%s sees %s as %v", n.Addr, cn.addr, cn.flags)
			}
		}
		if k, m, st, err := role(n); err != nil || (k == "slave" && st != "connected") {
			return fmt.Sprintf("%s: role %s of %s, link %q (%v)", n.Addr, k, m, st, err)
		}
	}
	return ""
}

// WaitHealthy waits until the live nodes agree on a cluster that serves every
// slot from live primaries, every live replica in sync.
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := c.healthy()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not healthy after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// anyView is CLUSTER NODES from the first live node that answers.
func (c *Cluster) anyView(t testing.TB) []clusterNode {
	t.Helper()
	var last error
	for _, n := range c.live() {
		v, err := view(n)
		if err == nil {
			return v
		}
		last = err
	}
	t.Fatalf("redistest: no cluster node answers: %v", last)
	return nil
}

// Slot is the hash slot of key (CLUSTER KEYSLOT, hash tags included).
func (c *Cluster) Slot(t testing.TB, key string) int {
	t.Helper()
	for _, n := range c.live() {
		if v, err := do(n, "CLUSTER", "KEYSLOT", key); err == nil {
			return int(v.(int64))
		}
	}
	t.Fatal("redistest: no cluster node answers CLUSTER KEYSLOT")
	return 0
}

// PrimaryOfSlot is the node serving slot now.
func (c *Cluster) PrimaryOfSlot(t testing.TB, slot int) *Server {
	t.Helper()
	for _, cn := range c.anyView(t) {
		if cn.flags["master"] && cn.serves(slot) {
			if n := c.Node(cn.addr); n != nil {
				return n
			}
		}
	}
	t.Fatalf("redistest: no primary serves slot %d", slot)
	return nil
}

// PrimaryFor is the node serving key's slot now.
func (c *Cluster) PrimaryFor(t testing.TB, key string) *Server {
	t.Helper()
	return c.PrimaryOfSlot(t, c.Slot(t, key))
}

// Primaries are the nodes serving slots now.
func (c *Cluster) Primaries(t testing.TB) []*Server {
	t.Helper()
	var p []*Server
	for _, cn := range c.anyView(t) {
		if cn.flags["master"] && len(cn.slots) > 0 {
			if n := c.Node(cn.addr); n != nil {
				p = append(p, n)
			}
		}
	}
	return p
}

// ReplicasOf are the nodes replicating primary now.
func (c *Cluster) ReplicasOf(t testing.TB, primary *Server) []*Server {
	t.Helper()
	v := c.anyView(t)
	var id string
	for _, cn := range v {
		if cn.addr == primary.Addr {
			id = cn.id
		}
	}
	var r []*Server
	for _, cn := range v {
		if cn.flags["slave"] && cn.master == id {
			if n := c.Node(cn.addr); n != nil {
				r = append(r, n)
			}
		}
	}
	return r
}

// WaitFailover waits until the live nodes agree that old serves no slot any
// more and the cluster is ok; it returns the primary that took over old's first
// slot.
func (c *Cluster) WaitFailover(t testing.TB, old *Server, slot int, timeout time.Duration) *Server {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := c.healthy()
		if why == "" {
			if p := c.PrimaryOfSlot(t, slot); p != old {
				return p
			}
			why = fmt.Sprintf("%s still serves slot %d", old.Addr, slot)
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no failover away from %s within %v: %s", old.Addr, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func myID(t testing.TB, n *Server) string {
	t.Helper()
	v, err := do(n, "CLUSTER", "MYID")
	if err != nil {
		t.Fatalf("redistest: CLUSTER MYID on %s: %v", n.Addr, err)
	}
	return v.(string)
}

// Migration moves one slot from its primary to another, the way redis-cli
// --cluster reshard does, in steps a test can interleave with traffic: while it
// runs, the slot is MIGRATING on the source and IMPORTING on the target, and a
// client is redirected (ASK) for keys already moved.
type Migration struct {
	c            *Cluster
	slot         int
	from, to     *Server
	fromID, toID string
}

// BeginMigration marks slot as moving from its primary to to.
func (c *Cluster) BeginMigration(t testing.TB, slot int, to *Server) *Migration {
	t.Helper()
	m := &Migration{c: c, slot: slot, from: c.PrimaryOfSlot(t, slot), to: to}
	if m.from == to {
		t.Fatalf("redistest: %s already serves slot %d", to.Addr, slot)
	}
	m.fromID, m.toID = myID(t, m.from), myID(t, to)
	if _, err := do(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", m.fromID); err != nil {
		t.Fatalf("redistest: SETSLOT IMPORTING: %v", err)
	}
	if _, err := do(m.from, "CLUSTER", "SETSLOT", slot, "MIGRATING", m.toID); err != nil {
		t.Fatalf("redistest: SETSLOT MIGRATING: %v", err)
	}
	return m
}

// MoveKeys moves up to n of the slot's keys (all when n <= 0) with MIGRATE and
// returns how many it moved.
func (m *Migration) MoveKeys(t testing.TB, n int) int {
	t.Helper()
	moved := 0
	for n <= 0 || moved < n {
		batch := 100
		if n > 0 && n-moved < batch {
			batch = n - moved
		}
		v, err := do(m.from, "CLUSTER", "GETKEYSINSLOT", m.slot, batch)
		if err != nil {
			t.Fatalf("redistest: GETKEYSINSLOT: %v", err)
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", m.to.Port, "", 0, 5000}
		if m.c.password != "" {
			args = append(args, "AUTH", m.c.password)
		}
		args = append(append(args, "KEYS"), keys...)
		if _, err := do(m.from, args...); err != nil {
			t.Fatalf("redistest: MIGRATE: %v", err)
		}
		moved += len(keys)
	}
	return moved
}

// Finish moves the remaining keys and gives the slot to the target on every
// primary.
func (m *Migration) Finish(t testing.TB) {
	t.Helper()
	m.MoveKeys(t, 0)
	for _, n := range append([]*Server{m.to, m.from}, m.c.Primaries(t)...) {
		if _, err := do(n, "CLUSTER", "SETSLOT", m.slot, "NODE", m.toID); err != nil {
			t.Fatalf("redistest: SETSLOT NODE on %s: %v", n.Addr, err)
		}
	}
}

// MigrateSlot moves slot and its keys to the primary to at once.
func (c *Cluster) MigrateSlot(t testing.TB, slot int, to *Server) {
	t.Helper()
	c.BeginMigration(t, slot, to).Finish(t)
}

// Log returns the tail of every node's log, for a failing test.
func (c *Cluster) Log() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "== %s\n%s\n", n.Addr, n.LogTail())
	}
	return b.String()
}

// FlushAll empties every primary.
func (c *Cluster) FlushAll(t testing.TB) {
	t.Helper()
	for _, p := range c.Primaries(t) {
		if _, err := do(p, "FLUSHALL"); err != nil {
			t.Fatalf("redistest: FLUSHALL on %s: %v", p.Addr, err)
		}
	}
}

// Keys is the number of keys each primary holds now (DBSIZE).
func (c *Cluster) Keys(t testing.TB) map[*Server]int64 {
	t.Helper()
	m := map[*Server]int64{}
	for _, p := range c.Primaries(t) {
		v, err := do(p, "DBSIZE")
		if err != nil {
			t.Fatalf("redistest: DBSIZE on %s: %v", p.Addr, err)
		}
		m[p] = v.(int64)
	}
	return m
}

// Healthy reports whether WaitHealthy would return now.
func (c *Cluster) Healthy() bool { return c.healthy() == "" }
