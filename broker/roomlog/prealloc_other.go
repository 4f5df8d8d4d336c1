//go:build !linux

package roomlog

import (
	"errors"
	"os"
)

// datasync is fsync where fdatasync is not available.
func datasync(f *os.File) error { return f.Sync() }

// allocate is not supported here: the log grows by its writes.
func allocate(*os.File, int64) error { return errors.ErrUnsupported }
