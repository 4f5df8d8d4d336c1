package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// expandInputs turns the command line's inputs (files, directories, globs
// and "-") into a list of files. Standard input and any input that is not a
// regular file (a pipe) is copied to a temporary file, removed by cleanup,
// because the analysis reads twice. The copying stops when ctx ends.
func expandInputs(ctx context.Context, args []string, stdin io.Reader, progressW io.Writer) (files []string, cleanup func() error, err error) {
	in := &inputSet{ctx: ctx, progress: progressW, seen: map[string]bool{}}
	for _, a := range args {
		if err := ctx.Err(); err != nil {
			return nil, in.cleanup, err
		}
		if a == "-" {
			if err := in.spool(stdin, "standard input"); err != nil {
				return nil, in.cleanup, err
			}
			continue
		}
		matches := []string{a}
		if strings.ContainsAny(a, "*?[") {
			if matches, err = filepath.Glob(a); err != nil {
				return nil, in.cleanup, fmt.Errorf("input %q: %w", a, err)
			}
			if len(matches) == 0 {
				return nil, in.cleanup, fmt.Errorf("input %q matches no file", a)
			}
		}
		for _, m := range matches {
			if err := in.addPath(m); err != nil {
				return nil, in.cleanup, err
			}
		}
	}
	if len(in.files) == 0 {
		return nil, in.cleanup, errors.New("no input: give log files, directories, globs or - for standard input")
	}
	return in.files, in.cleanup, nil
}

// inputSet gathers expandInputs' files and the temporary copies it makes.
type inputSet struct {
	ctx      context.Context
	progress io.Writer
	files    []string
	seen     map[string]bool
	temps    []string // removed by cleanup
}

// add adds a file to read, once.
func (in *inputSet) add(p string) {
	if !in.seen[p] {
		in.seen[p] = true
		in.files = append(in.files, p)
	}
}

// cleanup removes the temporary copies.
func (in *inputSet) cleanup() error {
	var errs []error
	for _, name := range in.temps {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove temporary file: %w", err))
		}
	}
	in.temps = nil
	return errors.Join(errs...)
}

// spool copies r (what is named what) into a temporary file to read.
func (in *inputSet) spool(r io.Reader, what string) error {
	tmp, err := os.CreateTemp("", "analysis-input-*.log")
	if err != nil {
		return fmt.Errorf("spool %s: %w", what, err)
	}
	in.temps = append(in.temps, tmp.Name())
	cerr := copyCtx(in.ctx, &spoolProgress{w: tmp, progress: in.progress, what: what, last: time.Now()}, r)
	if err := errors.Join(cerr, tmp.Close()); err != nil {
		return fmt.Errorf("spool %s: %w", what, err)
	}
	in.add(tmp.Name())
	return nil
}

// addPath adds a file, or the logs in a directory.
func (in *inputSet) addPath(path string) error {
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return in.addFile(path)
	}
	logs, err := dirLogs(path)
	if err != nil {
		return err
	}
	for _, p := range logs {
		if err := in.addFile(p); err != nil {
			return err
		}
	}
	return nil
}

// addFile adds a file to read, or a copy of it when it is not a regular
// file (a named pipe: it can be read once only).
func (in *inputSet) addFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if st.Mode().IsRegular() {
		in.add(path)
		return nil
	}
	f, err := openCtx(in.ctx, path)
	if err != nil {
		return fmt.Errorf("input %s: %w", path, err)
	}
	return errors.Join(in.spool(f, path), f.Close())
}

// dirLogs lists the *.log and *.jsonl files under dir, sorted.
func dirLogs(dir string) ([]string, error) {
	var logs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".jsonl")) {
			logs = append(logs, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", dir, err)
	}
	sort.Strings(logs)
	return logs, nil
}

// openCtx opens path for reading, or returns ctx's error when ctx ends
// first: opening a named pipe waits for a writer, for ever if none comes.
func openCtx(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan opened)
	go func() {
		f, err := os.Open(path)
		select {
		case ch <- opened{f, err}:
		case <-ctx.Done():
			if f != nil {
				f.Close() // read-only and never read: its close error tells nothing
			}
		}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// copyCtx copies r to w until r ends or ctx does. A read from a pipe may
// wait for its writer for ever, so the reads happen on a goroutine that
// ends with the read it is blocked in; copyCtx returns when ctx ends.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	defer pr.Close() // ends the goroutine at its next write
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	defer context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })()
	_, err := io.Copy(w, pr)
	return err
}
