package signin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// GroupResolver finds a group's SID by its name (the directory in production).
type GroupResolver interface {
	GroupSID(ctx context.Context, name string) (string, error)
}

// Groups is an application's group policy: who may go on after signing in.
//
// Allowed groups are SIDs ("S-1-5-21-…-1110") or names. Names are resolved to SIDs
// through the GroupResolver on first use (so that kerbgate starts while the directory
// is down) and kept. A user may go on when one allowed SID is one of the user's group
// SIDs, or is the user's own SID: the same rule for every face. No allowed groups
// lets every signed-in user go on; an anonymous request (pre_auth passthrough) goes
// on only then.
type Groups struct {
	app     string
	allowed []string
	dir     GroupResolver

	mu   sync.Mutex
	sids []string // resolved; nil until the first successful resolution
}

// NewGroups returns the policy of app. A group name needs a resolver: configuration
// validation reports a name without a directory section at load, so the error here
// only guards against a caller that skipped it.
func NewGroups(app string, allowed []string, dir GroupResolver) (*Groups, error) {
	for _, g := range allowed {
		if !IsSID(g) && dir == nil {
			return nil, fmt.Errorf("signin: app %s: group name %q needs a directory to resolve it", app, g)
		}
	}
	return &Groups{app: app, allowed: append([]string(nil), allowed...), dir: dir}, nil
}

// IsSID reports whether an allowed group is written as a SID rather than a name.
func IsSID(g string) bool { return strings.HasPrefix(g, "S-1-") }

// Any reports whether the policy lets every signed-in user go on.
func (g *Groups) Any() bool { return g == nil || len(g.allowed) == 0 }

// Check returns nil when id may go on, a not_in_group refusal when it may not, or
// the resolver's refusal when a group name cannot be resolved. A nil id is an
// anonymous request. A nil *Groups allows everyone.
func (g *Groups) Check(ctx context.Context, id *identity.Identity) error {
	if g.Any() {
		return nil
	}
	if id == nil {
		return reason.New(reason.NotInGroup, "an anonymous request cannot be in the app's allowed groups",
			"app", g.app, "allowed_groups", strings.Join(g.allowed, ","))
	}
	sids, err := g.resolve(ctx)
	if err != nil {
		return err
	}
	for _, want := range sids {
		if id.SID == want || id.InGroup(want) {
			return nil
		}
	}
	return reason.New(reason.NotInGroup, "user is in none of the app's allowed groups",
		"app", g.app, "user", id.Principal, "allowed_groups", strings.Join(g.allowed, ","))
}

func (g *Groups) resolve(ctx context.Context) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sids != nil {
		return g.sids, nil
	}
	sids := make([]string, 0, len(g.allowed))
	for _, name := range g.allowed {
		if IsSID(name) {
			sids = append(sids, name)
			continue
		}
		sid, err := g.dir.GroupSID(ctx, name)
		if err != nil {
			var e *reason.Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, reason.New(reason.Internal, "allowed group not found in the directory",
				"app", g.app, "group", name, "error", err.Error())
		}
		sids = append(sids, sid)
	}
	g.sids = sids
	return sids, nil
}
