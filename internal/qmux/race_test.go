//go:build race

package qmux

// raceEnabled reports a -race build, which makes the bulk-transfer test use less data.
const raceEnabled = true
