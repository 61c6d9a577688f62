//go:build race

package framing

// raceEnabled: the race detector makes sync.Pool drop items at random, so allocation counts
// mean nothing under it; `make test-alloc` runs those tests without it.
const raceEnabled = true
