#!/usr/bin/env bash
# The farm's shared state on Redis with replicas, measured (figures in docs/farm.md),
# from a fresh clone on a fresh Debian 12 machine, as root. Brings up the test domain,
# then, with real redis-server and redis-sentinel processes on loopback:
#  0. the cost of waiting for replicas per store operation (replay check; token
#     issue + redeem), one caller and eight, same stores as below;
#  1. throughput of one kerbgate node, side by side in one run: one Redis, Sentinel
#     (1 primary, 2 replicas) with min_replica_acks 0, 1 and 2, and a Cluster
#     (3 primaries, 3 replicas) with 0 and 1 — sign-ins and handoffs;
#  2. the failover matrix under load (about five minutes): two kerbgate nodes, four
#     clients signing in, handing off and going through the KCD proxy, while the
#     primary is killed (SIGKILL), restarted, stopped past the failure detection
#     (SIGSTOP) and continued, and 100 slots of the Cluster migrate; one line per
#     fault with the requests failed, the time to recover, tokens and sessions lost,
#     replays accepted and p99 before, during and after.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
step() { printf '\n== %s\n' "$*" >&2; }

step "test domain"
bash testrealm/realm.sh up

step "Store operations: one Redis vs Sentinel (0, 1, 2 replica acks) vs Cluster (0, 1)"
go test -run '^$' -bench ReplicaAcks -benchtime "${STOREBENCHTIME:-10000x}" ./internal/store |
  grep -v "^goos\|^goarch\|^pkg\|^cpu"

step "Throughput: one Redis vs Sentinel (0, 1, 2 replica acks) vs Cluster (0, 1), 16 clients"
go test -run '^$' -bench RedisHAThroughput -benchtime "${BENCHTIME:-20000x}" -timeout 30m ./internal/server |
  grep -v '^goos\|^goarch\|^pkg\|^cpu'

step "Failover under load: Sentinel 1+2, Cluster 3+3 and 3+6, min_replica_acks 1"
go test -run '^$' -bench RedisHAFailover -benchtime 1x -timeout 30m ./internal/server |
  grep -v '^goos\|^goarch\|^pkg\|^cpu'
