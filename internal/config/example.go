package config

// Example returns a complete configuration file, every field set and commented. It
// parses as is once the keytab it names exists (`kerbgate example-config` prints it).
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
  # The largest request headers accepted, in bytes. 0 means
  # kerberos.max_token_bytes + 32768. If set, it must be at least
  # max_token_bytes + 1024 so that the largest allowed token fits.
  max_header_bytes: 0

kerberos:
  # The realm of the gateway's service principals, in upper case.
  realm: EXAMPLE.TEST
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

log:
  # debug, info, warn or error.
  level: info
  # json or text.
  format: json
  # When true, refusals carry a Kerbgate-Reason response header saying why
  # sign-in failed. Useful while setting up; it also helps attackers.
  expose_reasons: false
`
