package model

import (
	lib "github.com/sugarme/gotch/libtch"
)

// SetThreads sets libtorch's intra-op thread count (n <= 0 leaves the default: one per core).
func SetThreads(n int) {
	if n > 0 {
		lib.AtSetNumThreads(n)
	}
}

// Threads returns libtorch's intra-op thread count.
func Threads() int { return lib.AtGetNumThreads() }

// Seed seeds libtorch's default CPU generator (weight initialisation, dropout).
func Seed(seed int64) { lib.AtManualSeed(seed) }
