package signin

import (
	"context"
	"log/slog"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// AccountChecker confirms a signed-in identity in the directory (the
// *directory.Directory in production): found by its SID, enabled, not locked out or
// expired, with its current groups.
type AccountChecker interface {
	Check(ctx context.Context, id *identity.Identity) (*directory.User, error)
}

// GroupNamer names group SIDs (the *directory.Directory in production): names[i]
// is the name of sids[i], "" for a SID no group of the directory has.
type GroupNamer interface {
	GroupNames(ctx context.Context, sids []string) ([]string, error)
}

// Directory is the directory as the sign-in core asks it: it confirms accounts and
// names groups (the *directory.Directory in production).
type Directory interface {
	AccountChecker
	GroupNamer
}

// Admission is what an app admits a signed-in identity with, the same for every
// face (the handoff, the OpenID Provider, /whoami, forward-auth).
type Admission struct {
	// Directory is the directory section's client; nil without one (no typed nil).
	Directory Directory
	// RequireDirectory makes the account check part of the app's policy: the
	// account must be found and usable, and a directory failure refuses. It needs a
	// Directory.
	RequireDirectory bool
	// Groups is who may go on; nil: anyone signed in.
	Groups *Groups
	// Log receives the line saying that groups could not be named; nil: not logged.
	Log *slog.Logger
}

// Admit applies an app's admission to a signed-in identity and completes it:
//
//  1. With RequireDirectory, the account is confirmed and id is completed with what
//     the directory knows now (its group list is current, the PAC's is as old as
//     the ticket).
//  2. The app's allowed groups are checked (on SIDs).
//  3. With a Directory, the groups are named: id.GroupNames holds the names of
//     id.Groups that the directory could name, in their order. Naming is not part
//     of any app's policy: when the directory cannot answer, the sign-in goes on
//     with SIDs only (GroupNames nil) and a warning is logged. Without a Directory,
//     GroupNames is nil.
//
// Refusals are *reason.Error.
func Admit(ctx context.Context, a Admission, id *identity.Identity) error {
	if a.RequireDirectory {
		if a.Directory == nil {
			return reason.New(reason.Internal, "the app requires a directory but none is configured")
		}
		u, err := a.Directory.Check(ctx, id)
		if err != nil {
			return err
		}
		complete(id, u)
	}
	if err := a.Groups.Check(ctx, id); err != nil {
		return err
	}
	NameGroups(ctx, a.Directory, a.Log, id)
	return nil
}

// NameGroups sets id.GroupNames from id.Groups through dir (nil: no names), and on a
// directory failure leaves them nil and logs why. Admit calls it; it is on its own
// for what shows an identity without admitting it to an app (/whoami).
func NameGroups(ctx context.Context, dir GroupNamer, log *slog.Logger, id *identity.Identity) {
	id.GroupNames = nil // a session's identity may carry names of an older group list
	if dir == nil || len(id.Groups) == 0 {
		return
	}
	names, err := dir.GroupNames(ctx, id.Groups)
	if err != nil || len(names) != len(id.Groups) {
		if log != nil {
			kv := []any{"user", id.Principal, "groups", len(id.Groups)}
			if err != nil {
				e := reason.Of(err)
				kv = append(kv, "reason", string(e.Code), "detail", e.Error())
			} else {
				kv = append(kv, "names", len(names))
			}
			log.Warn("group names unavailable: going on with group SIDs only", kv...)
		}
		return
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	id.GroupNames = out
}

// complete fills id with the directory's values where it has them.
func complete(id *identity.Identity, u *directory.User) {
	if u == nil {
		return
	}
	if u.DisplayName != "" {
		id.DisplayName = u.DisplayName
	}
	if u.Mail != "" {
		id.Mail = u.Mail
	}
	if id.UPN == "" {
		id.UPN = u.UPN
	}
	if id.SAMAccountName == "" {
		id.SAMAccountName = u.SAMAccountName
	}
	if id.SID == "" {
		id.SID = u.SID
	}
	if len(u.Groups) > 0 {
		id.Groups = u.Groups
	}
}
