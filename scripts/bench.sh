#!/usr/bin/env bash
# The side-by-side benchmarks, from a fresh clone on a fresh Debian 12 machine, as
# root: brings up the test domain, then runs in one process Apache httpd +
# mod_auth_gssapi and kerbgate with the same keytab and SPN and the same load against
# each (alternating rounds), forward-auth against the floor, nginx alone and Apache,
# the application proxy's KCD route against passthrough, the farm's replay caches,
# the password fallback (sign-ins and an attack), the OpenID Provider's code flows
# against npm oidc-provider, the farm on Redis with replicas (Sentinel and Cluster,
# with and without replica acknowledgements), and the accept-path micro-benchmarks.
# The failover matrix under load is scripts/bench-redis-ha.sh (about five minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
step() { printf '\n== %s\n' "$*" >&2; }

step "test domain"
bash testrealm/realm.sh up

step "Negotiate: Apache mod_auth_gssapi vs kerbgate (16 connections, a fresh authenticator per request)"
go test -run '^$' -bench Compare -benchtime 1x ./internal/server | grep -v '^goos\|^goarch\|^pkg\|^cpu'

# KERBGATE_BENCH_BASELINE=REV adds kerbgate at REV beside this tree (cookie hot path and floor).
step "Forward-auth: session cookie vs /healthz floor, nginx + kerbgate vs nginx alone, fresh Negotiate through nginx vs Apache mod_auth_gssapi (16 connections)"
go test -run '^$' -bench ForwardAuth -benchtime 1x ./internal/server | grep -v '^goos\|^goarch\|^pkg\|^cpu'

step "Application proxy: KCD route vs passthrough (32 connections)"
go test -run '^$' -bench ProxyKCD -benchtime 10000x ./internal/server | grep Benchmark

step "Farm: in-memory vs Redis replay cache, one node and three behind HAProxy"
go test -run '^$' -bench FarmNegotiate -benchtime 10000x ./internal/server | grep Benchmark

step "Password fallback: form sign-ins vs the bare AS exchanges vs Negotiate; 10,000 parallel wrong passwords (memory, AS exchanges reaching the KDC)"
go test -run '^$' -bench PasswordSignIn -benchtime 1x ./internal/server | grep -v '^goos\|^goarch\|^pkg\|^cpu'

step "OpenID Provider: code flows (kerbgate with Redis and bbolt vs npm oidc-provider), JWKS and userinfo vs the floor"
go test -run '^$' -bench OIDCProvider -benchtime 1x -timeout 20m ./internal/server | grep -v '^goos\|^goarch\|^pkg\|^cpu'
go test -run '^$' -bench 'IDTokenSigning|TokenCrypto' -benchmem ./internal/oidcprovider | grep Benchmark

step "Farm on Redis with replicas: one Redis vs Sentinel vs Cluster, with and without replica acks"
go test -run '^$' -bench RedisHAThroughput -benchtime 20000x ./internal/server | grep -v '^goos\|^goarch\|^pkg\|^cpu\|^Benchmark\|^PASS\|^ok'

step "Accept path and PAC decoding (micro-benchmarks)"
go test -run '^$' -bench 'Accept|Gokrb5' -benchtime 20000x ./internal/krb/acceptor | grep Benchmark
go test -run '^$' -bench Parse -benchmem ./internal/krb/pac | grep Benchmark
