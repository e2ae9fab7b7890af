package directory

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LockoutPolicy is the domain's account lockout policy (the domain object's
// lockoutThreshold, lockOutObservationWindow and lockoutDuration; the Default Domain
// Policy sets them). Fine-grained password policies (PSOs) can give some accounts
// other values; kerbgate reads the domain's.
type LockoutPolicy struct {
	// Threshold is how many bad passwords lock an account out; 0: never.
	Threshold int
	// ObservationWindow is how long after the last bad password the account's
	// badPwdCount is forgotten.
	ObservationWindow time.Duration
	// Duration is how long a lockout lasts; 0: until an administrator unlocks.
	Duration time.Duration
}

// LockoutPolicy reads the domain's lockout policy from the domain object: the DC=
// components of BaseDN (its naming context). Errors are *reason.Error
// (directory_unavailable).
func (d *Directory) LockoutPolicy(ctx context.Context) (LockoutPolicy, error) {
	var p LockoutPolicy
	dn := domainDN(d.cfg.BaseDN)
	err := d.do(ctx, func(l *ldap.Conn) error {
		res, err := l.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"lockoutThreshold", "lockOutObservationWindow", "lockoutDuration"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return &stageError{"lockout policy", errNoDomainObject}
		}
		e := res.Entries[0]
		p.Threshold, _ = strconv.Atoi(e.GetAttributeValue("lockoutThreshold"))
		p.ObservationWindow = interval(e.GetAttributeValue("lockOutObservationWindow"))
		p.Duration = interval(e.GetAttributeValue("lockoutDuration"))
		return nil
	})
	if err != nil {
		return LockoutPolicy{}, d.unavailable(err)
	}
	return p, nil
}

var errNoDomainObject = errors.New("no domain object at the base DN's naming context")

// interval reads an AD time interval: a negative count of 100 ns units (the
// "never" value -2^63 reads as 0).
func interval(s string) time.Duration {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n >= 0 || n == -1<<63 {
		return 0
	}
	return time.Duration(-n) * 100
}

// domainDN is the DC= components of dn ("OU=Staff,DC=example,DC=test" →
// "DC=example,DC=test"), or dn itself when it has none.
func domainDN(dn string) string {
	parts := strings.Split(dn, ",")
	for i, p := range parts {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(p)), "DC=") {
			return strings.Join(parts[i:], ",")
		}
	}
	return dn
}
