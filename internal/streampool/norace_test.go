//go:build !race

package streampool_test

const raceEnabled = false
