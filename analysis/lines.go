package analysis

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// eachLine calls fn with each line of the file name, without its newline,
// `docker-compose logs` prefix and colour codes, valid until fn returns; a
// line longer than maxLineBytes comes empty (a bad line). fn returns false
// to stop.
func eachLine(name string, p *progress, fn func(line []byte) bool) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	var long []byte
	var n, lines int64 // not yet added to p
	flush := func() {
		p.done.Add(n)
		p.lines.Add(lines)
		n, lines = 0, 0
	}
	defer flush()
	for {
		line, err := readLine(br, &long)
		if len(line) == 0 && err != nil {
			if !errors.Is(err, io.EOF) {
				return errors.Join(fmt.Errorf("read %s: %w", name, err), f.Close())
			}
			break
		}
		n += int64(len(line))
		if lines++; lines == 4096 {
			flush()
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(line) > maxLineBytes {
			line = line[:0]
		}
		if !fn(stripPrefix(line)) {
			break
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// scanLines calls fn with every line of each file, a goroutine per core;
// fn gets the file's index and must only touch that file's state. It stops
// with ctx's error when ctx ends.
func scanLines(ctx context.Context, files []string, p *progress, fn func(file int, line []byte)) error {
	g, ctx := errgroup.WithContext(ctx) // one file's error stops the others
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, name := range files {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := 0
			err := eachLine(name, p, func(line []byte) bool {
				fn(i, line)
				n++
				return n&0xfff != 0 || ctx.Err() == nil
			})
			return cmp.Or(err, ctx.Err())
		})
	}
	return g.Wait()
}

// maxLineBytes is the longest line parsed; a longer one is a bad line.
const maxLineBytes = 16 << 20

// readLine returns the next line of br with its newline, as a slice of br's
// buffer or of *long, valid until the next call. Of a line longer than
// maxLineBytes only a part (still too long) is kept, so memory stays
// bounded.
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
