package analysis

import (
	"bufio"
	"bytes"
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
// and "-") into a list of files. Standard input is copied to a temporary
// file, removed by the returned cleanup, because the analysis reads twice.
// Progress lines about the spooling go to progressW (nil: none).
func expandInputs(args []string, stdin io.Reader, progressW io.Writer) (files []string, cleanup func(), err error) {
	cleanup = func() {}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, a := range args {
		if a == "-" {
			tmp, err := os.CreateTemp("", "analysis-stdin-*.log")
			if err != nil {
				return nil, cleanup, fmt.Errorf("spool standard input: %w", err)
			}
			name := tmp.Name()
			cleanup = func() { os.Remove(name) }
			_, cerr := io.Copy(&spoolProgress{w: tmp, progress: progressW, last: time.Now()}, stdin)
			if err := errors.Join(cerr, tmp.Close()); err != nil {
				return nil, cleanup, fmt.Errorf("spool standard input: %w", err)
			}
			add(name)
			continue
		}
		matches := []string{a}
		if strings.ContainsAny(a, "*?[") {
			if matches, err = filepath.Glob(a); err != nil {
				return nil, cleanup, fmt.Errorf("input %q: %w", a, err)
			}
			if len(matches) == 0 {
				return nil, cleanup, fmt.Errorf("input %q matches no file", a)
			}
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil {
				return nil, cleanup, fmt.Errorf("input: %w", err)
			}
			if !st.IsDir() {
				add(m)
				continue
			}
			var inDir []string
			err = filepath.WalkDir(m, func(p string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && (strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".jsonl")) {
					inDir = append(inDir, p)
				}
				return nil
			})
			if err != nil {
				return nil, cleanup, fmt.Errorf("input %s: %w", m, err)
			}
			sort.Strings(inDir)
			for _, p := range inDir {
				add(p)
			}
		}
	}
	if len(files) == 0 {
		return nil, cleanup, errors.New("no input: give log files, directories, globs or - for standard input")
	}
	return files, cleanup, nil
}

// spoolProgress counts what is copied from standard input and prints a
// progress line at most every two seconds.
type spoolProgress struct {
	w        io.Writer
	progress io.Writer
	n        int64
	last     time.Time
}

func (s *spoolProgress) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	s.n += int64(n)
	if s.progress != nil {
		if now := time.Now(); now.Sub(s.last) >= 2*time.Second {
			s.last = now
			fmt.Fprintf(s.progress, "analysis: reading standard input: %.0f MB so far\n", float64(s.n)/1e6)
		}
	}
	return n, err
}

// progress prints a line on stderr at most every two seconds.
type progress struct {
	w     io.Writer
	total int64
	done  int64
	lines int64
	last  time.Time
	pass  string
}

func (p *progress) add(bytes int64) {
	p.done += bytes
	p.lines++
	if p.w == nil || p.lines&0xffff != 0 {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 2*time.Second {
		p.last = now
		fmt.Fprintf(p.w, "analysis: %s: %d lines, %.0f of %.0f MB (%.0f%%)\n", p.pass, p.lines,
			float64(p.done)/1e6, float64(p.total)/1e6, 100*float64(p.done)/float64(max(p.total, 1)))
	}
}

// batch is a run of lines parsed by the reading goroutine; recs point into buf.
type batch struct {
	buf  []byte
	ends []int
	recs []rec
	ok   []bool
	err  error
}

const batchLines = 4096

// eachLine reads every line of every file, removes any `docker-compose logs`
// prefix and colour codes, parses it, and calls fn with the parsed record
// (ok false for a bad line). Reading and parsing run on one goroutine and fn
// on the caller's, so the two cores share the work. With only set, lines
// that do not contain it are not parsed (ok false).
func eachLine(files []string, p *progress, only []byte, fn func(r *rec, ok bool)) error {
	full := make(chan *batch, 2)
	free := make(chan *batch, 3)
	for i := 0; i < 3; i++ {
		free <- &batch{recs: make([]rec, batchLines), ok: make([]bool, batchLines)}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(full)
		b := <-free
		b.buf, b.ends = b.buf[:0], b.ends[:0]
		var long []byte
		send := func() bool {
			for i := range b.ends {
				start := 0
				if i > 0 {
					start = b.ends[i-1]
				}
				line := b.buf[start:b.ends[i]]
				b.ok[i] = (only == nil || bytes.Contains(line, only)) && parseRec(line, &b.recs[i])
			}
			select {
			case full <- b:
			case <-done:
				return false
			}
			select {
			case b = <-free:
			case <-done:
				return false
			}
			b.buf, b.ends, b.err = b.buf[:0], b.ends[:0], nil
			return true
		}
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				b.err = fmt.Errorf("input: %w", err)
				send()
				return
			}
			br := bufio.NewReaderSize(f, 1<<20)
			for {
				line, rerr := readLine(br, &long)
				if len(line) > 0 || rerr == nil {
					p.add(int64(len(line)))
					if n := len(line); n > 0 && line[n-1] == '\n' {
						line = line[:n-1]
					}
					if len(line) > maxLineBytes {
						line = nil // too long: an empty line counts as a bad line
					}
					b.buf = append(b.buf, stripPrefix(line)...)
					b.ends = append(b.ends, len(b.buf))
					if len(b.ends) == batchLines && !send() {
						f.Close()
						return
					}
				}
				if rerr != nil {
					err = rerr
					break
				}
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				b.err = fmt.Errorf("read %s: %w", name, err)
				send()
				return
			}
		}
		if len(b.ends) > 0 {
			send()
		}
	}()
	for b := range full {
		for i := range b.ends {
			fn(&b.recs[i], b.ok[i])
		}
		if b.err != nil {
			return b.err
		}
		free <- b
	}
	return nil
}

// maxLineBytes is the longest line parsed; a longer one is a bad line.
const maxLineBytes = 16 << 20

// readLine returns the next line of br with its newline (none at the end of
// the input), as a slice of br's buffer or of *long, valid until the next
// call. A line longer than maxLineBytes is returned only in part (more than
// maxLineBytes of it) and the rest is skipped, so memory stays bounded.
func readLine(br *bufio.Reader, long *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	*long = append((*long)[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		if len(*long) <= maxLineBytes {
			*long = append(*long, line...)
		}
	}
	return *long, err
}

// stripPrefix removes ANSI colour codes and a `docker-compose logs` prefix
// ("alice_1  | " or with --timestamps "alice_1  | 2026-...Z ") before the JSON.
func stripPrefix(line []byte) []byte {
	if len(line) > 0 && line[0] == '{' {
		return line
	}
	if bytes.IndexByte(line, 0x1b) >= 0 {
		line = stripANSI(line)
	}
	if i := bytes.Index(line, []byte("| ")); i >= 0 {
		if j := bytes.IndexByte(line[i:], '{'); j >= 0 {
			return line[i+j:]
		}
	}
	return line
}

func stripANSI(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '[' {
			j := i + 2
			for j < len(b) && (b[j] < '@' || b[j] > '~') {
				j++
			}
			i = j
			continue
		}
		out = append(out, b[i])
	}
	return out
}
