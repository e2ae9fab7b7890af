//go:build !race

package keyset

const raceEnabled = false
