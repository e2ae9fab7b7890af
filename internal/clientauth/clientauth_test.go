package clientauth

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/secret"
)

var (
	hashOnce sync.Once
	goodHash string
)

func hash(t *testing.T) string {
	hashOnce.Do(func() {
		var err error
		if goodHash, err = secret.Hash("right-secret"); err != nil {
			t.Fatal(err)
		}
	})
	return goodHash
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func code(e *reason.Error) reason.Code {
	if e == nil {
		return ""
	}
	return e.Code
}

func TestRightSecretIsCachedAndNeverLimited(t *testing.T) {
	a := New(Options{MaxConcurrent: 1, Burst: 1})
	h := hash(t)
	if e := a.Check("app", h, "192.0.2.1", "right-secret"); e != nil {
		t.Fatal(e)
	}
	// Fill the bound and the address's budget: the proven secret is still served.
	a.slots <- struct{}{}
	defer func() { <-a.slots }()
	a.failures.Spend(time.Now(), "addr:192.0.2.1", "id:app")
	if e := a.Check("app", h, "192.0.2.1", "right-secret"); e != nil {
		t.Fatalf("cached secret refused: %v", e)
	}
	if e := a.Check("app", h, "192.0.2.1", "wrong"); code(e) != reason.RateLimited {
		t.Fatalf("wrong secret over budget: %v", e)
	}
}

func TestBusyWhenTheBoundIsFull(t *testing.T) {
	a := New(Options{MaxConcurrent: 2})
	a.slots <- struct{}{}
	a.slots <- struct{}{}
	e := a.Check("nope", "", "192.0.2.1", "x")
	if code(e) != reason.Busy || e.RetryAfter != time.Second {
		t.Fatalf("full bound: %v", e)
	}
	<-a.slots
	if e := a.Check("nope", "", "192.0.2.1", "x"); code(e) != reason.BadClientCredentials {
		t.Fatalf("with a free slot: %v", e)
	}
}

func TestFailuresAreLimitedPerIDAndPerAddress(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	a := New(Options{Burst: 3, Refill: 10 * time.Second, Now: c.now})
	h := hash(t)
	for i := 0; i < 3; i++ {
		if e := a.Check("app", h, "192.0.2.1", "wrong"); code(e) != reason.BadClientCredentials {
			t.Fatalf("failure %d: %v", i, e)
		}
	}
	e := a.Check("app", h, "192.0.2.1", "wrong")
	if code(e) != reason.RateLimited || e.RetryAfter != 10*time.Second {
		t.Fatalf("4th failure: %v", e)
	}
	// The id is limited from any address; the address for any id.
	if e := a.Check("app", h, "192.0.2.2", "wrong"); code(e) != reason.RateLimited {
		t.Fatalf("same id, other address: %v", e)
	}
	if e := a.Check("other", h, "192.0.2.1", "wrong"); code(e) != reason.RateLimited {
		t.Fatalf("same address, other id: %v", e)
	}
	// The right secret, never proven before, is limited too: it would hash.
	if e := a.Check("app", h, "192.0.2.3", "right-secret"); code(e) != reason.RateLimited {
		t.Fatalf("unproven right secret over the id's budget: %v", e)
	}
	c.t = c.t.Add(10 * time.Second)
	if e := a.Check("app", h, "192.0.2.3", "right-secret"); e != nil {
		t.Fatalf("after a refill: %v", e)
	}
}

func TestUnknownIDsShareOneBudget(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	a := New(Options{Burst: 2, Now: c.now, MaxTracked: 4})
	for i := 0; i < 2; i++ {
		a.Check(fmt.Sprintf("nope-%d", i), "", fmt.Sprintf("192.0.2.%d", i), "x")
	}
	if e := a.Check("nope-9", "", "192.0.2.9", "x"); code(e) != reason.RateLimited {
		t.Fatalf("unknown ids: %v", e)
	}
	if a.failures.Len() > 4 {
		t.Fatalf("%d tracked keys, bound 4", a.failures.Len())
	}
	// A table full of fresh failures fails closed for new addresses.
	for i := 10; i < 20; i++ {
		a.failures.Spend(c.t, fmt.Sprintf("addr:198.51.100.%d", i))
	}
	if a.failures.Len() > 4 {
		t.Fatalf("%d tracked keys, bound 4", a.failures.Len())
	}
	if e := a.Check("app", hash(t), "203.0.113.1", "wrong"); code(e) != reason.RateLimited {
		t.Fatalf("full table: %v", e)
	}
}

func TestIPv6SubnetSharesOneBudget(t *testing.T) {
	a := New(Options{Burst: 1})
	a.Check("nope", "", "2001:db8:1:2::1", "x")
	if e := a.Check("app", hash(t), "2001:db8:1:2:ffff::9", "wrong"); code(e) != reason.RateLimited {
		t.Fatalf("same /64: %v", e)
	}
	if got := addrBudget("192.0.2.1"); got != "192.0.2.1" {
		t.Errorf("IPv4 budget key %q", got)
	}
}

// The remembered secret is an HMAC under a key each Authenticator makes at random:
// the table alone (a memory disclosure) holds no plain SHA-256 of the secret to
// test guesses against at hash speed, and two processes remember different values.
func TestRememberedSecretIsKeyedPerProcess(t *testing.T) {
	h := hash(t)
	a, b := New(Options{}), New(Options{})
	for _, x := range []*Authenticator{a, b} {
		if e := x.Check("app", h, "192.0.2.1", "right-secret"); e != nil {
			t.Fatal(e)
		}
	}
	plain := sha256.Sum256([]byte("right-secret"))
	pa, pb := a.verified["app"], b.verified["app"]
	if pa.sum == plain || pb.sum == plain || pa.sum == pb.sum {
		t.Fatalf("remembered %x and %x; plain SHA-256 %x", pa.sum, pb.sum, plain)
	}
}
