// Package signin is the sign-in core every face shares (the handoff, the application
// proxy, and the faces to come): how a browser is signed in, how it stays signed in,
// and who may go on.
//
// It owns four things:
//
//   - PreAuthenticator, one small interface with one implementation per method:
//     Negotiate (Integrated Windows Authentication), OIDC (an external OpenID
//     provider, through package oidcauth) and Passthrough (nobody is signed in). A new
//     method, such as a password form, is one new file.
//   - Sessions, the browser session: a session id in the store and a cookie whose
//     value is that id sealed (MAC) with the farm's cookie keys (package keyset). The
//     cookie is HttpOnly, SameSite=Lax, Secure whenever the browser uses https, and
//     named __Host- (at path "/") or __Secure- (below it) on https (package frontend).
//   - Groups, the group policy of an application: allowed groups as SIDs or names,
//     names resolved through a GroupResolver (the directory) on first use, with one
//     meaning for every face: a user may go on when one of the allowed SIDs is one of
//     the user's group SIDs, or is the user's own SID (as in a Windows access check,
//     where the token holds the user's SID and its groups' SIDs alike).
//   - Admit, the one step every face takes once a browser is signed in: the
//     account check in the directory (when the app requires it), the allowed
//     groups, then the group names (through a GroupNamer, the directory; a failure
//     there leaves SIDs only and never refuses). GroupFilter selects the names one
//     output carries. WhoAmI shows a signed-in identity, named the same way.
//
// It must not read configuration (package setup translates config into its types),
// import a face, verify Kerberos tokens itself (package negotiate does), or speak
// LDAP (a GroupResolver does). Refusals are *reason.Error values; faces render them.
package signin
