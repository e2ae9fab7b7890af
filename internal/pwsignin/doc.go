// Package pwsignin is the password fallback of the sign-in core: for browsers and
// programs that cannot answer Negotiate (no Kerberos ticket: phones, home and
// contractors' computers, scripts without a keytab), a sign-in form in the 401 page
// of the Negotiate challenge, or HTTP Basic over TLS for programs, checked against
// Active Directory with a Kerberos AS exchange (package logon), never an LDAP bind.
//
// It owns four things:
//
//   - Rules: who is challenged how, by source address and User-Agent, per listener
//     or per application: Negotiate only, Negotiate with the form in the 401 page
//     (a browser without a ticket shows the form, no pop-up), or the form only.
//   - Checker: one password check, from the typed name to the identity: the name's
//     forms (NAME, DOMAIN\NAME, NAME@REALM, a UPN), the bound on checks in flight, a
//     rate limit per source address, smart lockout (Lockout), the AS exchange and
//     the acceptor's verification of the ticket it yields, so that the identity is a
//     Negotiate sign-in's, PAC and groups included (AuthMethod "pwd"), and failures
//     answered no sooner than a floor so that an unknown user looks like a wrong
//     password.
//   - Lockout: smart lockout in the shared store, below the domain's own
//     lockoutThreshold, with familiar and unfamiliar sources counted apart and an
//     exponential back-off, so that an attacker cannot lock a user out of Windows.
//   - Authenticator: the signin.PreAuthenticator a face gets, wrapping Negotiate: the
//     challenge the rules choose, the form (accessible, no external assets, a CSRF
//     token bound to the browser by a cookie, the right autocomplete), its POST, and
//     Basic when the application allows it.
//
// It must not read configuration (package setup translates it), verify Kerberos
// tokens or talk to the KDC itself (negotiate, acceptor and logon do), or log or
// put in a URL any password: a password exists only in the form's POST body or the
// Authorization header, and in the AS exchange's key derivation.
package pwsignin
