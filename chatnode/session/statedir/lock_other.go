//go:build !unix

package statedir

// Lock does nothing where flock is missing: there, two nodes on one
// state dir take its client id from each other (see the unix version).
func Lock(dir, user string) (release func() error, err error) {
	return func() error { return nil }, nil
}
