//go:build race

package keyset

// raceEnabled: the race detector makes sync.Pool drop items, so allocations are not counted.
const raceEnabled = true
