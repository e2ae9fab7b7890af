// Package reason names every way kerbgate can refuse a request: a stable code, the
// facts of the case, and what a person should do about it.
//
// It owns the catalog of reason codes and the error value that carries them. It must
// not log, count or render: the HTTP layer does that from the values here, so every
// refusal is reported the same way. Mechanisms return *Error; flows only pass it on.
package reason

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Code is a stable, machine-readable refusal reason. Codes are part of the public
// contract (metrics, logs, the Kerbgate-Reason header): never rename one.
type Code string

// The sign-in refusals.
const (
	NoToken           Code = "no_token"
	MalformedToken    Code = "malformed_token"
	NTLMOffered       Code = "ntlm_offered"
	UnsupportedMech   Code = "unsupported_mech"
	TokenTooLarge     Code = "token_too_large"
	SPNMismatch       Code = "spn_mismatch"
	RealmMismatch     Code = "realm_mismatch"
	SPNNotInKeytab    Code = "spn_not_in_keytab"
	KVNONotInKeytab   Code = "kvno_not_in_keytab"
	EnctypeNotAllowed Code = "enctype_not_allowed"
	KeyMismatch       Code = "key_mismatch"
	ClockSkew         Code = "clock_skew"
	TicketExpired     Code = "ticket_expired"
	TicketNotYetValid Code = "ticket_not_yet_valid"
	ClientMismatch    Code = "client_mismatch"
	TicketInvalid     Code = "ticket_invalid"
	ForeignRealm      Code = "foreign_realm"
	Replay            Code = "replay"
	ReplayCacheFull   Code = "replay_cache_full"
	PACInvalid        Code = "pac_invalid"
	Internal          Code = "internal_error"
)

// The directory and handoff refusals.
const (
	UserNotFound          Code = "user_not_found"
	UserDisabled          Code = "user_disabled"
	UserLocked            Code = "user_locked"
	UserExpired           Code = "user_expired"
	NotInGroup            Code = "not_in_group"
	DirectoryUnavailable  Code = "directory_unavailable"
	UnknownApp            Code = "unknown_app"
	RedirectNotRegistered Code = "redirect_not_registered"
	TokenInvalid          Code = "token_invalid"
	BadClientCredentials  Code = "bad_client_credentials"
	SessionNotFound       Code = "session_not_found"
	BadRequest            Code = "bad_request"
	CrossSiteRequest      Code = "cross_site_request"
	// RefreshTokenReused is an OpenID Provider refresh token used a second time:
	// its family is revoked.
	RefreshTokenReused Code = "refresh_token_reused"
)

// The OpenID Provider's refusals of a relying party's request (besides the sign-in,
// directory, group and client credential refusals above). Each is answered with
// the OAuth error its name ends with.
const (
	OIDCInvalidRequest          Code = "oidc_invalid_request"
	OIDCInvalidGrant            Code = "oidc_invalid_grant"
	OIDCInvalidScope            Code = "oidc_invalid_scope"
	OIDCUnauthorizedClient      Code = "oidc_unauthorized_client"
	OIDCUnsupportedResponseType Code = "oidc_unsupported_response_type"
	OIDCUnsupportedGrantType    Code = "oidc_unsupported_grant_type"
	OIDCLoginRequired           Code = "oidc_login_required"
	// OIDCInvalidToken is an access token refused at userinfo (RFC 6750
	// invalid_token).
	OIDCInvalidToken Code = "oidc_invalid_token"
)

// The refusals that protect kerbgate's resources from a flood of client
// authentications (their answers carry Retry-After).
const (
	Busy        Code = "busy"
	RateLimited Code = "rate_limited"
)

// The Extended Protection refusals.
const (
	CBTMissing  Code = "cbt_missing"
	CBTMismatch Code = "cbt_mismatch"
	SPNDotless  Code = "spn_dotless"
)

// The application proxy's refusals (the KDC's are with the delegation codes).
const (
	UpstreamUnavailable   Code = "upstream_unavailable"
	UpstreamRefusedTicket Code = "upstream_refused_ticket"
	LoginIdentityMissing  Code = "login_identity_missing"
	// LoginIdentityForeignRealm: a name-only login identity for a user of
	// another realm (it would name the local account of the same name).
	LoginIdentityForeignRealm Code = "login_identity_foreign_realm"
	PathNotCanonical          Code = "path_not_canonical"
)

