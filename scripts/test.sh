#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian 12 machine, as root:
# installs what it needs, brings up the Samba AD test domain, runs every test
# (integration tests against the real domain never skip) and a short fuzz pass.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "test domain"
bash testrealm/realm.sh up

step "test OpenID provider (npm oidc-provider) and relying party (npm openid-client)"
(cd testrealm/oidc && npm ci --no-audit --no-fund)
(cd testrealm/oidcclient && npm ci --no-audit --no-fund)

export PATH=$PATH:/usr/local/go/bin
step "go vet"
go vet ./...
test -z "$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: files above need formatting" >&2; exit 1; }

step "go test"
go test -count=1 -timeout 40m ./...

# A short run of every fuzz target on its seed corpus plus fresh inputs; the long
# runs (FUZZTIME=10m ./scripts/fuzz.sh) are recorded in docs/measurements.md.
step "fuzz (smoke, ${FUZZTIME:=20s} each)"
FUZZTIME=$FUZZTIME FUZZJOBS=1 ./scripts/fuzz.sh

step "all tests passed"
