#!/usr/bin/env bash
# The project's test Active Directory domain: a Samba AD DC on loopback.
#
#   realm EXAMPLE.TEST, domain EXAMPLE, DC dc1.example.test on 127.0.0.1
#   all state under DIR = ${KERBGATE_REALM_DIR:-/var/lib/kerbgate-testrealm}
#
# Usage (as root, Debian 12):
#   realm.sh [up]            install packages if missing, provision once, start, write DIR/out/*
#   realm.sh down            stop our samba (by its pid only)
#   realm.sh status          "running PID" (exit 0) or "stopped" (exit 1)
#   realm.sh reset           down, wipe DIR, up
#   realm.sh kinit USER      ticket for a known user into DIR/out/ccache-USER; prints that path
#   realm.sh export-keytabs  re-export the service keytabs
#
# Outputs (DIR/out): krb5.conf, krb5-rc4.conf, svc-gw.keytab (HTTP/sso.example.test),
# svc-gw-account.keytab (svc-gw), svc-app.keytab (HTTP/app.example.test),
# svc-rc4.keytab (HTTP/rc4.example.test, RC4-only account), ca.pem (LDAPS CA),
# svc-ldap.password (0600, password of the LDAP bind account svc-ldap), svc-ldap.dn, env, ready.
# Source env with: set -a; . DIR/out/env; set +a
set -euo pipefail

DIR=${KERBGATE_REALM_DIR:-/var/lib/kerbgate-testrealm}
DIR=${DIR%/}
case "$DIR" in
/?*) ;;
*) echo "realm.sh: KERBGATE_REALM_DIR must be an absolute path, not '$DIR'" >&2; exit 2 ;;
esac
CONF=$DIR/etc/smb.conf
OUT=$DIR/out
RUN=$DIR/run
LOGDIR=$DIR/log
SAM=$DIR/private/sam.ldb
REALM=EXAMPLE.TEST
DOMAIN=EXAMPLE
BASEDN=DC=example,DC=test
USERS_DN=CN=Users,$BASEDN
ADMIN_PASS='Admin#Pass1'
HOSTS_LINE='127.0.0.1 sso.example.test app.example.test dc1.example.test dc1'
HOSTS_LINE_RC4='127.0.0.1 rc4.example.test'
HOSTS_LINE_RBCD='127.0.0.1 rbcd.example.test'
DAVE_GROUPS=130
# Proxy account for LDAP simple binds (kerbgate's directory checks).
LDAP_BIND_USER=svc-ldap
LDAP_BIND_PASS='SvcLdap#Pass1'
LDAP_BIND_DN=CN=$LDAP_BIND_USER,$USERS_DN

START_NS=$(date +%s%N)
log() {
  local now
  now=$(date +%s%N)
  printf 'realm.sh [%5.1fs] %s\n' "$(((now - START_NS) / 1000000))e-3" "$*" >&2
}
die() {
  log "ERROR: $*"
  exit 1
}

password() {
  case "$1" in
  alice) echo 'Alice#Pass1' ;;
  bob) echo 'Bob#Pass1' ;;
  carol) echo 'Carol#Pass1' ;;
  dave) echo 'Dave#Pass1' ;;
  svc-gw) echo 'SvcGw#Pass1' ;;
  svc-app) echo 'SvcApp#Pass1' ;;
  svc-rc4) echo 'SvcRc4#Pass1' ;;
  svc-rbcd) echo 'SvcRbcd#Pass1' ;;
  svc-ldap) echo "$LDAP_BIND_PASS" ;;
  Administrator | administrator) echo "$ADMIN_PASS" ;;
  *) return 1 ;;
  esac
}

stool() { # samba-tool SUBCOMMAND... with our config (-s goes after the subcommand)
  samba-tool "$@" -s "$CONF"
}

# ---------------------------------------------------------------- packages