// The KDC's refusals of constrained delegation (application proxy).
const (
	DelegationNotAllowed         Code = "delegation_not_allowed"
	ProtocolTransitionNotAllowed Code = "protocol_transition_not_allowed"
	UserUnknown                  Code = "user_unknown"
	UpstreamSPNUnknown           Code = "upstream_spn_unknown"
	KDCUnreachable               Code = "kdc_unreachable"
	KDCError                     Code = "kdc_error"
)

// The OpenID Connect pre-authentication refusals.
const (
	OIDCStateInvalid        Code = "oidc_state_invalid"
	OIDCTokenInvalid        Code = "oidc_token_invalid"
	OIDCClaimMissing        Code = "oidc_claim_missing"
	OIDCProviderUnavailable Code = "oidc_provider_unavailable"
)

// The forward-auth refusals (a reverse proxy asking whether a request may go on).
const (
	// ForwardAuthUntrusted: the request did not come from listen.trusted_proxies,
	// or came without the X-Forwarded-Host (and -Proto) that names the application.
	ForwardAuthUntrusted Code = "forward_auth_untrusted"
	// ForwardAuthUnknownHost: the application's host is in no forward_auth.hosts[].
	ForwardAuthUnknownHost Code = "forward_auth_unknown_host"
	// ReturnURLNotAllowed: a return URL is malformed or off
	// forward_auth.return_domains.
	ReturnURLNotAllowed Code = "return_url_not_allowed"
)

// The shared-state refusal (farm mode).
const (
	StoreUnavailable Code = "store_unavailable"
)

// Entry describes a code for people: the HTTP status, the cause in one sentence, and
// what the user and the administrator can do.
type Entry struct {
	Status int
	Title  string
	Cause  string
	User   string // what the person at the browser can do ("" if nothing)
	Admin  string // what the administrator should check or change
}

