//go:build unix

package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes an exclusive lock (flock, which dies with the process) on
// user's state in dir until release. A state dir is one device: two nodes
// on it would share a client id and kick each other off in a loop.
func Lock(dir, user string) (release func() error, err error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "chatnode-"+user+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			err = fmt.Errorf("state dir %s is in use by another chatnode of %s (each device needs its own -state dir)", dir, user)
		} else {
			err = fmt.Errorf("lock state %s: %w", path, err)
		}
		return nil, errors.Join(err, f.Close())
	}
	return f.Close, nil // closing the file releases the lock
}