PACKAGES=(samba samba-ad-dc samba-ad-provision krb5-user winbind ldb-tools smbclient
  python3-gssapi chromium curl psmisc
  # Real peers for the other capabilities: an IWA upstream (proxy, benchmarks), a
  # load balancer (farm, Extended Protection scenarios), Redis and its Sentinel (farm,
  # failover), faketime (doctor), nginx (a second real upstream for the proxy's path
  # tests, and forward-auth's auth_request), caddy (forward-auth's forward_auth).
  apache2 libapache2-mod-auth-gssapi libapache2-mod-auth-openidc haproxy redis-server redis-sentinel
  faketime nginx caddy)

packages_missing() {
  local b
  for b in samba samba-tool smbd winbindd kinit kvno klist ldbadd ldbmodify ldbsearch \
    smbclient chromium curl killall apache2 haproxy redis-server redis-sentinel redis-cli faketime nginx caddy; do
    command -v "$b" >/dev/null 2>&1 || { echo "$b"; return 0; }
  done
  # samba-ad-dc only recommends the provisioning data; without it provision fails.
  [ -d /usr/share/samba/setup/ad-schema ] || { echo samba-ad-provision; return 0; }
  /usr/bin/python3 -c 'import gssapi' >/dev/null 2>&1 || { echo python3-gssapi; return 0; }
  [ -f /usr/lib/apache2/modules/mod_auth_gssapi.so ] || { echo libapache2-mod-auth-gssapi; return 0; }
  [ -f /usr/lib/apache2/modules/mod_auth_openidc.so ] || { echo libapache2-mod-auth-openidc; return 0; }
  return 1
}

# Debian's nginx package starts a system nginx on port 80 (unless policy-rc.d forbids
# it). Tests run their own (testrealm.StartNginx); stop and disable the system one so
# that nothing depends on it. Stopped by the pid in its own pid file only.
stop_system_nginx() {
  local pid
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx.service >/dev/null 2>&1 || true
  fi
  pid=$(tr -dc 0-9 </run/nginx.pid 2>/dev/null) || true
  if pid_alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
    kill "$pid" 2>/dev/null || true
    log "stopped the system nginx (pid $pid)"
  fi
}

# Debian's caddy package starts a system caddy on port 80 the same way; tests run
# their own (testrealm.StartCaddy). Stopped and disabled, by systemd only: it
# writes no pid file.
stop_system_caddy() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now caddy.service >/dev/null 2>&1 || true
  fi
}

ensure_packages() {
  local missing
  missing=$(packages_missing) || return 0
  log "installing packages (missing: $missing)"
  export DEBIAN_FRONTEND=noninteractive
  # Never prompt for the Kerberos client configuration.
  if command -v debconf-set-selections >/dev/null 2>&1; then
    debconf-set-selections <<EOF
krb5-config krb5-config/default_realm string $REALM
krb5-config krb5-config/add_servers_realm string $REALM
krb5-config krb5-config/add_servers boolean false
krb5-config krb5-config/read_conf boolean true
EOF
  fi
  apt-get update -q >&2 || log "apt-get update failed; trying install anyway"
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${PACKAGES[@]}" >&2 || die "apt-get install ${PACKAGES[*]} failed"
  missing=$(packages_missing) && die "still missing after install: $missing"
  stop_system_nginx
  stop_system_caddy
  log "packages installed"
}

# ---------------------------------------------------------------- processes

