//go:build !linux

package roomlog

import (
	"errors"
	"os"
)

var pageSize = os.Getpagesize()

// mapFile is not used here: the log writes its records.
func mapFile(*os.File, int64, int) ([]byte, error) { return nil, errors.ErrUnsupported }

// unmapFile has nothing to end here.
func unmapFile([]byte) error { return nil }

// populateWrite is not used here: there is no mapping.
func populateWrite([]byte) error { return errors.ErrUnsupported }