// Catalog holds every code. A code missing here is a bug (a test checks them all).
var Catalog = map[Code]Entry{
	NoToken: {http.StatusUnauthorized, "Sign-in required",
		"The browser sent no Windows (Negotiate) credentials.",
		"Sign in to Windows with your domain account and use a browser configured for this site (Edge/Chrome: intranet zone or AuthServerAllowlist; Firefox: network.negotiate-auth.trusted-uris).",
		"Make sure clients can reach the KDC and that this host is in the browsers' Negotiate allowlist."},
	MalformedToken: {http.StatusBadRequest, "Unreadable sign-in token",
		"The Negotiate token in the Authorization header could not be decoded.",
		"Retry; if it persists, your client is sending a broken token.",
		"Look at the logged detail: a proxy may be truncating or rewriting the Authorization header."},
	NTLMOffered: {http.StatusUnauthorized, "Kerberos ticket not available",
		"Your browser offered NTLM instead of Kerberos, so it could not get a Kerberos ticket for this site.",
		"Use a domain-joined machine signed in with your domain account, and make sure this site is in the browser's intranet zone / allowlist.",
		"The SPN HTTP/<host> is missing or registered on the wrong account (setspn -Q HTTP/<host>), or the client cannot reach a KDC. kerbgate accepts only Kerberos."},
	UnsupportedMech: {http.StatusUnauthorized, "Unsupported authentication method",
		"The client offered a Negotiate mechanism other than Kerberos.",
		"Use a browser with Kerberos (Negotiate) sign-in.",
		"kerbgate accepts Kerberos only (OIDs 1.2.840.113554.1.2.2 and 1.2.840.48018.1.2.2)."},
	TokenTooLarge: {http.StatusRequestHeaderFieldsTooLarge, "Sign-in token too large",
		"The Kerberos token is larger than this server accepts, usually because the account is in very many groups.",
		"Contact your administrator.",
		"Raise kerberos.max_token_bytes (and any proxy's header limit) or reduce the user's group memberships."},
	SPNMismatch: {http.StatusUnauthorized, "Ticket for another service",
		"The Kerberos ticket was issued for a service name this server does not accept.",
		"Contact your administrator.",
		"The logged fact setting names the list that refused the ticket's service name: kerberos.spns (the names this server has keys for), epa.spns (Extended Protection service binding), or the name the client put in its authenticator (a ticket whose clear-text name was rewritten). Add the SPN to that list if clients may reach this service by it, or fix the DNS name / SPN registration that sent the client there."},
	RealmMismatch: {http.StatusUnauthorized, "Ticket from another realm",
		"The service ticket was issued by a realm this server does not accept.",
		"Contact your administrator.",
		"Check kerberos.realm and the realm of the SPN in the keytab."},
	SPNNotInKeytab: {http.StatusUnauthorized, "No key for this service",
		"The ticket is for an accepted service name, but no keytab holds a key for it.",
		"Contact your administrator.",
		"Export a keytab for this SPN (samba-tool domain exportkeytab / ktpass) and add it to kerberos.keytabs."},
	KVNONotInKeytab: {http.StatusUnauthorized, "Service key out of date",
		"The ticket is encrypted with a key version the server's keytab does not have: the service account's password changed.",
		"Contact your administrator.",
		"Export a new keytab for the service account (the logged facts give both key versions) and add it to kerberos.keytabs; keep the old one until old tickets expire."},
	EnctypeNotAllowed: {http.StatusUnauthorized, "Encryption type not allowed",
		"The ticket uses an encryption type this server does not allow (often RC4).",
		"Contact your administrator.",
		"Enable AES on the service account (msDS-SupportedEncryptionTypes = 24) and re-export the keytab, or list the enctype in kerberos.enctypes."},
	KeyMismatch: {http.StatusUnauthorized, "Service key does not match",
		"The keytab has a key of the right version, but it does not decrypt the ticket.",
		"Contact your administrator.",
		"The keytab is for another account or an older password with the same key version: export it again from AD."},
	ClockSkew: {http.StatusUnauthorized, "Clocks out of sync",
		"Your computer's clock and this server's clock differ by more than the allowed skew.",
		"Check your computer's date, time and time zone.",
		"Synchronise this server's clock with the domain (NTP), or raise kerberos.clock_skew."},
	TicketExpired: {http.StatusUnauthorized, "Ticket expired",
		"The Kerberos service ticket has expired.",
		"Lock and unlock your session (or run klist purge) to get new tickets, then retry.",
		"Check clock synchronisation between clients, KDC and this server."},
	TicketNotYetValid: {http.StatusUnauthorized, "Ticket not yet valid",
		"The Kerberos service ticket's start time is in the future.",
		"Check your computer's clock.",
		"Check clock synchronisation between clients, KDC and this server."},
	ClientMismatch: {http.StatusUnauthorized, "Inconsistent credentials",
		"The authenticator was made by a different principal than the ticket's owner.",
		"Retry.",
		"This indicates a broken or malicious client."},
	TicketInvalid: {http.StatusUnauthorized, "Ticket not yet validated",
		"The Kerberos ticket carries the INVALID flag (a postdated ticket not yet validated by the KDC), which servers must refuse (RFC 4120 §2.2).",
		"Get a fresh ticket (klist purge, or lock and unlock your session) and retry.",
		"The client sent a postdated ticket without having it validated at the KDC (kinit -v). Nothing to change on kerbgate; the log names the client."},
	ForeignRealm: {http.StatusForbidden, "Account from another domain",
		"Your account belongs to a Kerberos realm (domain or forest) this server does not accept users from.",
		"Sign in with an account of the server's own domain, or contact your administrator.",
		"The ticket's client realm (logged as client_realm) is neither kerberos.realm nor in kerberos.trusted_realms. If users of that trusted forest or domain should sign in, add its realm, in upper case, to kerberos.trusted_realms."},
	Replay: {http.StatusUnauthorized, "Replayed sign-in",
		"This exact Kerberos authenticator was already used.",
		"Retry: your browser will make a fresh one.",
		"A replay usually means a captured token or a client retrying with an old header; the log shows the client address."},
	ReplayCacheFull: {http.StatusServiceUnavailable, "Server busy",
		"The replay cache is full, so new sign-ins cannot be checked for replay.",
		"Retry in a moment.",
		"Raise kerberos.replay_cache_size or move to the shared store."},
	PACInvalid: {http.StatusUnauthorized, "Invalid authorization data",
		"The ticket's PAC (group membership data) could not be verified.",
		"Contact your administrator.",
		"The PAC's server signature, its PAC_CLIENT_INFO (missing, another client name, or a time other than the ticket's authtime) or its encoding does not match the ticket: a forged or tampered ticket, or a keytab for another account. The logged facts name the check."},
	UserNotFound: {http.StatusForbidden, "Account not found",
		"Your Windows account was not found in the directory.",
		"Contact your administrator.",
		"The signed-in user has no user object under directory.base_dn, searched by the SID from the ticket's PAC (objectSid), never by name: check base_dn, or the account was deleted. A user of a trusted realm is only found if base_dn holds their account (a global catalog or that domain); a ticket without a PAC from another realm cannot be looked up at all."},
	UserDisabled: {http.StatusForbidden, "Account disabled",
		"Your account is disabled in Active Directory.",
		"Contact your administrator or help desk.",
		"userAccountControl has ACCOUNTDISABLE (0x2). Enable the account if this is wrong; existing Kerberos tickets stay valid until they expire, which is why kerbgate checks the directory."},
	UserLocked: {http.StatusForbidden, "Account locked",
		"Your account is locked out after too many failed password attempts.",
		"Wait for the lockout to end, or ask the help desk to unlock it.",
		"lockoutTime is set on the account: unlock it (Unlock-ADAccount / samba-tool user unlock)."},
	UserExpired: {http.StatusForbidden, "Account expired",
		"Your account has expired.",
		"Contact your administrator.",
		"accountExpires is in the past: extend it if the account should still sign in."},
	NotInGroup: {http.StatusForbidden, "Not allowed for this application",
		"Your account is not a member of a group allowed to use this application.",
		"Ask the application's owner for access.",
		"Add the user (directly or through a nested group) to one of the app's allowed groups (sso.apps[], proxy.apps[] or oidc_provider.clients[] allowed_groups; forward_auth.hosts[].allowed_groups), or change that list; the log names the app."},
	DirectoryUnavailable: {http.StatusServiceUnavailable, "Directory unavailable",
		"The sign-in server cannot reach Active Directory to confirm your account right now.",
		"Retry in a minute.",
		"kerbgate could not search the directory (directory.url): check the domain controller, the network, TLS (directory.ca_file, host name) and the bind account. kerbgate refuses rather than skip the check, and recovers on its own."},
	UnknownApp: {http.StatusBadRequest, "Unknown application",
		"The link you followed names an application this sign-in server does not know.",
		"Go back to the application and start again; report the link if it keeps failing.",
		"The app parameter does not match any sso.apps[].id (client_id: any oidc_provider.clients[].id)."},
	RedirectNotRegistered: {http.StatusBadRequest, "Redirect not allowed",
		"The application asked to send you to an address that is not registered for it.",
		"Go back to the application and start again.",
		"redirect_uri must equal one of the app's sso.apps[].redirect_uris (an OpenID client's oidc_provider.clients[].redirect_uris, or post_logout_redirect_uris at end_session) exactly (scheme, host, port, path)."},
	TokenInvalid: {http.StatusBadRequest, "Invalid sign-in token",
		"The sign-in token is unknown, already used, expired, or belongs to another application.",
		"Sign in again from the application.",
		"The log line names the precise cause. Tokens are single use and live sso.apps[].token_ttl (60 s by default): redeem at once, from the app's own back end."},
	RefreshTokenReused: {http.StatusBadRequest, "Sign-in ended",
		"This application's sign-in was ended for your protection.",
		"Sign in to the application again.",
		"A refresh token of oidc_provider was presented a second time: a copy of it is in other hands, or the client retried a refresh whose answer it lost. Every refresh and access token of that sign-in (its family) is revoked; the client gets invalid_grant and signs the user in again."},
	BadClientCredentials: {http.StatusUnauthorized, "Application not authenticated",
		"The application did not present valid credentials.",
		"",
		"The app's back end must authenticate with its id and the secret whose hash is sso.apps[].secret_hash, or oidc_provider.clients[].secret_hash for an OpenID client (HTTP Basic or client_id/client_secret form fields, one of the two); an OpenID client without a secret (public) cannot use introspection."},
	OIDCInvalidRequest: {http.StatusBadRequest, "Sign-in request not accepted",
		"The application sent a request this sign-in server cannot accept.",
		"Go back to the application and start again; report the problem to its administrator if it keeps failing.",
		"The OpenID client sent a malformed request (the log's detail and the error_description it got say what): a missing or plain PKCE challenge (S256 only; required of public clients), prompt=none combined with another prompt, a missing parameter, a repeated or replayed login step, two client authentication methods at once. Fix the client's configuration."},
	OIDCInvalidGrant: {http.StatusBadRequest, "Sign-in not completed",
		"The application presented a sign-in code or token that is not valid any more.",
		"Sign in to the application again.",
		"The code or refresh token is unknown, already used (codes redeem once, farm-wide), expired (codes live 60 s), another client's, or ended by the user's sign-out (cause signed_out); or code_verifier or redirect_uri does not match the authorization request. A client that retries a redemption gets this the second time."},
	OIDCInvalidScope: {http.StatusBadRequest, "Sign-in request not accepted",
		"The application asked for access this sign-in server does not give it.",
		"Contact the application's administrator.",
		"The authorization request lacks the openid scope, or asks for no scope kerbgate's client may have (oidc_provider.clients[].scopes)."},
	OIDCUnauthorizedClient: {http.StatusBadRequest, "Application not allowed",
		"The application asked for something it is not allowed to do.",
		"Contact the application's administrator.",
		"The client used a grant it is not given: refresh_token needs offline_access in oidc_provider.clients[].scopes."},
	OIDCUnsupportedResponseType: {http.StatusBadRequest, "Sign-in request not accepted",
		"The application asked for a kind of sign-in this server does not offer.",
		"Contact the application's administrator.",
		"kerbgate serves the authorization code flow only (response_type=code, with PKCE S256): configure the relying party for the code flow, not implicit or hybrid."},
	OIDCUnsupportedGrantType: {http.StatusBadRequest, "Sign-in request not accepted",
		"The application asked for a kind of token this server does not issue.",
		"Contact the application's administrator.",
		"The token endpoint takes grant_type authorization_code and refresh_token only."},
	OIDCInvalidToken: {http.StatusUnauthorized, "Access not valid",
		"The application presented an access token that is not valid any more.",
		"Sign in to the application again.",
		"The access token at userinfo is unknown, expired (oidc_provider.access_token_ttl), revoked (RFC 7009, or with its refresh family: cause family_revoked) or of a sign-in ended by end_session (cause signed_out): the client must refresh it or sign the user in again. Many from one client mean it keeps tokens past their lifetime."},
	OIDCLoginRequired: {http.StatusUnauthorized, "Sign-in required",
		"The application asked to sign you in without any interaction, and your browser had no Windows sign-in to offer.",
		"Sign in to Windows with your domain account and use a browser configured for this site, then go back to the application.",
		"prompt=none found no OIDC browser session young enough (max_age) and the browser answered the Negotiate challenge with no ticket: the client gets login_required and usually retries with an interactive sign-in. Many of these from domain-joined browsers mean their Negotiate allowlist lacks this host."},
	SessionNotFound: {http.StatusNotFound, "Session not found",
		"The session does not exist, has expired or was revoked.",
		"Sign in again.",
		"Sessions live sso.apps[].session_ttl; DELETE /sso/sessions/{id} revokes one."},
	BadRequest: {http.StatusBadRequest, "Bad request",
		"The request is missing a parameter or is malformed.",
		"Go back and start again.",
		"See the logged detail."},
	ForwardAuthUntrusted: {http.StatusForbidden, "Proxy not trusted",
		"The reverse proxy in front of this application asked kerbgate to check a request, but kerbgate does not trust it to say which application and page the request was for.",
		"Contact your administrator.",
		"Forward-auth believes X-Forwarded-Host, -Proto, -Uri and -Method only from listen.trusted_proxies, and needs X-Forwarded-Host and X-Forwarded-Proto: add the proxy's address to listen.trusted_proxies and set the headers as docs/forward-auth.md shows (the log has the peer address and what was missing)."},
	ForwardAuthUnknownHost: {http.StatusForbidden, "Application not configured",
		"This application's host is not one kerbgate signs users in for.",
		"Contact your administrator.",
		"Add the host (logged as host) to forward_auth.hosts[], or correct the X-Forwarded-Host the proxy sends."},
	ReturnURLNotAllowed: {http.StatusBadRequest, "Return address not allowed",
		"The sign-in was asked to send you back to an address it may not send you to.",
		"Go back to the application and start again.",
		"A return URL must be an absolute https URL (http only for local and .test hosts) on a host of forward_auth.return_domains, without user information, backslashes, spaces or a fragment; the log says what was wrong."},
	CrossSiteRequest: {http.StatusForbidden, "Request from another site",
		"Another site tried to make your browser do this, so it was not done.",
		"If you meant to do it, use the button on this site's own page.",
		"State-changing browser endpoints accept only requests from their own pages: POST /sso/logout a same-origin one (the Origin header, else Sec-Fetch-Site, else Referer, must name kerbgate's own origin); /forward-auth/sign-out one from kerbgate's origin or a forward_auth.return_domains host (a GET only when the browser says so with Sec-Fetch-Site or Referer; use a form that POSTs otherwise). Behind a TLS-terminating balancer set listen.external_url (or listen.trusted_proxies for X-Forwarded-Proto) so that kerbgate knows its https origin."},
	Busy: {http.StatusServiceUnavailable, "Server busy",
		"Too many client secret checks are running at once.",
		"Retry after the time in the Retry-After header.",
		"Each check of a client secret that is not cached runs argon2id (19 MiB); kerbgate runs about GOMAXPROCS of them at a time and answers the rest busy rather than exhaust memory. An application with the right secret is served from the cache and never waits. Many busy answers mean a flood of wrong secrets: see rate_limited and the logged client addresses."},
	RateLimited: {http.StatusTooManyRequests, "Too many failed attempts",
		"Too many failed client authentications came from this address or for this client id.",
		"Retry after the time in the Retry-After header.",
		"Failed client authentications are limited per client id and per source address (behind a balancer, the X-Forwarded-For client of listen.trusted_proxies). Check the application's configured secret against sso.apps[].secret_hash; an attacker guessing secrets shows as many failures from one address."},
	CBTMissing: {http.StatusUnauthorized, "Secure connection binding required",
		"This site requires sign-in tokens bound to the secure (TLS) connection, and your client sent none.",
		"Use a browser or client that supports Extended Protection (Windows clients do), over https.",
		"epa.token_checking Require refuses clients that send no channel bindings (curl, Chromium and Firefox on Linux and macOS send none); use Allow to accept them, or look at the log line: a token marked as CBT-capable but unbound was made for another, unencrypted connection (a relay)."},
	CBTMismatch: {http.StatusUnauthorized, "Sign-in made for another connection",
		"Your sign-in token was bound to a different secure connection than the one it arrived on.",
		"Connect to this site directly (not through an intercepting proxy) and retry.",
		"The client's channel bindings do not match kerbgate's certificate: a relayed token, or TLS terminated by a device kerbgate does not know. Behind a TLS-terminating load balancer, list its certificate in epa.channel_binding_certificates, or use flags Proxy with epa.spns (service binding)."},
	SPNDotless: {http.StatusUnauthorized, "Short host name not allowed",
		"Your browser signed in to this site by its short (single-label) name.",
		"Use the site's full name (with the domain), e.g. https://sso.example.test/.",
		"Tickets for dotless (NetBIOS) service names are refused: such names are open to name-resolution poisoning. Add epa.flags AllowDotlessSpn (and the SPN to epa.spns) only if you must."},
	UpstreamUnavailable: {http.StatusBadGateway, "Application unavailable",
		"The application behind this address did not answer.",
		"Retry in a moment.",
		"kerbgate could not reach proxy.apps[].upstream, or it did not answer within proxy.apps[].timeout: see the logged error (connection refused, TLS verification against upstream_ca_file, timeout)."},
	UpstreamRefusedTicket: {http.StatusBadGateway, "Application refused the sign-in",
		"The application did not accept the Kerberos sign-in kerbgate made for you.",
		"Contact your administrator.",
		"The upstream answered 401 Negotiate to the delegated ticket: check that proxy.apps[].kerberos.spn is the SPN the application's keytab holds (same kvno), that the application accepts Kerberos (not only NTLM), and the application's own log."},
	LoginIdentityMissing: {http.StatusBadGateway, "No delegated identity",
		"Your account has no value for the name this application signs you in with.",
		"Contact your administrator.",
		"proxy.apps[].kerberos.login_identity names an attribute the account lacks (UPN, or alternate_upn_attribute): set it in AD or pick another login identity."},
	LoginIdentityForeignRealm: {http.StatusForbidden, "Single sign-on not available for your domain",
		"This application signs you in by a bare account name, which for an account of another domain would name a different account of this domain.",
		"Contact your administrator.",
		"proxy.apps[].kerberos.login_identity is sam_account_name, upn_user_part or alternate_upn_user_part, and the user's realm (logged as user_realm) is not kerberos.realm: kerbgate would ask for the local account of the same name. Use login_identity upn or alternate_upn for users of trusted realms, or, if the upstream's realm really holds these users under these names, list the realm in proxy.apps[].kerberos.map_foreign_realms (the name is then delegated in that realm)."},
	PathNotCanonical: {http.StatusBadRequest, "Address not accepted",
		"The address's path is written in a way that web servers read differently (an encoded / or \\, a NUL, double encoding, a disguised dot segment, or a spelling that names another application when case or trailing dots are ignored).",
		"Use the link as the application gives it; do not edit the address by hand.",
		"kerbgate routes proxy.apps on one canonical path (dot segments removed, slashes collapsed) and refuses paths that web servers decode in different ways, and paths that would select another proxy.apps route if compared as IIS does (without case, trailing dots and spaces, ;parameters or :streams); the log line has the raw path (truncated) and why. Ordinary links are never refused; an application that needs such paths must not nest its path_prefix with another app's on the same host."},
	DelegationNotAllowed: {http.StatusBadGateway, "Single sign-on to the application is not allowed",
		"The domain does not allow this gateway to sign you in to the application.",
		"Contact your administrator.",
		"S4U2Proxy was refused: add the application's SPN (proxy.apps[].kerberos.spn) to the gateway account's msDS-AllowedToDelegateTo (Delegation tab: \"Trust this user for delegation to specified services only\"; samba-tool delegation add-service), or grant resource-based delegation on the application's account (msDS-AllowedToActOnBehalfOfOtherIdentity; Set-ADComputer -PrincipalsAllowedToDelegateToAccount; samba-tool delegation add-principal)."},
	ProtocolTransitionNotAllowed: {http.StatusBadGateway, "Single sign-on to the application is not allowed",
		"The domain does not let this gateway act for users who signed in without Kerberos.",
		"Contact your administrator.",
		"The S4U2Self ticket is not forwardable: on the gateway's account choose \"Use any authentication protocol\" (TRUSTED_TO_AUTH_FOR_DELEGATION, userAccountControl 0x1000000; samba-tool delegation for-any-protocol ACCOUNT on)."},
	UserUnknown: {http.StatusBadGateway, "Your account is unknown to the domain",
		"The domain controller does not know the name this application signs you in with.",
		"Contact your administrator.",
		"S4U2Self failed with KDC_ERR_C_PRINCIPAL_UNKNOWN: check proxy.apps[].kerberos.login_identity (a UPN the KDC can resolve, or a sAMAccountName in the gateway's realm) and the user's attributes."},
	UpstreamSPNUnknown: {http.StatusBadGateway, "Application not registered in the domain",
		"The application's Kerberos name is not registered in the domain.",
		"Contact your administrator.",
		"S4U2Proxy failed with KDC_ERR_S_PRINCIPAL_UNKNOWN: register proxy.apps[].kerberos.spn on the application's account (setspn -S SPN ACCOUNT; samba-tool spn add) or correct the spn."},
	KDCUnreachable: {http.StatusBadGateway, "Domain controller unreachable",
		"The gateway cannot reach a domain controller to sign you in to the application.",
		"Retry in a minute.",
		"No KDC in proxy.delegation.kdcs answered: check the addresses and that TCP port 88 is open. Users with cached tickets are not affected."},
	KDCError: {http.StatusBadGateway, "Single sign-on to the application failed",
		"The domain controller refused the gateway's request.",
		"Contact your administrator.",
		"See the logged KDC error; kerbgate doctor --user NAME runs the same exchange and names the setting."},
	OIDCStateInvalid: {http.StatusBadRequest, "Sign-in expired or interrupted",
		"This sign-in was not started in this browser, or it took too long.",
		"Open the application again to start a new sign-in.",
		"The state cookie is missing, expired (10 minutes), forged, or sealed with a key no node has (store.cookie_keys_file must be the same on every node)."},
	OIDCTokenInvalid: {http.StatusBadGateway, "Sign-in not accepted",
		"The identity provider's answer could not be verified.",
		"Try again; if it persists, contact your administrator.",
		"The code exchange or the ID token failed, or the UserInfo answer named another subject than the ID token (the log names which): check proxy.apps[].oidc.client_id and its secret, the issuer URL, and the clocks; a UserInfo sub that differs (facts id_token_sub, userinfo_sub) is a provider fault to take to its administrator."},
	OIDCClaimMissing: {http.StatusForbidden, "No user name from the identity provider",
		"The identity provider did not say who you are in the way this application needs.",
		"Contact your administrator.",
		"The ID token and UserInfo lack proxy.apps[].oidc.username_claim: configure the provider to release it (scope) or name the claim that carries the UPN."},
	OIDCProviderUnavailable: {http.StatusBadGateway, "Identity provider unavailable",
		"The sign-in service cannot reach the identity provider.",
		"Retry in a minute.",
		"Discovery or the token endpoint of proxy.apps[].oidc.issuer did not answer: check the URL, network and TLS."},
	Internal: {http.StatusInternalServerError, "Internal error",
		"The server failed while checking your sign-in.",
		"Retry.",
		"See the log line for this request."},
	StoreUnavailable: {http.StatusServiceUnavailable, "Sign-in temporarily unavailable",
		"The sign-in server cannot reach its shared state store right now, so it cannot check or record sign-ins, tokens and sessions safely.",
		"Retry in a minute.",
		"kerbgate could not reach store.redis in time, or fewer replicas than store.redis.min_replica_acks confirmed a write within replica_ack_timeout (the logged facts name the operation and the error): check that Redis is running and reachable from this node, its TLS certificate, the ACL user and password, and that the primary's replicas are up and in sync. kerbgate refuses rather than skip the replay check or promise a token a failover could lose, and recovers on its own when Redis answers (after a failover, when the new primary has its replicas)."},
}

