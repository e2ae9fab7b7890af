package signin_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/reason"
	"github.com/kerbgate/kerbgate/internal/signin"
)

// directoryStub answers Check with user or checkErr and names groups from names
// (or fails with namesErr), counting both.
type directoryStub struct {
	user     *directory.User
	checkErr error
	names    map[string]string
	namesErr error
	checks   int
	namings  int
}

func (d *directoryStub) Check(context.Context, *identity.Identity) (*directory.User, error) {
	d.checks++
	return d.user, d.checkErr
}

func (d *directoryStub) GroupNames(_ context.Context, sids []string) ([]string, error) {
	d.namings++
	if d.namesErr != nil {
		return nil, d.namesErr
	}
	out := make([]string, len(sids))
	for i, s := range sids {
		out[i] = d.names[s]
	}
	return out, nil
}

var testNames = map[string]string{
	"S-1-5-21-1-2-3-513": "Domain Users", "S-1-5-21-1-2-3-1110": "staff", "S-1-5-21-1-2-3-1111": "sso-users",
}

func signedIn() *identity.Identity {
	id := *alice
	id.Groups = []string{"S-1-5-21-1-2-3-513", "S-1-1-0", "S-1-5-21-1-2-3-1110"}
	id.GroupNames = []string{"stale"} // as a browser session may hold
	return &id
}

// With a directory the groups are named in their order, unknown SIDs left out, even
// for an app that does not require the directory (no account check then).
func TestAdmitNamesGroupsThroughTheDirectory(t *testing.T) {
	dir := &directoryStub{names: testNames}
	id := signedIn()
	if err := signin.Admit(t.Context(), signin.Admission{Directory: dir}, id); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Domain Users", "staff"}; !slices.Equal(id.GroupNames, want) || dir.checks != 0 {
		t.Errorf("names %q, %d checks; want %q and no account check", id.GroupNames, dir.checks, want)
	}
}

// With require_directory the directory's groups replace the ticket's, and it is
// they that are named (bob's nested staff, say).
func TestAdmitNamesTheDirectorysGroups(t *testing.T) {
	dir := &directoryStub{names: testNames, user: &directory.User{Groups: []string{"S-1-5-21-1-2-3-1111", "S-1-5-21-1-2-3-1110"}}}
	id := signedIn()
	if err := signin.Admit(t.Context(), signin.Admission{Directory: dir, RequireDirectory: true}, id); err != nil {
		t.Fatal(err)
	}
	if want := []string{"sso-users", "staff"}; !slices.Equal(id.GroupNames, want) || dir.checks != 1 {
		t.Errorf("names %q, %d checks; want %q after one check", id.GroupNames, dir.checks, want)
	}
}

// A directory that cannot name groups does not refuse a sign-in: SIDs only, and a
// warning with the reason. A directory the app requires still refuses.
func TestAdmitNamingFailureGoesOnWithSIDs(t *testing.T) {
	down := reason.New(reason.DirectoryUnavailable, "cannot connect to the directory", "url", "ldaps://dc1.example.test")
	for _, require := range []bool{false, true} {
		var logs bytes.Buffer
		dir := &directoryStub{namesErr: down, user: &directory.User{}}
		id := signedIn()
		err := signin.Admit(t.Context(), signin.Admission{Directory: dir, RequireDirectory: require, Log: slog.New(slog.NewTextHandler(&logs, nil))}, id)
		if err != nil || id.GroupNames != nil || len(id.Groups) != 3 {
			t.Errorf("require %v: %v, names %q, groups %q; want admitted with SIDs only", require, err, id.GroupNames, id.Groups)
		}
		if l := logs.String(); !strings.Contains(l, "group names unavailable") || !strings.Contains(l, "directory_unavailable") ||
			!strings.Contains(l, "user=alice@EXAMPLE.TEST") {
			t.Errorf("require %v: log %q", require, l)
		}
	}
	dir := &directoryStub{checkErr: down, names: testNames}
	if got := code(signin.Admit(t.Context(), signin.Admission{Directory: dir, RequireDirectory: true}, signedIn())); got != reason.DirectoryUnavailable {
		t.Errorf("required directory down: %q", got)
	}
}

// Without a directory there are no names, whatever the identity carried before.
func TestAdmitWithoutADirectoryHasNoNames(t *testing.T) {
	id := signedIn()
	if err := signin.Admit(t.Context(), signin.Admission{}, id); err != nil || id.GroupNames != nil {
		t.Errorf("%v, names %q; want none", err, id.GroupNames)
	}
	if got := code(signin.Admit(t.Context(), signin.Admission{RequireDirectory: true}, signedIn())); got != reason.Internal {
		t.Errorf("require_directory without a directory: %q", got)
	}
}

// A refused user's groups are not named (no directory work for a refusal).
func TestAdmitNamesOnlyAdmittedUsers(t *testing.T) {
	dir := &directoryStub{names: testNames}
	g, _ := signin.NewGroups("app", []string{"S-1-5-32-544"}, nil)
	if got := code(signin.Admit(t.Context(), signin.Admission{Directory: dir, Groups: g}, signedIn())); got != reason.NotInGroup || dir.namings != 0 {
		t.Errorf("%q after %d namings; want not_in_group and none", got, dir.namings)
	}
}
