//go:build !unix

package broker

// openFileLimit is unknown on this system.
func openFileLimit() uint64 { return 0 }
