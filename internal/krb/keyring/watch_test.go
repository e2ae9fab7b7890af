package keyring

import (
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/krb/kcrypto"
)

func entry(kvno uint32) Entry {
	k, _ := kcrypto.NewKey(kcrypto.AES256SHA1, make([]byte, 32))
	return Entry{Principal: "HTTP/sso.example.test", Realm: "EXAMPLE.TEST", KVNO: kvno, EType: kcrypto.AES256SHA1, Key: k}
}

func TestRetainingKeepsDroppedKeysUntilTheirDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	v2 := New(entry(2))
	v3 := New(entry(3)).Retaining(v2, t0.Add(time.Hour))
	if got := v3.KVNOs("http/SSO.example.test", "example.test"); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("kvnos %v", got)
	}
	// A third password: kvno 2 keeps its first deadline, kvno 3 gets a new one.
	v4 := New(entry(4)).Retaining(v3, t0.Add(3*time.Hour))
	pruned, dropped := v4.Pruned(t0.Add(2 * time.Hour))
	if !dropped {
		t.Fatal("nothing dropped")
	}
	if got := pruned.KVNOs("HTTP/sso.example.test", "EXAMPLE.TEST"); len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("after 2h: kvnos %v", got)
	}
	if _, dropped := pruned.Pruned(t0.Add(2 * time.Hour)); dropped {
		t.Fatal("pruned twice")
	}
	// Keys still in the file are never dropped.
	final, _ := pruned.Pruned(t0.Add(100 * time.Hour))
	if got := final.KVNOs("HTTP/sso.example.test", "EXAMPLE.TEST"); len(got) != 1 || got[0] != 4 {
		t.Fatalf("after 100h: kvnos %v", got)
	}
}
