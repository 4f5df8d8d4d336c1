package analysis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// lineReader yields the lines of one file without their newline, with any
// `docker-compose logs` prefix and colour codes removed; a line longer than
// maxLineBytes comes back empty (a bad line).
type lineReader struct {
	name         string
	f            *os.File
	br           *bufio.Reader
	long         []byte
	p            *progress
	bytes, lines int64 // not yet added to p
}

func openLines(name string, p *progress) (*lineReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return &lineReader{name: name, f: f, br: bufio.NewReaderSize(f, 1<<20), p: p}, nil
}

// next returns the next line, valid until the following call; io.EOF at
// the end.
func (lr *lineReader) next() ([]byte, error) {
	line, err := readLine(lr.br, &lr.long)
	if len(line) == 0 && err != nil {
		lr.flush()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read %s: %w", lr.name, err)
	}
	lr.bytes += int64(len(line))
	if lr.lines++; lr.lines == 4096 {
		lr.flush()
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if len(line) > maxLineBytes {
		line = line[:0]
	}
	return stripPrefix(line), nil
}

// flush adds the counts to the progress.
func (lr *lineReader) flush() {
	lr.p.done.Add(lr.bytes)
	lr.p.lines.Add(lr.lines)
	lr.bytes, lr.lines = 0, 0
}

func (lr *lineReader) close() error {
	if err := lr.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", lr.name, err)
	}
	return nil
}

// scanLines calls fn with every line of each file, the files shared among
// as many goroutines as there are cores (the cheap first pass); fn gets the
// file's index and must only touch that file's state. It stops early, with
// ctx's error, when ctx ends.
func scanLines(ctx context.Context, files []string, p *progress, fn func(file int, line []byte)) error {
	g, ctx := errgroup.WithContext(ctx) // one file's error stops the others
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, name := range files {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			lr, err := openLines(name, p)
			if err != nil {
				return err
			}
			for n := 1; ; n++ {
				line, err := lr.next()
				if err == nil && n&0xfff == 0 {
					err = ctx.Err()
				}
				if err != nil {
					cerr := lr.close()
					if !errors.Is(err, io.EOF) {
						return err
					}
					return cerr
				}
				fn(i, line)
			}
		})
	}
	return g.Wait()
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
