package acceptor

import (
	"github.com/kerbgate/kerbgate/internal/krb/wire"
	"github.com/kerbgate/kerbgate/internal/reason"
)

// checkClientTarget compares the ticket's server name, which travels in clear outside
// the ticket's encrypted part (RFC 4120 §5.3) and so can be rewritten by anyone who
// relays the token, with the name a Windows client puts in the authenticator,
// encrypted with the session key: KERB_AUTH_DATA_CLIENT_TARGET, "the server's name
// qualified with the realm name" (MS-KILE §3.2.5.8). When the two differ the ticket is
// refused, so kerberos.spns (checked on the clear-text name before decryption) and
// service binding judge the name the client actually targeted. Clients that send no
// target name (MIT, Heimdal) are not affected.
func checkClientTarget(auth *wire.Authenticator, tkt *wire.Ticket, client string) error {
	target, present, err := wire.ClientTarget(auth.Authorization)
	if err != nil {
		return reason.New(reason.MalformedToken, "authenticator's target name (KERB_AUTH_DATA_CLIENT_TARGET) does not decode",
			"client", client, "error", err.Error())
	}
	if !present {
		return nil
	}
	if !wire.TargetNames(target, tkt.SName.String(), tkt.Realm) {
		return reason.New(reason.SPNMismatch, "ticket's clear-text server name differs from the name the client asked for (authenticator target name)",
			"client", client, "ticket_spn", tkt.SName.String(), "ticket_realm", tkt.Realm,
			"authenticator_target", target, "setting", "authenticator target name").
			WithFix(reason.FixSPNRewritten)
	}
	return nil
}