pid_alive() { [ -n "${1:-}" ] && [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Prints the pid of our samba root process (from DIR's pid file, checked to be a
# live samba with files open under DIR), or fails.
our_pid() {
  local pid
  [ -s "$RUN/samba.pid" ] || return 1
  pid=$(tr -dc 0-9 <"$RUN/samba.pid")
  pid_alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = samba ] || return 1
  ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF -- " $DIR/" || return 1
  echo "$pid"
}

# Pid from DIR/run/NAME.pid if that process runs with our smb.conf.
our_helper_pid() {
  local pid
  [ -s "$RUN/$1.pid" ] || return 1
  pid=$(tr -dc 0-9 <"$RUN/$1.pid")
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF" || return 1
  echo "$pid"
}

wait_gone() { # PID SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    pid_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}

stop_ours() {
  local pid pgid h hp
  if pid=$(our_pid); then
    log "stopping samba pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 20; then
      pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
      log "samba pid $pid ignored SIGTERM; SIGKILL to its process group $pgid"
      if [ "$pgid" = "$pid" ]; then kill -KILL -- "-$pgid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
      wait_gone "$pid" 5 || die "samba pid $pid does not die"
    fi
  fi
  # smbd and winbindd run in their own sessions; they normally exit with samba.
  for h in smbd winbindd; do
    if hp=$(our_helper_pid "$h"); then
      wait_gone "$hp" 5 || {
        log "stopping leftover $h pid $hp"
        kill -TERM "$hp" 2>/dev/null || true
        wait_gone "$hp" 5 || kill -KILL "$hp" 2>/dev/null || true
      }
    fi
  done
  rm -f "$RUN"/*.pid 2>/dev/null || true
}

# Stop Samba daemons not run by us (the Debian packages start their own
# samba-ad-dc/smbd/nmbd/winbind, which hold ports 53/88/389/445), and strays of an
# earlier attempt. Called only when our samba is not running.
stop_foreign() {
  local pid comm args pids=() pgid mypgid
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now samba-ad-dc.service smbd.service nmbd.service winbind.service \
      >/dev/null 2>&1 || true
  fi
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$pid" = $$ ] && continue
    pid_alive "$pid" || continue # zombies (PID 1 may not reap them) hold nothing
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    case "$comm" in
    samba | smbd | nmbd | winbindd | samba-dcerpcd | samba-bgqd) ;;
    *) [[ "$args" == "samba: "* ]] || continue ;;
    esac
    pids+=("$pid")
    if [[ "$args" == *"$CONF"* ]]; then
      log "stopping stray samba process of ours: $pid ($args)"
    else
      log "stopping samba process not started by us: $pid ($args)"
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  mypgid=$(ps -o pgid= -p $$ | tr -d ' ')
  for pid in "${pids[@]}"; do
    wait_gone "$pid" 10 && continue
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || true
    if [ -n "$pgid" ] && [ "$pgid" = "$pid" ] && [ "$pgid" != "$mypgid" ]; then
      kill -KILL -- "-$pgid" 2>/dev/null || true
    else
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait_gone "$pid" 5 || log "warning: pid $pid survives SIGKILL"
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log_tail() {
  echo "---- tail of $LOGDIR/samba.log ----" >&2
  tail -n 40 "$LOGDIR/samba.log" >&2 2>/dev/null || true
  echo "----" >&2
}

start_samba() {
  local i p pid
  mkdir -p "$RUN" "$LOGDIR"
  rm -f "$RUN"/*.pid
  log "starting samba -s $CONF -D"
  # 9>&-: the daemon must not inherit (and hold forever) our lock file descriptor.
  # Its stdio goes to a file so that callers capturing our output see EOF.
  samba -s "$CONF" -D 9>&- </dev/null >"$LOGDIR/samba-start.log" 2>&1 || {
    cat "$LOGDIR/samba-start.log" >&2
    log_tail
    die "samba failed to start"
  }
  for ((i = 0; i < 600; i++)); do
    if port_open 88 && port_open 389 && port_open 636; then break; fi
    pid=$(tr -dc 0-9 <"$RUN/samba.pid" 2>/dev/null) || true
    if [ $i -gt 20 ] && ! pid_alive "$pid"; then
      log_tail
      die "samba exited during startup"
    fi
    sleep 0.1
  done
  for p in 88 389 636; do
    port_open $p || { log_tail; die "samba did not open port $p within 60 s"; }
  done
  pid=$(our_pid) || { log_tail; die "no samba pid in $RUN/samba.pid"; }
  log "samba running, pid $pid (ports 88, 389, 636 open)"
}

# ---------------------------------------------------------------- client config

write_krb5_conf() { # FILE [extra libdefaults lines...]
  local f=$1
  shift
  {
    echo "# Written by testrealm/realm.sh for the test domain $REALM."
    echo "[libdefaults]"
    echo "    default_realm = $REALM"
    echo "    dns_lookup_kdc = false"
    echo "    dns_lookup_realm = false"
    echo "    rdns = false"
    echo "    dns_canonicalize_hostname = false"
    local l
    for l in "$@"; do echo "    $l"; done
    echo
    echo "[realms]"
    echo "    $REALM = {"
    echo "        kdc = 127.0.0.1"
    echo "        admin_server = 127.0.0.1"
    echo "        kpasswd_server = 127.0.0.1"
    echo "    }"
    echo
    echo "[domain_realm]"
    echo "    .example.test = $REALM"
    echo "    example.test = $REALM"
  } >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

write_outputs() {
  mkdir -p "$OUT"
  write_krb5_conf "$OUT/krb5.conf"
  write_krb5_conf "$OUT/krb5-rc4.conf" \
    "default_tkt_enctypes = rc4-hmac" \
    "default_tgs_enctypes = rc4-hmac" \
    "permitted_enctypes = rc4-hmac aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96" \
    "allow_weak_crypto = true"
  if [ -s "$DIR/private/tls/ca.pem" ]; then
    cp -f "$DIR/private/tls/ca.pem" "$OUT/ca.pem.tmp" && mv -f "$OUT/ca.pem.tmp" "$OUT/ca.pem"
  fi
  {
    kv() { printf "%s='%s'\n" "$1" "$2"; } # values never contain a quote
    kv KERBGATE_REALM_DIR "$DIR"
    kv KRB5_CONFIG "$OUT/krb5.conf"
    kv KERBGATE_REALM "$REALM"
    kv KERBGATE_DOMAIN "$DOMAIN"
    kv KERBGATE_KDC "127.0.0.1:88"
    kv KERBGATE_KRB5_CONF "$OUT/krb5.conf"
    kv KERBGATE_KRB5_CONF_RC4 "$OUT/krb5-rc4.conf"
    kv KERBGATE_GATEWAY_SPN "HTTP/sso.example.test"
    kv KERBGATE_GATEWAY_KEYTAB "$OUT/svc-gw.keytab"
    kv KERBGATE_GATEWAY_ACCOUNT_KEYTAB "$OUT/svc-gw-account.keytab"
    kv KERBGATE_APP_KEYTAB "$OUT/svc-app.keytab"
    kv KERBGATE_RC4_KEYTAB "$OUT/svc-rc4.keytab"
    kv KERBGATE_RBCD_KEYTAB "$OUT/svc-rbcd.keytab"
    kv KERBGATE_SMB_CONF "$CONF"
    kv KERBGATE_CA_CERT "$OUT/ca.pem"
    kv KERBGATE_LDAP_URL "ldaps://dc1.example.test:636"
    kv KERBGATE_BASE_DN "$BASEDN"
    kv KERBGATE_LDAP_BIND_DN "$LDAP_BIND_DN"
    kv KERBGATE_LDAP_BIND_PASSWORD_FILE "$OUT/$LDAP_BIND_USER.password"
  } >"$OUT/env.tmp"
  mv -f "$OUT/env.tmp" "$OUT/env"
}

ensure_hosts() {
  local l
  for l in "$HOSTS_LINE" "$HOSTS_LINE_RC4" "$HOSTS_LINE_RBCD"; do
    if ! grep -qxF -- "$l" /etc/hosts; then
      [ -z "$(tail -c1 /etc/hosts)" ] || echo >>/etc/hosts
      echo "$l" >>/etc/hosts
      log "added to /etc/hosts: $l"
    fi
  done
}

# ---------------------------------------------------------------- keytabs

export_keytab() { # PRINCIPAL DST
  local tmp="$2.tmp.$$"
  rm -f "$tmp"
  local out
  out=$(stool domain exportkeytab "$tmp" --principal="$1" 2>&1) || { echo "$out" >&2; die "exportkeytab $1 failed"; }
  chmod 0644 "$tmp"
  mv -f "$tmp" "$2"
}

export_keytabs() { # [force]
  mkdir -p "$OUT"
  local spec p f n=0
  for spec in "HTTP/sso.example.test=svc-gw.keytab" "svc-gw=svc-gw-account.keytab" \
    "HTTP/app.example.test=svc-app.keytab" "HTTP/rc4.example.test=svc-rc4.keytab" \
    "HTTP/rbcd.example.test=svc-rbcd.keytab"; do
    p=${spec%%=*}
    f=$OUT/${spec#*=}
    if [ "${1:-}" = force ] || [ ! -s "$f" ]; then
      export_keytab "$p" "$f"
      n=$((n + 1))
    fi
  done
  [ $n -eq 0 ] || log "exported $n keytab(s) to $OUT"
}

# ---------------------------------------------------------------- domain

provision() {
  log "provisioning $REALM into $DIR (about 15 s)"
  mkdir -p "$DIR" "$RUN" "$LOGDIR" "$OUT"
  samba-tool domain provision --targetdir="$DIR" --realm="$REALM" --domain="$DOMAIN" \
    --server-role=dc --dns-backend=SAMBA_INTERNAL --adminpass="$ADMIN_PASS" \
    --host-name=dc1 --host-ip=127.0.0.1 --use-rfc2307 \
    --option="interfaces=lo" --option="bind interfaces only=yes" \
    --option="pid directory=$RUN" --option="log file=$LOGDIR/samba.log" \
    --option="ncalrpc dir=$RUN/ncalrpc" --option="winbindd socket directory=$RUN/winbindd" \
    >"$LOGDIR/provision.log" 2>&1 || {
    tail -n 30 "$LOGDIR/provision.log" >&2
    die "provision failed (full log: $LOGDIR/provision.log)"
  }
  [ -s "$CONF" ] || die "provision wrote no $CONF"
  log "provisioned"
}

existing_names() { # all sAMAccountNames, one per line
  ldbsearch -H "$SAM" -b "$USERS_DN" '(sAMAccountName=*)' sAMAccountName 2>/dev/null |
    sed -n 's/^sAMAccountName: //p'
}

create_objects() {
  local have u g tmp i n
  have=$(existing_names)
  has() { grep -qxF -- "$1" <<<"$have"; }

  for u in alice bob carol dave svc-gw svc-app svc-rc4; do
    has "$u" || stool user create "$u" "$(password "$u")" >/dev/null || die "user create $u failed"
    stool user setexpiry "$u" --noexpiry >/dev/null || die "setexpiry $u failed"
  done
  stool user setexpiry Administrator --noexpiry >/dev/null || true
  for g in staff sso-users; do
    has "$g" || stool group add "$g" >/dev/null || die "group add $g failed"
  done
  log "users and groups created"

  # Nested membership: bob -> sso-users -> staff. addmembers fails if already a member.
  if ! stool group listmembers staff | grep -qx sso-users; then
    stool group addmembers staff sso-users >/dev/null || die "addmembers staff sso-users failed"
  fi
  if ! stool group listmembers sso-users | grep -qx bob; then
    stool group addmembers sso-users bob >/dev/null || die "addmembers sso-users bob failed"
  fi

  # dave in DAVE_GROUPS groups: one LDIF for the groups, one for the memberships.
  tmp=$(mktemp -d)
  n=0
  for ((i = 1; i <= DAVE_GROUPS; i++)); do
    g=$(printf 'dave-g%03d' "$i")
    has "$g" && continue
    printf 'dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: %s\n\n' "$g" "$USERS_DN" "$g" >>"$tmp/groups.ldif"
    printf 'dn: CN=%s,%s\nchangetype: modify\nadd: member\nmember: CN=dave,%s\n\n' "$g" "$USERS_DN" "$USERS_DN" >>"$tmp/members.ldif"
    n=$((n + 1))
  done
  if [ $n -gt 0 ]; then
    ldbadd -H "$SAM" "$tmp/groups.ldif" >/dev/null || die "ldbadd dave groups failed"
    ldbmodify -H "$SAM" "$tmp/members.ldif" >/dev/null || die "ldbmodify dave memberships failed"
  fi
  log "dave: $n new groups (of $DAVE_GROUPS)"

  # Service accounts: SPNs and allowed ticket encryption types.
  spn() { # SPN USER
    stool spn list "$2" 2>/dev/null | grep -qiF -- "$1" || stool spn add "$1" "$2" >/dev/null || die "spn add $1 $2 failed"
  }
  spn HTTP/sso.example.test svc-gw
  spn HTTP/app.example.test svc-app
  spn HTTP/rc4.example.test svc-rc4
  # 28 = RC4|AES128|AES256, 24 = AES128|AES256, 4 = RC4 only.
  cat >"$tmp/enctypes.ldif" <<EOF
dn: CN=svc-gw,$USERS_DN
changetype: modify
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 28

dn: CN=svc-app,$USERS_DN
changetype: modify
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 24

dn: CN=svc-rc4,$USERS_DN
changetype: modify
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 4

EOF
  ldbmodify -H "$SAM" "$tmp/enctypes.ldif" >/dev/null || die "setting msDS-SupportedEncryptionTypes failed"
  rm -rf "$tmp"
  log "service accounts: SPNs and encryption types set"
}

# The LDAP bind (proxy) account svc-ldap. Runs on every up, also on a domain
# provisioned before it existed: one ldbsearch when it is already there.
ensure_ldap_bind_account() {
  if ! ldbsearch -H "$SAM" -b "$USERS_DN" "(sAMAccountName=$LDAP_BIND_USER)" dn 2>/dev/null | grep -q '^dn: '; then
    stool user create "$LDAP_BIND_USER" "$LDAP_BIND_PASS" \
      --description="kerbgate LDAP bind account (tests)" >/dev/null || die "user create $LDAP_BIND_USER failed"
    stool user setexpiry "$LDAP_BIND_USER" --noexpiry >/dev/null || die "setexpiry $LDAP_BIND_USER failed"
    log "created $LDAP_BIND_USER ($LDAP_BIND_DN)"
  fi
  mkdir -p "$OUT"
  if [ "$(cat "$OUT/$LDAP_BIND_USER.password" 2>/dev/null)" != "$LDAP_BIND_PASS" ]; then
    (umask 077 && printf '%s' "$LDAP_BIND_PASS" >"$OUT/$LDAP_BIND_USER.password.tmp")
    mv -f "$OUT/$LDAP_BIND_USER.password.tmp" "$OUT/$LDAP_BIND_USER.password"
  fi
  chmod 0600 "$OUT/$LDAP_BIND_USER.password"
  printf '%s\n' "$LDAP_BIND_DN" >"$OUT/$LDAP_BIND_USER.dn.tmp"
  mv -f "$OUT/$LDAP_BIND_USER.dn.tmp" "$OUT/$LDAP_BIND_USER.dn"
}

# Kerberos constrained delegation for the application proxy. Runs on every up (a few
# ldbsearch calls when all is in place):
# - svc-gw may use protocol transition (TRUSTED_TO_AUTH_FOR_DELEGATION, S4U2Self
#   tickets are forwardable) and delegate to HTTP/app.example.test (classic KCD,
#   msDS-AllowedToDelegateTo);
# - svc-rbcd owns HTTP/rbcd.example.test and lets svc-gw delegate to it by
#   resource-based constrained delegation (msDS-AllowedToActOnBehalfOfOtherIdentity),
#   with no classic delegation for that SPN.
ensure_delegation() {
  local uac
  uac=$(ldbsearch -H "$SAM" -b "$USERS_DN" '(sAMAccountName=svc-gw)' userAccountControl 2>/dev/null |
    sed -n 's/^userAccountControl: //p')
  if [ -n "$uac" ] && [ $((uac & 0x1000000)) -eq 0 ]; then
    stool delegation for-any-protocol svc-gw on >/dev/null || die "delegation for-any-protocol svc-gw failed"
    log "svc-gw: protocol transition on"
  fi
  if ! ldbsearch -H "$SAM" -b "$USERS_DN" '(sAMAccountName=svc-gw)' msDS-AllowedToDelegateTo 2>/dev/null |
    grep -qi '^msDS-AllowedToDelegateTo: HTTP/app.example.test$'; then
    stool delegation add-service svc-gw HTTP/app.example.test >/dev/null || die "delegation add-service svc-gw failed"
    log "svc-gw: may delegate to HTTP/app.example.test"
  fi
  if ! ldbsearch -H "$SAM" -b "$USERS_DN" '(sAMAccountName=svc-rbcd)' dn 2>/dev/null | grep -q '^dn: '; then
    stool user create svc-rbcd "$(password svc-rbcd)" >/dev/null || die "user create svc-rbcd failed"
    stool user setexpiry svc-rbcd --noexpiry >/dev/null || die "setexpiry svc-rbcd failed"
    stool spn add HTTP/rbcd.example.test svc-rbcd >/dev/null || die "spn add HTTP/rbcd.example.test failed"
    printf 'dn: CN=svc-rbcd,%s\nchangetype: modify\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: 24\n' "$USERS_DN" |
      ldbmodify -H "$SAM" >/dev/null || die "svc-rbcd enctypes failed"
    log "created svc-rbcd (HTTP/rbcd.example.test)"
  fi
  if ! ldbsearch -H "$SAM" -b "$USERS_DN" '(sAMAccountName=svc-rbcd)' msDS-AllowedToActOnBehalfOfOtherIdentity 2>/dev/null |
    grep -q '^msDS-AllowedToActOnBehalfOfOtherIdentity'; then
    stool delegation add-principal svc-rbcd svc-gw >/dev/null || die "delegation add-principal svc-rbcd svc-gw failed"
    log "svc-rbcd: svc-gw may delegate to it (RBCD)"
  fi
}

kinit_user() { # USER CCACHE [KRB5CONF]
  local pw
  pw=$(password "$1") || die "no known password for '$1'"
  KRB5_CONFIG=${3:-$OUT/krb5.conf} KRB5CCNAME="FILE:$2" kinit "$1" <<<"$pw" >/dev/null
}

kdc_answers() {
  local cc=$OUT/ccache-healthcheck i
  for ((i = 0; i < 20; i++)); do
    kinit_user alice "$cc" 2>/dev/null && { rm -f "$cc"; return 0; }
    sleep 0.5
  done
  return 1
}

# Ticket encryption types as MIT sees them: "skey, tkt" for SPN.
ticket_etypes() { # KRB5CONF SPN USER
  local cc=$OUT/ccache-selftest
  rm -f "$cc"
  kinit_user "$3" "$cc" "$1" || die "self-test: kinit $3 (config $1) failed"
  KRB5_CONFIG=$1 KRB5CCNAME=FILE:$cc kvno "$2" >/dev/null || die "self-test: kvno $2 (config $1) failed"
  KRB5_CONFIG=$1 KRB5CCNAME=FILE:$cc klist -e | grep -A1 -F "$2@" | sed -n 's/.*Etype (skey, tkt): //p' | tr -d '\n'
  rm -f "$cc"
}

self_test() {
  local e
  e=$(ticket_etypes "$OUT/krb5.conf" HTTP/sso.example.test alice)
  [[ "$e" == "aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96"* ]] || die "self-test: HTTP/sso default etypes '$e'"
  e=$(ticket_etypes "$OUT/krb5-rc4.conf" HTTP/sso.example.test alice)
  [[ "$e" == *arcfour-hmac*", aes256-cts-hmac-sha1-96"* ]] || die "self-test: HTTP/sso rc4-client etypes '$e'"
  e=$(ticket_etypes "$OUT/krb5.conf" HTTP/rc4.example.test alice)
  [[ "$e" == *arcfour-hmac*", "*arcfour-hmac* ]] || die "self-test: HTTP/rc4 etypes '$e'"
  e=$(ticket_etypes "$OUT/krb5.conf" HTTP/app.example.test bob)
  [[ "$e" == *", aes256-cts-hmac-sha1-96"* ]] || die "self-test: HTTP/app etypes '$e'"
  ticket_etypes "$OUT/krb5.conf" HTTP/sso.example.test dave >/dev/null
  log "self-test passed (aes256 tickets by default, RC4 session key for an RC4-only client, RC4 tickets for HTTP/rc4)"
}

# ---------------------------------------------------------------- subcommands

lock() {
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock -w 900 9 || die "timed out waiting for the lock $DIR.lock"
}

cmd_up() {
  local pid
  ensure_packages
  ensure_hosts
  lock

  if [ -f "$OUT/ready" ] && pid=$(our_pid) && kdc_answers; then
    ensure_ldap_bind_account
    ensure_delegation
    export_keytabs
    write_outputs
    log "up: already running (pid $pid)"
    return 0
  fi

  if [ -e "$DIR" ] && [ ! -f "$OUT/ready" ]; then
    log "$DIR exists without a ready marker: wiping it"
    stop_ours
    rm -rf --one-file-system -- "$DIR"
  elif our_pid >/dev/null; then
    log "samba runs but the KDC does not answer: restarting it"
    stop_ours
  fi
  stop_foreign

  local fresh=false
  if [ ! -f "$OUT/ready" ]; then
    fresh=true
    provision
    create_objects
  fi
  ensure_ldap_bind_account
  start_samba
  write_outputs
  kdc_answers || { log_tail; die "KDC does not answer kinit alice"; }
  ensure_delegation
  export_keytabs
  write_outputs # ca.pem exists once samba has started
  if $fresh; then self_test; fi
  date -u +%FT%TZ >"$OUT/ready"
  log "up: domain $REALM ready (pid $(our_pid)); env in $OUT/env"
}

cmd_down() {
  if our_pid >/dev/null; then
    stop_ours
    log "down: stopped"
  else
    log "down: not running"
  fi
}

cmd_status() {
  local pid
  if pid=$(our_pid); then
    echo "running $pid"
    return 0
  fi
  echo "stopped"
  return 1
}

case "${1:-up}" in
up) cmd_up ;;
down) lock && cmd_down ;;
status) cmd_status ;;
reset)
  lock
  cmd_down
  log "reset: removing $DIR"
  rm -rf --one-file-system -- "$DIR"
  cmd_up
  ;;
kinit)
  [ $# -eq 2 ] || die "usage: realm.sh kinit USER"
  [ -f "$OUT/krb5.conf" ] || die "domain not set up: run realm.sh up"
  kinit_user "$2" "$OUT/ccache-$2" || die "kinit $2 failed"
  echo "$OUT/ccache-$2"
  ;;
export-keytabs)
  lock
  [ -s "$CONF" ] || die "domain not provisioned: run realm.sh up"
  export_keytabs force
  ;;
*)
  echo "usage: $0 [up|down|status|reset|kinit USER|export-keytabs]" >&2
  exit 2
  ;;
esac
