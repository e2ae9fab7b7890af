// Package identity defines the one Identity type that every flow (sign-in, handoff,
// proxy, OIDC) passes around once a user has been authenticated.
//
// It owns no behaviour beyond small accessors: it must not import any mechanism
// (Kerberos, LDAP, stores) so that every other package can depend on it.
package identity

// Identity is who signed in, as established by a verified Kerberos ticket and its PAC.
type Identity struct {
	// Principal is the Kerberos client principal, "alice@EXAMPLE.TEST".
	Principal string `json:"user"`
	// UPN is the userPrincipalName from the PAC's UPN_DNS_INFO, "alice@example.test".
	UPN string `json:"upn,omitempty"`
	// SAMAccountName is the pre-Windows 2000 logon name, "alice".
	SAMAccountName string `json:"sam_account_name,omitempty"`
	// Realm is the Kerberos realm of the client, "EXAMPLE.TEST".
	Realm string `json:"realm"`
	// DNSDomain is the user's DNS domain from UPN_DNS_INFO.
	DNSDomain string `json:"dns_domain,omitempty"`
	// DisplayName is the PAC's full name, when present.
	DisplayName string `json:"display_name,omitempty"`
	// Mail is the user's e-mail address from the directory (empty without one).
	Mail string `json:"mail,omitempty"`
	// SID is the user's security identifier, "S-1-5-21-...-1104".
	SID string `json:"sid,omitempty"`
	// Groups are the SIDs of every group in the PAC (domain, extra and resource SIDs).
	Groups []string `json:"groups"`
	// GroupNames are the names (sAMAccountName) of the groups in Groups that the
	// directory could name, in the order of Groups (signin.Admit fills them); nil
	// without a directory, or when it could not answer. Each face filters them per
	// client or app (signin.GroupFilter) before sending them.
	GroupNames []string `json:"group_names,omitempty"`
	// AuthMethod records how the identity was established, e.g. "kerberos".
	AuthMethod string `json:"auth_method"`
	// ChannelBound records that the Kerberos authenticator that established the
	// identity was bound to the TLS channel kerbgate served (Extended Protection
	// verified its channel binding): the ticket was not relayed from another
	// connection.
	ChannelBound bool `json:"channel_bound,omitempty"`
}

// InGroup reports whether sid is one of the identity's group SIDs.
func (id *Identity) InGroup(sid string) bool {
	for _, g := range id.Groups {
		if g == sid {
			return true
		}
	}
	return false
}
