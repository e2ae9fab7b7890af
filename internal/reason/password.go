package reason

import "net/http"

// The password sign-in refusals (the form and Basic fallback for clients without a
// Kerberos ticket, package pwsignin). The KDC's refusals of an account reuse the
// directory's codes (user_disabled, user_locked, user_expired) and the delegation's
// (kdc_unreachable, kdc_error): one meaning, whichever check found it.
const (
	// PasswordWrong is the KDC refusing the password, or not knowing the user: the
	// person cannot tell the two apart, by design (the log's cause fact can).
	PasswordWrong      Code = "password_wrong"
	PasswordExpired    Code = "password_expired"
	PasswordMustChange Code = "password_must_change"
	// UserRestricted is an account that may not sign in now or from here (logon
	// hours, workstation restrictions).
	UserRestricted Code = "user_restricted"
	// PasswordLockedOut is kerbgate's smart lockout: the account had too many failed
	// attempts from this kind of location, below Active Directory's own threshold.
	PasswordLockedOut Code = "password_locked_out"
	// PasswordBackoff is an attempt too soon after the last failure for the account.
	PasswordBackoff Code = "password_backoff"
	// PasswordSourceBlocked is a source address with too many failures or attempts.
	PasswordSourceBlocked Code = "password_source_blocked"
	// PasswordBusy is the bound on password checks in flight at the KDC.
	PasswordBusy        Code = "password_busy"
	PasswordFormInvalid Code = "password_form_invalid"
	// PasswordNameForeign is a user name of another domain or realm.
	PasswordNameForeign Code = "password_name_foreign"
	// FormTokenInvalid is a sign-in form posted without this browser's CSRF token.
	FormTokenInvalid Code = "form_token_invalid"
	// BasicOverHTTP is Basic credentials sent without TLS.
	BasicOverHTTP Code = "basic_over_http"
	// KDCClockSkew is kerbgate's clock too far from the KDC's.
	KDCClockSkew Code = "kdc_clock_skew"
)

func init() {
	for c, e := range passwordCatalog {
		Catalog[c] = e
	}
}

var passwordCatalog = map[Code]Entry{
	PasswordWrong: {http.StatusUnauthorized, "Sign-in failed",
		"The user name or password is incorrect.",
		"Check your user name and password and try again. Repeated failures block further attempts for a while.",
		"The KDC refused the password (KDC_ERR_PREAUTH_FAILED) or does not know the user (the logged cause says which; the page does not). Each failure counts towards kerbgate's smart lockout (password_signin.lockout), which stays below the domain's lockoutThreshold."},
	PasswordExpired: {http.StatusForbidden, "Password expired",
		"Your password has expired.",
		"Change your password (use the link on this page if there is one, or a domain-joined computer), then sign in again.",
		"The KDC answered KDC_ERR_KEY_EXPIRED (NT status PASSWORD_EXPIRED): the password is older than the domain's maximum password age. Set password_signin.password_change_url to offer your organisation's password-change page."},
	PasswordMustChange: {http.StatusForbidden, "Password change required",
		"You must change your password before you can sign in.",
		"Change your password (use the link on this page if there is one, or a domain-joined computer), then sign in again.",
		"The account has \"User must change password at next logon\" (pwdLastSet 0; NT status PASSWORD_MUST_CHANGE). Set password_signin.password_change_url to offer your organisation's password-change page."},
	UserRestricted: {http.StatusForbidden, "Sign-in not allowed now",
		"Your account may not sign in at this time or from this computer.",
		"Contact your administrator.",
		"The KDC refused the account's logon hours or workstation restrictions (logonHours, userWorkstations; the logged NT status says which)."},
	PasswordLockedOut: {http.StatusTooManyRequests, "Too many failed sign-ins",
		"There were too many failed sign-ins for this account from this kind of location, so further attempts are blocked for a while.",
		"Wait for the time given, then try again; if you did not make these attempts, tell your help desk.",
		"kerbgate's smart lockout counts failures per account, apart for familiar and unfamiliar sources (password_signin.lockout), in the shared store, and stops sending attempts to the KDC below the domain's lockoutThreshold, so that the account is not locked out in Active Directory. The logged facts give the count, the limit and the class of source; kerbgate doctor shows the domain's threshold."},
	PasswordBackoff: {http.StatusTooManyRequests, "Please wait",
		"The last sign-in for this account failed a moment ago.",
		"Wait the few seconds given, then try again.",
		"After each failure an account waits twice as long as after the one before (password_signin.lockout.backoff, up to max_backoff) before kerbgate sends another attempt to the KDC."},
	PasswordSourceBlocked: {http.StatusTooManyRequests, "Too many sign-in attempts",
		"Too many sign-in attempts came from your network address.",
		"Wait for the time given, then try again.",
		"Sign-in attempts are limited per source address (password_signin.rate_limit, in memory on each node) and failures per source address across the farm (password_signin.lockout.source_threshold); behind a balancer, the address is the X-Forwarded-For client of listen.trusted_proxies. Many refusals from one address are an attack or a shared address (NAT) with a broken client."},
	PasswordBusy: {http.StatusServiceUnavailable, "Server busy",
		"Too many password sign-ins are being checked right now.",
		"Try again in a moment.",
		"kerbgate bounds the password checks in flight at the KDC (password_signin.max_concurrent) and answers the rest at once rather than queue them: the KDC is not flooded. Raise the bound only if the KDCs have room."},
	PasswordFormInvalid: {http.StatusBadRequest, "Sign-in form not accepted",
		"The sign-in form was empty, too long, or held characters that are not allowed.",
		"Fill in your user name and password and try again.",
		"The form's fields are bounded (user name 256 bytes, password 256 characters, no control characters in the name, no NUL anywhere); the logged detail names the field, never its value."},
	PasswordNameForeign: {http.StatusBadRequest, "Account of another domain",
		"The user name names a domain this sign-in page does not serve.",
		"Sign in with your account of this organisation's domain, as NAME, DOMAIN\\NAME or your user principal name.",
		"Password sign-in accepts account names of kerberos.realm (NAME, NETBIOS\\NAME with password_signin.netbios_domain, NAME@REALM) and user principal names whose suffix is in password_signin.upn_suffixes (the realm's DNS name by default)."},
	FormTokenInvalid: {http.StatusForbidden, "Sign-in form expired",
		"The sign-in form was not opened in this browser, or it is too old.",
		"Reload the page and sign in again.",
		"The form's CSRF token must match the browser's form cookie (HttpOnly, SameSite=Strict, sealed with the cookie keys): a form posted from another site, a browser that refuses cookies, or cookie keys that differ between the nodes of a farm (store.cookie_keys_file)."},
	BasicOverHTTP: {http.StatusForbidden, "Secure connection required",
		"Your client sent a password over an unencrypted connection.",
		"Use https, and change the password if it may have been seen.",
		"Basic authentication (basic_auth on the app) is accepted over TLS only: kerbgate's own tls section, or https at listen.external_url / X-Forwarded-Proto from listen.trusted_proxies. The password was not sent to the KDC."},
	KDCClockSkew: {http.StatusServiceUnavailable, "Sign-in temporarily unavailable",
		"The sign-in server's clock and the domain controller's clock disagree.",
		"Try again later.",
		"The KDC answered KRB_AP_ERR_SKEW to kerbgate's request: synchronise kerbgate's host clock with the domain (NTP)."},
}
