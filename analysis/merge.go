package analysis

import (
	"math"
	"slices"
)

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

// input is one file being read and parsed by its own goroutine.
type input struct {
	full, free chan *batch
	cur        *batch
	i          int
	c          cursor
	file       int // index in mergeLines' files
}

// mergeLines parses every file on a goroutine of its own and calls fn with
// the lines (ok false for a bad one) in time stamp order across the files,
// so that a message's "sent" and "received" lines come close together. A
// line without a time stamp keeps its place in its file. fn returns false
// to stop; done(i) is called when files[i] has been read to its end.
func mergeLines(files []string, p *progress, fn func(r *rec, ok bool, c *cursor) bool, done func(i int)) error {
	stop := make(chan struct{})
	defer close(stop)
	active := make([]*input, len(files)) // the inputs not yet read to their end
	size := min(max(batchBudget/max(len(files), 1), 256), batchLines)
	for i, name := range files {
		in := &input{full: make(chan *batch, 2), free: make(chan *batch, 3), file: i}
		for range 3 {
			in.free <- &batch{recs: make([]rec, size), ok: make([]bool, size), ts: make([]int64, size)}
		}
		go readInput(name, in, p, stop)
		active[i] = in
	}
	for {
		// An input whose batch is used up loads its next, or leaves.
		for j := 0; j < len(active); {
			in := active[j]
			if in.cur != nil && in.i < len(in.cur.ends) {
				j++
				continue
			}
			ok, err := in.advance()
			if err != nil {
				return err
			}
			if ok {
				j++
			} else {
				active = slices.Delete(active, j, j+1)
				done(in.file)
			}
		}
		if len(active) == 0 {
			return nil
		}
		// The earliest input goes on up to the next input's time.
		best, next := 0, int64(math.MaxInt64)
		for j := 1; j < len(active); j++ {
			if t, bt := active[j].cur.ts[active[j].i], active[best].cur.ts[active[best].i]; t < bt {
				best, next = j, bt
			} else {
				next = min(next, t)
			}
		}
		in := active[best]
		for b := in.cur; in.i < len(b.ends) && b.ts[in.i] <= next; in.i++ {
			if !fn(&b.recs[in.i], b.ok[in.i], &in.c) {
				return nil
			}
		}
	}
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
	next := func() bool { // takes an empty batch to fill
		select {
		case b = <-in.free:
			b.buf, b.ends, b.err = b.buf[:0], b.ends[:0], nil
			return true
		case <-done:
			return false
		}
	}
	if !next() {
		return
	}
	var lastTS int64
	send := func() bool {
		start := 0
		for i, end := range b.ends {
			b.ok[i] = parseRec(b.buf[start:end], &b.recs[i])
			if b.ok[i] && b.recs[i].tsNS != 0 {
				lastTS = b.recs[i].tsNS
			}
			b.ts[i], start = lastTS, end
		}
		select {
		case in.full <- b:
		case <-done:
			return false
		}
		return b.err == nil && next()
	}
	stopped := false
	err := eachLine(name, p, func(line []byte) bool {
		b.buf = append(b.buf, line...)
		b.ends = append(b.ends, len(b.buf))
		stopped = len(b.ends) == len(b.recs) && !send()
		return !stopped
	})
	if stopped || (err != nil && len(b.ends) > 0 && !send()) { // the lines read before the error first
		return
	}
	b.err = err
	send()
}

// batchLines is the most lines in a batch; inputs merged together share
// about batchBudget lines of buffers.
const (
	batchLines  = 2048
	batchBudget = 16384
)
