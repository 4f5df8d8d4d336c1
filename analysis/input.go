package analysis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// expandInputs turns the command line's inputs (files, directories, globs
// and "-") into a list of files. Standard input, and any input that is not
// a regular file (a named pipe, bash's <(...)), is copied to a temporary
// file, removed by the returned cleanup, because the analysis reads twice.
// Progress lines about the spooling go to progressW (nil: none). The
// copying stops with ctx's error when ctx ends, also while it waits for a
// pipe's writer.
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
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() {
		return in.addFile(path, st)
	}
	logs, err := dirLogs(path)
	if err != nil {
		return err
	}
	for _, p := range logs {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		if err := in.addFile(p, st); err != nil {
			return err
		}
	}
	return nil
}

// addFile adds a file to read, or a copy of it when it is not a regular
// file (a named pipe: it can be read once only).
func (in *inputSet) addFile(path string, st os.FileInfo) error {
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
// first: opening a named pipe waits for a writer, for ever if none comes,
// so the open happens on a goroutine of its own, which closes the file
// itself if it opens it after ctx has ended.
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

// copyCtx copies r to w until r ends or ctx does. A read from a pipe does
// not see ctx and may wait for its writer for ever, so the reads happen on
// a goroutine of their own and copyCtx returns as soon as ctx ends; that
// goroutine then ends with the read it is blocked in (closing r, or the
// process exiting, ends it). Only copyCtx writes to w.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) error {
	type chunk struct {
		b   []byte
		err error
	}
	const bufs, bufSize = 2, 1 << 20
	chunks := make(chan chunk)
	free := make(chan []byte, bufs)
	for range bufs {
		free <- make([]byte, bufSize)
	}
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-quit:
				return
			}
			n, err := r.Read(buf)
			select {
			case chunks <- chunk{buf[:n], err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		if err := ctx.Err(); err != nil { // before a chunk that is ready too
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-chunks:
			if len(c.b) > 0 {
				if _, err := w.Write(c.b); err != nil {
					return err
				}
			}
			if errors.Is(c.err, io.EOF) {
				return nil
			}
			if c.err != nil {
				return c.err
			}
			free <- c.b[:cap(c.b)]
		}
	}
}

// spoolProgress counts what is copied from an input being spooled and
// prints a progress line at most every two seconds.
type spoolProgress struct {
	w        io.Writer
	progress io.Writer
	what     string
	n        int64
	last     time.Time
}

func (s *spoolProgress) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	s.n += int64(n)
	if s.progress != nil {
		if now := time.Now(); now.Sub(s.last) >= 2*time.Second {
			s.last = now
			fmt.Fprintf(s.progress, "analysis: reading %s: %.0f MB so far\n", s.what, float64(s.n)/1e6)
		}
	}
	return n, err
}

// progress reports a pass' headway on stderr every two seconds. Readers
// add to it from their goroutines; a goroutine of its own prints.
type progress struct {
	w     io.Writer
	total int64
	done  atomic.Int64
	lines atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// start begins a pass; end must follow.
func (p *progress) start(pass stage) {
	p.done.Store(0)
	p.lines.Store(0)
	if p.w == nil {
		return
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				done := p.done.Load()
				fmt.Fprintf(p.w, "analysis: %s: %d lines, %.0f of %.0f MB (%.0f%%)\n", pass, p.lines.Load(),
					float64(done)/1e6, float64(p.total)/1e6, 100*float64(done)/float64(max(p.total, 1)))
			}
		}
	}()
}

// end stops the pass' progress lines.
func (p *progress) end() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
}

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

// batch is a run of lines parsed by a file's reading goroutine; recs point
// into buf.
type batch struct {
	buf  []byte
	ends []int
	recs []rec
	ok   []bool
	ts   []int64 // the time each line is merged by
	err  error
}

// batchLines is the most lines in a batch; inputs merged together share
// about batchBudget lines of buffers.
const (
	batchLines  = 2048
	batchBudget = 16384
)

// input is one file being read and parsed by its own goroutine.
type input struct {
	full, free chan *batch
	cur        *batch
	i          int
	c          cursor
	file       int // index in mergeLines' files
}