// Fixes for spn_mismatch, which three checks give: each names the setting that refused.
const (
	FixKerberosSPNs = "kerberos.spns refused the ticket's service name (the fact ticket_spn): add the SPN the client asked for to kerberos.spns (with its keys in a keytab), or fix the DNS name / SPN registration that sent the client there."
	FixEPASPNs      = "epa.spns (Extended Protection service binding) refused the ticket's service name (the fact ticket_spn), which kerberos.spns accepts: add it to epa.spns if clients may reach this service by that name; otherwise the token was made for another service on the same account and relayed here."
	FixSPNRewritten = "The ticket's clear-text server name (ticket_spn) was changed after the client asked for authenticator_target: a token made for another service on the same service account was relayed here. There is nothing to add to kerberos.spns or epa.spns; give each service its own account (kerbgate doctor names accounts that share)."
)

// Error is a refusal: a code, a one-line detail for logs, and facts as slog
// key-value pairs (never secrets).
type Error struct {
	Code   Code
	Detail string
	Facts  []slog.Attr
	// Fix, when set, replaces the catalog's advice to the administrator for this one
	// refusal: when one code has several causes (spn_mismatch from kerberos.spns or
	// from epa.spns), it names the setting that refused.
	Fix string
	// RetryAfter, when positive, is sent as the Retry-After header (whole seconds,
	// at least 1): how long the client should wait (busy, rate_limited).
	RetryAfter time.Duration
}

