#!/usr/bin/env bash
# Go micro-benchmarks before and after, side by side in one run:
#
#   scripts/benchcmp.sh REV PKG BENCH [COUNT]
#   scripts/benchcmp.sh 8c4a633 ./internal/forwardauth AuthWithCookie 6
#
# builds PKG's test binary at REV (a temporary git worktree) and from the working
# tree, runs the two alternately COUNT times (so a load that comes and goes on a
# shared machine hits both alike), and prints each benchmark's median ns/op, B/op
# and allocs/op, before and after, with the ratio. The benchmark must exist at REV.
set -euo pipefail
rev=${1:?REV}; pkg=${2:?PKG}; bench=${3:?BENCH}; count=${4:-6}
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach "$tmp/base" "$rev" >/dev/null 2>&1
(cd "$tmp/base" && go test -c -o "$tmp/before.test" "$pkg")
go test -c -o "$tmp/after.test" "$pkg"
dir=$(go list -f '{{.Dir}}' "$pkg")
for i in $(seq "$count"); do
	for side in before after; do
		(cd "$dir" && "$tmp/$side.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.count 1) |
			awk -v side="$side" '/^Benchmark/ { print side, $0 }' >>"$tmp/results"
	done
done
awk -v rev="$rev" '
function median(key,   n, i, j, t, v) {
	n = split(vals[key], v, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
	side = $1; name = $2; sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++names] = name }
	for (i = 4; i < NF; i++) vals[side SUBSEP name SUBSEP $(i + 1)] = vals[side SUBSEP name SUBSEP $(i + 1)] " " $i
	runs[side SUBSEP name]++
}
END {
	printf "| benchmark (median of %d runs each, alternating) | ns/op %s | ns/op now | now/%s | B/op %s → now | allocs/op %s → now |\n", runs["after" SUBSEP order[1]], rev, rev, rev, rev
	print "|---|---|---|---|---|---|"
	for (k = 1; k <= names; k++) {
		n = order[k]
		b = median("before" SUBSEP n SUBSEP "ns/op"); a = median("after" SUBSEP n SUBSEP "ns/op")
		printf "| %s | %.0f | %.0f | %.2f | %.0f → %.0f | %.0f → %.0f |\n", n, b, a, (b > 0 ? a / b : 0),
			median("before" SUBSEP n SUBSEP "B/op"), median("after" SUBSEP n SUBSEP "B/op"),
			median("before" SUBSEP n SUBSEP "allocs/op"), median("after" SUBSEP n SUBSEP "allocs/op")
	}
}' "$tmp/results"