// mergeLines reads every file on a goroutine of its own, parses its lines,
// and calls fn with them (ok false for a bad line) in the order of their
// time stamps across the files: a node's log is in time order, so merging
// the nodes' logs by time keeps a message's "sent" and "received" lines
// close together, and the messages in flight are all that must be held. A
// line without a time stamp keeps its place in its file. fn returns false
// to stop; done(i) is called when files[i] has been read to its end.
func mergeLines(files []string, p *progress, fn func(r *rec, ok bool, c *cursor) bool, done func(i int)) error {
	stop := make(chan struct{})
	defer close(stop)
	ins := make([]*input, 0, len(files))
	size := min(max(batchBudget/max(len(files), 1), 256), batchLines)
	for _, name := range files {
		in := &input{full: make(chan *batch, 2), free: make(chan *batch, 3)}
		for i := 0; i < 3; i++ {
			in.free <- &batch{recs: make([]rec, size), ok: make([]bool, size), ts: make([]int64, size)}
		}
		in.file = len(ins)
		go readInput(name, in, p, stop)
		ins = append(ins, in)
	}
	active := ins[:0]
	for _, in := range ins {
		ok, err := in.advance()
		if err != nil {
			return err
		}
		if ok {
			active = append(active, in)
		} else {
			done(in.file)
		}
	}
	for len(active) > 0 {
		// The input whose next line is earliest goes on up to the next
		// input's time.
		best, next := 0, int64(math.MaxInt64)
		for j := 1; j < len(active); j++ {
			if t := active[j].cur.ts[active[j].i]; t < active[best].cur.ts[active[best].i] {
				best = j
			}
		}
		for j, in := range active {
			if j != best {
				next = min(next, in.cur.ts[in.i])
			}
		}
		in := active[best]
		b := in.cur
		for in.i < len(b.ends) && b.ts[in.i] <= next {
			if !fn(&b.recs[in.i], b.ok[in.i], &in.c) {
				return nil
			}
			in.i++
		}
		if in.i == len(b.ends) {
			ok, err := in.advance()
			if err != nil {
				return err
			}
			if !ok {
				active = append(active[:best], active[best+1:]...)
				done(in.file)
			}
		}
	}
	return nil
}

// advance loads the next batch of in; false when in is finished.
func (in *input) advance() (bool, error) {
	if in.cur != nil {
		in.free <- in.cur
		in.cur = nil
	}
	for b := range in.full {
		if b.err != nil {
			return false, b.err
		}
		if len(b.ends) == 0 {
			in.free <- b
			continue
		}
		in.cur, in.i = b, 0
		return true, nil
	}
	return false, nil
}

// readInput reads and parses one file into batches for mergeLines.
func readInput(name string, in *input, p *progress, done <-chan struct{}) {
	defer close(in.full)
	var b *batch
	select {
	case b = <-in.free:
	case <-done:
		return
	}
	var lastTS int64
	send := func() bool {
		for i := range b.ends {
			start := 0
			if i > 0 {
				start = b.ends[i-1]
			}
			b.ok[i] = parseRec(b.buf[start:b.ends[i]], &b.recs[i])
			if b.ok[i] && b.recs[i].tsNS != 0 {
				lastTS = b.recs[i].tsNS
			}
			b.ts[i] = lastTS
		}
		select {
		case in.full <- b:
		case <-done:
			return false
		}
		if b.err != nil {
			return false
		}
		select {
		case b = <-in.free:
		case <-done:
			return false
		}
		b.buf, b.ends, b.err = b.buf[:0], b.ends[:0], nil
		return true
	}
	b.buf, b.ends = b.buf[:0], b.ends[:0]
	lr, err := openLines(name, p)
	if err != nil {
		b.err = err
		send()
		return
	}
	for {
		line, err := lr.next()
		if err != nil {
			if cerr := lr.close(); errors.Is(err, io.EOF) {
				err = cerr
			}
			if err != nil && len(b.ends) > 0 && !send() { // the lines read before the error first
				return
			}
			b.err = err
			send()
			return
		}
		b.buf = append(b.buf, line...)
		b.ends = append(b.ends, len(b.buf))
		if len(b.ends) == len(b.recs) && !send() {
			lr.close()
			return
		}
	}
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