// WithFix sets the administrator's fix for this refusal and returns e.
func (e *Error) WithFix(fix string) *Error {
	e.Fix = fix
	return e
}

// Admin is what the administrator should do about this refusal: its own fix, or the
// catalog's.
func (e *Error) Admin() string {
	if e.Fix != "" {
		return e.Fix
	}
	return Lookup(e.Code).Admin
}

// New returns a refusal with the given code and facts (alternating key, value).
func New(code Code, detail string, kv ...any) *Error {
	e := &Error{Code: code, Detail: detail}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		e.Facts = append(e.Facts, slog.Any(k, kv[i+1]))
	}
	return e
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Code, e.Detail)
	for _, f := range e.Facts {
		fmt.Fprintf(&b, " %s=%v", f.Key, f.Value)
	}
	return b.String()
}

// Of returns the refusal in err, or an internal_error refusal wrapping it.
func Of(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return New(Internal, err.Error())
}

// Lookup returns the catalog entry of a code.
func Lookup(c Code) Entry {
	if e, ok := Catalog[c]; ok {
		return e
	}
	return Catalog[Internal]
}

// Codes lists every code in the catalog (for metrics pre-registration and docs).
func Codes() []Code {
	out := make([]Code, 0, len(Catalog))
	for c := range Catalog {
		out = append(out, c)
	}
	return out
}
