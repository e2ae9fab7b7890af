package config

// Example returns a complete configuration file, every field set and commented (the
// fields of the other directory bind method in comments). It parses as is once the
// files it names exist: the keytab, the directory's CA file and its bind password
// file (`kerbgate example-config` prints it).
func Example() string { return example }

const example = `# kerbgate configuration.
#
# Durations use Go syntax: 300ms, 10s, 5m, 1h. Problems are reported all at once,
# as FILE:LINE:COL: field.path: what is wrong; expected ...
# Check a file with: kerbgate check-config --config FILE

listen:
  # host:port to listen on. ":8080" listens on every address.
  address: ":8080"
  # How long a client may take to send its request headers (at most 5m).
  read_header_timeout: 10s
  # On SIGTERM (systemctl stop, a rolling restart), /readyz answers 503 at once
  # and responses ask clients to close their connections; the listener keeps
  # accepting for drain_delay, so that the load balancer's health checks take
  # the node out first, then closes. 0 (the default) closes it at once: right
  # for a single node; behind a balancer set it longer than its check interval
  # times the failures it needs, like 5s (at most 5m).
  drain_delay: 0s
  # Then requests in flight get this long to finish; those still running are
  # cut (at most 10m). systemd's TimeoutStopSec must exceed both together.
  shutdown_timeout: 30s
  # The largest request headers accepted, in bytes. 0 means
  # kerberos.max_token_bytes + 32768. If set, it must be at least
  # max_token_bytes + 1024 so that the largest allowed token fits.
  max_header_bytes: 0
  # Behind a TLS-terminating load balancer or reverse proxy: the URL clients use
  # (scheme and host). With https here, kerbgate's cookies are Secure (and
  # __Host- or __Secure- prefixed) even though the balancer speaks plain HTTP to
  # kerbgate.
  # external_url: https://sso.example.test
  # The balancers' addresses: their X-Forwarded-Proto and X-Forwarded-For are
  # believed (the scheme without external_url, the client's address in logs and
  # rate limits). Those headers from any other address are ignored.
  # trusted_proxies: [10.0.0.0/24]

kerberos:
  # The realm of the gateway's service principals, in upper case.
  realm: EXAMPLE.TEST
  # Realms of trusted domains and forests whose users may sign in too, in upper
  # case, like PARTNER.EXAMPLE. Empty by default: a ticket of a user of any
  # other realm is refused with foreign_realm. Such users are looked up in the
  # directory by their SID, never by name, and are never delegated under a
  # bare name unless an app lists their realm in kerberos.map_foreign_realms.
  trusted_realms: []
  # Keytab files holding the service keys, exported with ktpass or ktutil and
  # readable by the kerbgate user. Relative paths are resolved against the
  # directory of this file. List two during a key rollover.
  keytabs:
    - /etc/kerbgate/svc-gw.keytab
  # Service principal names browsers ask tickets for: service/host, without
  # @REALM. The host is the name users type in the address bar.
  spns:
    - HTTP/sso.example.test
  # Accepted encryption types, by name. The default is the four AES types below.
  # rc4-hmac (alias arcfour-hmac) may be added for old clients; DES is not supported.
  # Aliases: aes256-cts, aes128-cts.
  enctypes:
    - aes256-cts-hmac-sha1-96
    - aes128-cts-hmac-sha1-96
    - aes256-cts-hmac-sha384-192
    - aes128-cts-hmac-sha256-128
  # The largest accepted difference between the clocks of clients and the
  # gateway (more than 0, at most 1h).
  clock_skew: 5m
  # The largest Negotiate token accepted, in base64 characters (1024 to 1048576).
  # Tickets of users in many groups are large: raise this if they are refused
  # with token_too_large.
  max_token_bytes: 65536
  # How many recently seen authenticators are remembered to refuse replays
  # (at least 1000).
  replay_cache_size: 1000000
  # How often the keytab files are checked for changes (0: never). A changed
  # keytab is loaded without a restart.
  keytab_reload_interval: 5s
  # How long keys that a reloaded keytab no longer holds stay usable, so that
  # tickets issued before a password change keep working (AD's default maximum
  # ticket lifetime is 10h).
  retain_old_keys: 10h
  # At start-up, check in the directory that every SPN above is registered on
  # exactly one account whose current key version the keytabs hold: warn (log
  # what is wrong), fail (refuse to start) or off. Needs the directory section.
  spn_check: warn

log:
  # debug, info, warn or error.
  level: info
  # json or text.
  format: json
  # When true, refusals carry a Kerbgate-Reason response header saying why
  # sign-in failed. Useful while setting up; it also helps attackers.
  expose_reasons: false
  # A file holding a bearer token (32+ characters): when set, the recent
  # refusals with their facts are at GET /debug/last-failures for requests with
  # "Authorization: Bearer <token>". Off when absent.
  # debug_token_file: /etc/kerbgate/debug.token

# The Active Directory (LDAP) server kerbgate asks about accounts and groups.
# Optional: without this section, apps can only allow groups by SID.
directory:
  # ldaps://host[:port] (port 636 by default) or ldap://host[:port] (389).
  url: ldaps://dc1.example.test:636
  # Upgrade an ldap:// connection to TLS with StartTLS. A simple bind over
  # ldap:// needs it.
  start_tls: false
  # PEM file of the CA certificates that sign the server's certificate.
  # Required with ldaps:// or start_tls.
  ca_file: /etc/kerbgate/ad-ca.pem
  # The name the server's certificate carries; the host of url by default.
  server_name: dc1.example.test
  # Accept a certificate that names the server only in its Common Name (no
  # subject alternative names), as Samba's self-made one does. The chain is
  # still verified against ca_file.
  tls_legacy_cn: false
  # Where searches for accounts and groups start.
  base_dn: DC=example,DC=test
  # How kerbgate authenticates to the server.
  bind:
    # simple (a DN and a password) or gssapi (a keytab).
    method: simple
    # simple: the account kerbgate binds as.
    dn: CN=svc-ldap,CN=Users,DC=example,DC=test
    # simple: the password, in a file only the kerbgate user can read
    # (chmod 600), or in an environment variable. Set exactly one of
    # password_file and password_env; never the password itself here.
    password_file: /etc/kerbgate/ldap.password
    # password_env: KERBGATE_LDAP_PASSWORD
    # gssapi, instead of dn and the password: a keytab with the key of an
    # account, and its name without @REALM (the realm is kerberos.realm).
    # keytab: /etc/kerbgate/svc-gw-account.keytab
    # principal: svc-gw
  # How long answers are cached (0 disables the cache, at most 1h).
  cache_ttl: 60s
  # The longest an exchange with the server may take (at most 1m).
  timeout: 5s

store:
  # The database file for sessions and one-time tokens. Relative paths are
  # resolved against the directory of this file, which is the default place;
  # the directory must exist.
  path: kerbgate.db
  # Keys that authenticate kerbgate's session cookies, one base64 key (32+
  # bytes) per line, the first signing. Every node of a farm needs the same
  # file; rotate by adding a new first line. When absent, kerbgate makes
  # kerbgate-cookie.keys next to the database on first start.
  # cookie_keys_file: /etc/kerbgate/cookie.keys
  # A farm (several kerbgate nodes behind a load balancer) keeps tokens,
  # sessions and the replay cache in Redis instead, shared by every node: a
  # token issued by one node is redeemed on any, and a replayed sign-in is
  # refused by all. Replace path with a redis section (docs/farm.md). When
  # Redis cannot be reached, requests that need it are refused with
  # store_unavailable until it answers again.
  # redis:
  #   # redis://host[:port][/db], or rediss:// for TLS; port 6379 by default.
  #   url: rediss://redis.example.test:6379
  #   # Or, instead of url, a list of host:port: the nodes of a Redis Cluster,
  #   # or the Sentinels' with master_name (a tls section then turns on TLS).
  #   # addrs: [redis1.example.test:6379, redis2.example.test:6379]
  #   # master_name: kerbgate
  #   # An ACL user (Redis 6 or later) and its password, in a file only the
  #   # kerbgate user can read (chmod 600) or in an environment variable;
  #   # never the password itself here.
  #   username: kerbgate
  #   password_file: /etc/kerbgate/redis.password
  #   # password_env: KERBGATE_REDIS_PASSWORD
  #   tls:
  #     # The CA certificates that sign the server's certificate (the
  #     # system's when absent), and the name that certificate carries (the
  #     # host of the address by default).
  #     ca: /etc/kerbgate/redis-ca.pem
  #     server_name: redis.example.test
  #     # A client certificate and its key, if Redis asks for one.
  #     cert: /etc/kerbgate/redis-client.pem
  #     key: /etc/kerbgate/redis-client.key
  #   # Every key starts with this: several farms can share one Redis, and
  #   # an ACL can confine kerbgate's user to ~kerbgate:*.
  #   prefix: "kerbgate:"
  #   # The database number (0 with a Cluster); or the path of url.
  #   db: 0
  #   # The longest a connection may take to open (at most 1m).
  #   dial_timeout: 2s
  #   # The longest a request waits for Redis before it is refused with
  #   # store_unavailable (at most 1m).
  #   timeout: 1s
  #   # How many replicas must hold each write (a token, code, session,
  #   # redemption, revocation or replay entry) before kerbgate answers, so
  #   # that a failover loses nothing it promised: 1 by default with Sentinel
  #   # or a Cluster, 0 (the primary's word alone) with one server. A write
  #   # not confirmed within replica_ack_timeout (shorter than timeout; 500ms
  #   # by default) is refused with store_unavailable.
  #   min_replica_acks: 1
  #   replica_ack_timeout: 500ms

sso:
  # The name of kerbgate's own browser session cookie.
  cookie_name: kerbgate_session
  # How long kerbgate's own browser session lasts (1m to 720h).
  browser_session_ttl: 8h
  # Applications that sign users in through kerbgate (see docs/handoff.md).
  apps:
      # Lower-case letters, digits, '.', '_' and '-'; the app's client id.
    - id: demo
      # Shown to people.
      name: Demo application
      # Where browsers are sent back with an ssoToken, compared exactly.
      # https, except for localhost, 127.0.0.1, ::1 and hosts ending in .test.
      redirect_uris:
        - http://app.example.test:9090/callback
      # The client secret's hash, as printed by kerbgate hash-secret.
      secret_hash: $argon2id$v=19$m=65536,t=3,p=4$a2VyYmdhdGUtZXhhbXBsZQ$tfWZn4lyEkJm5sp9a824NaLHsoW8fH9jzp2DXFbGSyY
      # How long an ssoToken may be redeemed (1s to 10m).
      token_ttl: 60s
      # How long the app session made by redeeming it lasts (1m to 720h).
      session_ttl: 8h
      # Who may sign in: members of any of these groups, by SID or by name
      # (names need the directory). Empty or absent: any signed-in user.
      allowed_groups:
        - staff
        - S-1-5-21-1-2-3-1110
      # Require the account to be found, enabled and unexpired in the
      # directory. true by default when there is a directory section.
      require_directory: true
      # With a password_signin section: this app's own challenge rules (as
      # password_signin.challenge), and Basic credentials over TLS for programs.
      # challenge: {default: negotiate_form}
      # basic_auth: false

# Serve HTTPS (recommended: Extended Protection binds sign-ins to the TLS
# connection). Uncomment to enable; the files are reloaded when they change.
# tls: (serve HTTPS)
#   cert: /etc/kerbgate/tls.crt
#   key: /etc/kerbgate/tls.key
#   # How often the files are checked for changes (0: never).
#   reload_interval: 5s

# Extended Protection for Authentication, with IIS's names (docs/epa.md has a
# table of deployments and the settings each needs).
epa:
  # None (no check), Allow (bindings a client sends must match; clients that
  # send none pass) or Require (bindings must be present and match).
  token_checking: None
  # None, or any of Proxy, NoServiceNameCheck, AllowDotlessSpn, ProxyCohosting.
  flags: [None]
  # The service names clients may target, checked when channel binding cannot
  # apply (plain HTTP, TLS ended at a proxy). kerberos.spns by default.
  spns:
    - HTTP/sso.example.test
  # Certificates a TLS-terminating load balancer presents to clients: channel
  # bindings made to them are accepted (beyond IIS, which can only fall back to
  # service binding behind SSL offload).
  # channel_binding_certificates: [/etc/kerbgate/lb.crt]

# Publish internal web applications (docs/proxy.md): pre-authentication, then
# Kerberos constrained delegation (S4U2Self + S4U2Proxy) to the application.
# proxy: (publish applications)
#   delegation:
#     # The service account's own keys (kerbgate gets a TGT with them).
#     keytab: /etc/kerbgate/svc-gw-account.keytab
#     principal: svc-gw
#     kdcs: [dc1.example.test:88]
#     ticket_cache_size: 10000
#   cookie_name: kerbgate_proxy
#   session_ttl: 8h
#   apps:
#     - id: intranet
#       host: app.example.test          # the external name browsers use
#       path_prefix: /                 # compared exactly, case included, with the
#                                       # request's canonical path (docs/proxy.md)
#       upstream: http://intranet.internal:8080
#       # upstream_ca_file: /etc/kerbgate/internal-ca.pem
#       preserve_host: false
#       timeout: 60s
#       pre_auth: iwa                   # iwa | oidc | passthrough
#       # oidc:                         # with pre_auth: oidc
#       #   issuer: https://login.example.com
#       #   client_id: kerbgate-intranet
#       #   client_secret_file: /etc/kerbgate/oidc.secret
#       #   username_claim: upn         # the claim carrying the user's UPN
#       #   scopes: [openid, profile, email]
#       allowed_groups: [staff]
#       kerberos:
#         spn: HTTP/intranet.internal
#         login_identity: upn           # upn | alternate_upn | upn_user_part |
#                                       # alternate_upn_user_part | sam_account_name
#         # alternate_upn_attribute: extensionAttribute1
#         token_format: spnego          # spnego | kerberos
#         send: always                  # always | on_401
#         max_replay_body: 1048576
#         # Realms of kerberos.trusted_realms whose users a name-only login
#         # identity (sam_account_name, *_user_part) may be delegated for, in
#         # their own realm. Empty by default: refused with
#         # login_identity_foreign_realm (upn and alternate_upn need no entry).
#         map_foreign_realms: []
#       # Identity headers for the upstream (Entra's header-based SSO), alone or
#       # beside kerberos: default, none (the default here), or claim: header.
#       # Client-sent headers of these names are always stripped.
#       headers: {user: X-Auth-Request-User, email: X-Auth-Request-Email, groups: X-Auth-Request-Groups}
#       group_names: {prefixes: [app-]}
#       # A JWT signed with oidc_provider's keys (needs that section).
#       assertion: {header: X-Auth-Request-Assertion, ttl: 5m}
# kerbgate as an OpenID Provider (docs/oidc-provider.md): applications sign their
# users in with the Windows login, silently (code flow; PKCE S256).
# oidc_provider: (an OpenID Provider)
#   # The provider's URL; its path holds the endpoints
#   # (ISSUER/.well-known/openid-configuration). https, except for loopback and .test.
#   issuer: https://sso.example.com/oidc
#   # The farm's signing keys, a JWK set: kerbgate oidc-keygen FILE adds one (the
#   # newest signs, all are published). The same file on every node.
#   signing_keys_file: /etc/kerbgate/oidc-keys.json
#   id_token_ttl: 5m
#   access_token_ttl: 10m
#   # Refresh tokens (clients with offline_access in scopes) rotate at each use; a
#   # token used twice revokes its whole family.
#   refresh_token_ttl: 8h
#   clients:
#     - id: wiki
#       # kerbgate hash-secret; absent: a public client, which must use PKCE.
#       secret_hash: $argon2id$v=19$m=19456,t=2,p=1$...
#       redirect_uris: [https://wiki.example.com/redirect_uri]
#       post_logout_redirect_uris: [https://wiki.example.com/]
#       allowed_groups: [staff]
#       # and offline_access for refresh tokens, groups for the groups (names) and
#       # group_sids claims
#       scopes: [openid, profile, email, groups]
#       # Which group names the groups claim carries (with a directory section):
#       # include and prefixes (case-insensitive; neither: all), and at most max
#       # in an ID token (more: no groups claim; overage is signalled and userinfo
#       # answers the whole list).
#       group_names:
#         include: [staff]
#         prefixes: [app-wiki-]
#         max: 150
#       require_directory: true
# The password fallback (docs/password-fallback.md): a sign-in form in the 401 page
# for browsers without a Kerberos ticket, and Basic over TLS for programs where an
# app sets basic_auth; checked with a Kerberos AS exchange (FAST-armoured), with
# smart lockout below the domain's lockoutThreshold.
# password_signin: (the password fallback)
#   # kerbgate's own account and keys (its TGT armours the users' exchanges) and
#   # the KDCs: proxy.delegation's by default.
#   principal: svc-gw
#   keytab: /etc/kerbgate/svc-gw-account.keytab
#   kdcs: [dc1.example.test:88]
#   # The SPN users' tickets are asked for (one of kerberos.spns; the first by default).
#   spn: HTTP/sso.example.test
#   fast: auto                          # auto | required
#   # Who is challenged how: the first rule that matches, else default.
#   # negotiate_form (Negotiate, the form in the 401 page) | negotiate | form.
#   # Without a challenge section: phones and tablets get the form, others negotiate_form.
#   challenge:
#     default: negotiate_form
#     rules:
#       - sources: [10.0.0.0/8]
#         user_agents: ["Windows NT", "=~Macintosh.*Safari"]   # as AD FS's WIASupportedUserAgents
#         challenge: negotiate_form
#       - user_agents: [iPhone, iPad, Android]
#         challenge: form
#   netbios_domain: EXAMPLE             # for DOMAIN\name; the realm's first label by default
#   upn_suffixes: [example.com]         # besides the realm's DNS name
#   password_change_url: https://password.example.com/
#   lockout:
#     # Failures an account may have from unfamiliar and familiar sources within
#     # window; absent: derived so that both add up to less than the domain's
#     # lockoutThreshold (read from the directory).
#     unfamiliar_threshold: 2
#     familiar_threshold: 2
#     # Without a directory section: the domain's lockoutThreshold (0: none).
#     domain_threshold: 5
#     window: 30m                       # at least the domain's observation window
#     backoff: 1s                       # doubled after each failure
#     max_backoff: 1m
#     source_threshold: 30              # failures per source address
#     familiar_for: 720h                # a source stays familiar after a sign-in
#   rate_burst: 20                      # attempts per source address on a node,
#   rate_refill: 1s                     # one more every rate_refill
#   max_concurrent: 64                  # checks at the KDC at once
#   min_answer_time: 300ms              # the least time a failed check takes
# kerbgate as the auth endpoint of a reverse proxy (docs/forward-auth.md): nginx
# auth_request, Caddy forward_auth, Traefik forwardAuth. Needs
# listen.trusted_proxies (the proxies' addresses).
# forward_auth: (a reverse proxy's auth endpoint)
#   cookie_name: kerbgate_auth
#   # One sign-in for every host under this domain (the cookie's Domain).
#   cookie_domain: example.com
#   session_ttl: 8h
#   # Keep opened sessions in each node's memory this long (at most 10s; 0s
#   # reads the store on every request). A session signed out on one node stays
#   # usable on the farm's other nodes for up to this long.
#   session_cache_ttl: 1s
#   # Where the sign-in page may send browsers back: a host, or .domain for it
#   # and every host under it. Default: .cookie_domain.
#   return_domains: [.example.com]
#   # kerbgate's sign-in page as browsers reach it (sign_in: redirect); default
#   # listen.external_url + /forward-auth/sign-in.
#   sign_in_url: https://sso.example.com/forward-auth/sign-in
#   require_directory: true
#   hosts:
#     - host: wiki.example.com          # or *.example.com
#       allowed_groups: [staff]
#       # negotiate: 401 Negotiate at the host (its SPN in kerbgate's keytab);
#       # redirect: to sign_in_url (only kerbgate's own SPN needed).
#       sign_in: negotiate
#       headers: default                # or none, or {user: X-Remote-User, ...}
#       group_names:
#         include: [staff]
#         prefixes: [wiki-]
#         max: 150
#       assertion:
#         header: X-Auth-Request-Assertion
#         ttl: 5m
`
