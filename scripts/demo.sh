#!/usr/bin/env bash
# kerbgate demo, from a fresh clone on a fresh Debian 12 machine, as root: provisions
# the Samba AD test domain (EXAMPLE.TEST on loopback), starts kerbgate with the
# exported keytab and signs in for real with curl and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
PORT=${KERBGATE_DEMO_PORT:-8088}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Test domain (Samba AD DC on 127.0.0.1)"
bash testrealm/realm.sh up
# shellcheck disable=SC1091
set -a
. "${KERBGATE_REALM_DIR:-/var/lib/kerbgate-testrealm}/out/env"
set +a

say "2. Build kerbgate and the example application"
go build -o bin/kerbgate ./cmd/kerbgate
go build -o bin/ssoapp ./examples/ssoapp
bin/kerbgate version

WORK=$(mktemp -d /tmp/kerbgate-demo.XXXXXX)
APP_PORT=${KERBGATE_DEMO_APP_PORT:-9090}
# The example application's client secret, and its hash for kerbgate's configuration.
bin/kerbgate hash-secret --generate >"$WORK/app-secret"
APP_SECRET=$(awk '/^client_secret:/{print $2}' "$WORK/app-secret")
APP_HASH=$(awk '/^secret_hash:/{print $2}' "$WORK/app-secret")
cat >"$WORK/kerbgate.yaml" <<YAML
listen:
  address: 127.0.0.1:$PORT
kerberos:
  realm: EXAMPLE.TEST
  keytabs: [$KERBGATE_REALM_DIR/out/svc-gw.keytab]
  spns: [HTTP/sso.example.test]
directory:
  url: ldaps://dc1.example.test
  ca_file: $KERBGATE_REALM_DIR/out/ca.pem
  tls_legacy_cn: true          # Samba's certificate names the DC only in its CN
  base_dn: DC=example,DC=test
  bind:
    method: simple
    dn: $KERBGATE_LDAP_BIND_DN
    password_file: $KERBGATE_LDAP_BIND_PASSWORD_FILE
store:
  path: $WORK/kerbgate.db
sso:
  apps:
    - id: demo
      redirect_uris: [http://app.example.test:$APP_PORT/callback]
      secret_hash: '$APP_HASH'
    - id: staff-only
      redirect_uris: [http://app.example.test:$((APP_PORT+1))/callback]
      secret_hash: '$APP_HASH'
      allowed_groups: [staff]
log:
  format: text
  expose_reasons: true
YAML
say "3. Configuration ($WORK/kerbgate.yaml)"
cat "$WORK/kerbgate.yaml"
bin/kerbgate check-config --config "$WORK/kerbgate.yaml"
say "3b. kerbgate doctor: the configuration checked against the real domain"
bin/kerbgate doctor --config "$WORK/kerbgate.yaml" --user alice --dns 127.0.0.1:53 | sed 's/^/   /'

say "4. Start kerbgate serve"
bin/kerbgate serve --config "$WORK/kerbgate.yaml" 2>"$WORK/kerbgate.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
URL="http://sso.example.test:$PORT/whoami"

say "5. No Kerberos ticket: kerbgate challenges (401 WWW-Authenticate: Negotiate)"
curl -sS -i "$URL" | sed 's/^/   /'

say "6. alice signs in with her Windows (Kerberos) credentials: curl --negotiate"
CC=$(bash testrealm/realm.sh kinit alice)
KRB5CCNAME=$CC curl -sS --negotiate -u : "$URL" | sed 's/^/   /'

say "7. bob, member of sso-users, itself member of staff (nested groups from the PAC)"
CC=$(bash testrealm/realm.sh kinit bob)
KRB5CCNAME=$CC curl -sS --negotiate -u : "$URL" | sed 's/^/   /'
echo "   staff = $(samba-tool group show staff -s "$KERBGATE_REALM_DIR/etc/smb.conf" --attributes=objectSid | awk '/^objectSid/{print $2}')"

say "8. The same sign-in in headless Chromium (as alice)"
CC=$(bash testrealm/realm.sh kinit alice)
PROFILE="$WORK/chromium"
mkdir -p "$PROFILE"
echo '{"net":{"received_http_auth_negotiate_headers":true}}' >"$PROFILE/Local State"
KRB5CCNAME=$CC timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --auth-server-allowlist='*.example.test' --dump-dom "$URL" 2>/dev/null |
  sed -e 's/<[^>]*>//g' -e '/^$/d' -e 's/^/   /'

say "9. A ticket for another service (HTTP/app.example.test) is refused with a reason"
KRB5CCNAME=$CC curl -sS --negotiate -u : -i "http://app.example.test:$PORT/whoami" | sed 's/^/   /'

say "10. The handoff (ssoToken) flow: example app -> kerbgate -> back to the app, in Chromium"
SSOAPP_SECRET=$APP_SECRET bin/ssoapp --listen 127.0.0.1:$APP_PORT --kerbgate "http://sso.example.test:$PORT" \
  --kerbgate-backend "http://127.0.0.1:$PORT" --app-id demo --public-url "http://app.example.test:$APP_PORT" 2>"$WORK/ssoapp.log" &
APP_PID=$!
SSOAPP_SECRET=$APP_SECRET bin/ssoapp --listen 127.0.0.1:$((APP_PORT+1)) --kerbgate "http://sso.example.test:$PORT" \
  --kerbgate-backend "http://127.0.0.1:$PORT" --app-id staff-only --public-url "http://app.example.test:$((APP_PORT+1))" 2>>"$WORK/ssoapp.log" &
APP2_PID=$!
trap 'kill $PID $APP_PID $APP2_PID 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$APP_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
browse() { # CCACHE URL
  local p; p=$(mktemp -d "$WORK/chromium.XXXX")
  echo '{"net":{"received_http_auth_negotiate_headers":true}}' >"$p/Local State"
  KRB5CCNAME=$1 timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$p" --auth-server-allowlist='*.example.test' --dump-dom "$2" 2>/dev/null |
    sed -e 's/<[^>]*>/ /g' -e 's/  */ /g' -e '/^ *$/d' -e 's/^/   /' | head -12
}
echo "   -- alice opens the demo app and clicks 'Sign in with Windows':"
browse "$CC" "http://app.example.test:$APP_PORT/login"
echo "   -- alice opens the staff-only app (she is not in staff):"
browse "$CC" "http://app.example.test:$((APP_PORT+1))/login"
echo "   -- bob opens the staff-only app (staff through sso-users):"
browse "$(bash testrealm/realm.sh kinit bob)" "http://app.example.test:$((APP_PORT+1))/login"

say "11. kerbgate's log of the refusals"
grep -i 'refused' "$WORK/kerbgate.log" | sed 's/^/   /' || true
say "Done. Metrics: curl http://127.0.0.1:$PORT/metrics (kerbgate_refusals_total, kerbgate_signins_total)"
