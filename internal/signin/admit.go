package signin

import (
	"context"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/identity"
)

// AccountChecker confirms a signed-in identity in the directory (the
// *directory.Directory in production): found by its SID, enabled, not locked out or
// expired, with its current groups.
type AccountChecker interface {
	Check(ctx context.Context, id *identity.Identity) (*directory.User, error)
}

// Admit applies an app's policy to a signed-in identity, the same way for every
// face: with a directory, the account is confirmed and id is completed with what the
// directory knows now (its group list is current, the PAC's is as old as the
// ticket); then the app's allowed groups are checked. dir is nil when the app does
// not require the directory. Refusals are *reason.Error.
func Admit(ctx context.Context, dir AccountChecker, groups *Groups, id *identity.Identity) error {
	if dir != nil {
		u, err := dir.Check(ctx, id)
		if err != nil {
			return err
		}
		complete(id, u)
	}
	return groups.Check(ctx, id)
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
