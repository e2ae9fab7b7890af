package keyring

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Retaining returns a keyring with kr's keys plus those of old that kr no longer
// holds (same principal, realm, kvno and enctype), marked as retained until until.
// Keys of old already retained keep their own deadline. This is what keeps tickets
// issued under the previous password working after a keytab is replaced by one
// holding only the new key version.
func (kr *Keyring) Retaining(old *Keyring, until time.Time) *Keyring {
	out := &Keyring{entries: append([]Entry(nil), kr.entries...)}
	if old == nil {
		return out
	}
	for _, e := range old.entries {
		if kr.has(e) {
			continue
		}
		if e.RetainedUntil.IsZero() {
			e.RetainedUntil = until
		}
		out.entries = append(out.entries, e)
	}
	return out
}

// Pruned returns kr without the retained keys whose deadline is not after now, and
// whether any were dropped.
func (kr *Keyring) Pruned(now time.Time) (*Keyring, bool) {
	out := &Keyring{}
	for _, e := range kr.entries {
		if !e.RetainedUntil.IsZero() && !e.RetainedUntil.After(now) {
			continue
		}
		out.entries = append(out.entries, e)
	}
	return out, len(out.entries) != len(kr.entries)
}

func (kr *Keyring) has(x Entry) bool {
	for i := range kr.entries {
		e := &kr.entries[i]
		if e.is(x.Principal, x.Realm) && e.KVNO == x.KVNO && e.EType == x.EType {
			return true
		}
	}
	return false
}

// Summary names each principal with its key versions, for logs: "HTTP/sso.example.test@EXAMPLE.TEST kvno 2,3".
func (kr *Keyring) Summary() string {
	var parts []string
	seen := map[string]bool{}
	for _, e := range kr.entries {
		p := e.Principal + "@" + e.Realm
		if seen[strings.ToLower(p)] {
			continue
		}
		seen[strings.ToLower(p)] = true
		var vs []string
		for _, v := range kr.KVNOs(e.Principal, e.Realm) {
			vs = append(vs, fmt.Sprint(v))
		}
		parts = append(parts, p+" kvno "+strings.Join(vs, ","))
	}
	return strings.Join(parts, "; ")
}

// Watcher reloads keytab files when they change, keeping the keys a new file no
// longer holds for a retention period, and hands each new keyring to Set.
type Watcher struct {
	Paths []string
	// Retain is how long keys dropped from the files stay usable (tickets issued
	// under the old password live up to the realm's maximum ticket lifetime).
	Retain time.Duration
	// Set receives every new keyring; OnError hears about files that fail to load
	// (the previous keyring stays in use).
	Set     func(*Keyring)
	OnError func(error)
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	current *Keyring
	stamps  []fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamps(paths []string) ([]fileStamp, error) {
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i] = fileStamp{st.ModTime(), st.Size()}
	}
	return out, nil
}

// Start loads the files once (an error here is fatal to the caller) and records
// their state.
func (w *Watcher) Start() (*Keyring, error) {
	if w.Now == nil {
		w.Now = time.Now
	}
	st, err := stamps(w.Paths)
	if err != nil {
		return nil, err
	}
	kr, err := Load(w.Paths...)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.current, w.stamps = kr, st
	w.mu.Unlock()
	return kr, nil
}

// Check reloads the files if any changed, and drops retained keys past their
// deadline. It reports whether a new keyring was set.
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.Now()
	st, err := stamps(w.Paths)
	if err != nil {
		return false, err
	}
	next := w.current
	changed := false
	if !equalStamps(st, w.stamps) {
		kr, err := Load(w.Paths...)
		if err != nil {
			// A half-written file: keep the keys we have, try again next time.
			return false, err
		}
		next = kr.Retaining(w.current, now.Add(w.Retain))
		w.stamps = st
		changed = true
	}
	if pruned, dropped := next.Pruned(now); dropped {
		next, changed = pruned, true
	}
	if changed {
		w.current = next
		w.Set(next)
	}
	return changed, nil
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// Run checks every interval until stop is closed.
func (w *Watcher) Run(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := w.Check(); err != nil && w.OnError != nil {
				w.OnError(err)
			}
		}
	}
}
