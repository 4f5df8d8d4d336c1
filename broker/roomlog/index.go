package roomlog

// entry is one record in a conversation's index. It holds no pointer, so
// the garbage collector does not scan an index, and costs 32 bytes (memory
// mode keeps the data in convIndex.data).
type entry struct {
	seq uint64
	ts  int64
	off int64 // the data's offset in the file
	n   int32 // the data's length
}

type convIndex struct {
	entries []entry  // consecutive sequence numbers
	data    [][]byte // memory mode only: data[i] is entries[i]'s record
	bytes   int64
	last    uint64 // survives retention trimming entries away
	newest  entry  // the record numbered last, also when trimmed: compaction keeps it, so last survives
}

func (s *FileStore) index(conv string) *convIndex {
	ci := s.convs[conv]
	if ci == nil {
		ci = &convIndex{}
		s.convs[conv] = ci
	}
	return ci
}

// add appends e (and data in memory mode) to ci and applies retention. Callers hold s.mu.
func (s *FileStore) add(ci *convIndex, e entry, data []byte) {
	ci.entries = append(ci.entries, e)
	if s.f == nil {
		ci.data = append(ci.data, data)
	}
	ci.bytes += int64(e.n)
	ci.last, ci.newest = e.seq, e
	s.records++
	s.trim(ci, s.opts.now().UnixNano())
}

// trim drops what retention no longer keeps at nowNS. Callers hold s.mu.
func (s *FileStore) trim(ci *convIndex, nowNS int64) {
	drop := 0
	for drop < len(ci.entries) {
		old := ci.entries[drop]
		// Count and bytes always leave the newest record; age does not.
		over := s.expired(old, nowNS) || (drop < len(ci.entries)-1 &&
			((s.opts.MaxMessages > 0 && len(ci.entries)-drop > s.opts.MaxMessages) ||
				(s.opts.MaxBytes > 0 && ci.bytes > s.opts.MaxBytes)))
		if !over {
			break
		}
		ci.bytes -= int64(old.n)
		s.records--
		drop++
	}
	if drop == 0 {
		return
	}
	// Reslice: at a limit every append drops one, and copying costs O(kept) under the lock.
	ci.entries = dropFront(ci.entries, drop)
	if s.f == nil {
		ci.data = dropFront(ci.data, drop)
	}
}

// dropFront returns s without its first n elements, zeroed so what they
// point to can go, copied when three quarters of its capacity is unused.
func dropFront[T any](s []T, n int) []T {
	clear(s[:n])
	s = s[n:]
	if len(s) < cap(s)/4 {
		s = append([]T(nil), s...)
	}
	return s
}

// made returns *m, made first if nil, so tables work as zero values.
func made[K comparable, V any](m *map[K]V) map[K]V {
	if *m == nil {
		*m = map[K]V{}
	}
	return *m
}

// inner returns (*m)[k], made first with *m as needed.
func inner[K, K2 comparable, V any](m *map[K]map[K2]V, k K) map[K2]V {
	in := made(m)[k]
	if in == nil {
		in = map[K2]V{}
		(*m)[k] = in
	}
	return in
}

// expired reports whether MaxAge has dropped e at nowNS.
func (s *FileStore) expired(e entry, nowNS int64) bool {
	return s.opts.MaxAge > 0 && nowNS-e.ts > int64(s.opts.MaxAge)
}

// expire applies MaxAge to conv before a read (see loadSpan).
func (s *FileStore) expire(conv string) {
	if s.opts.MaxAge <= 0 {
		return
	}
	now := s.opts.now().UnixNano()
	s.mu.RLock()
	ci := s.convs[conv]
	stale := ci != nil && len(ci.entries) > 0 && s.expired(ci.entries[0], now)
	s.mu.RUnlock()
	if stale {
		s.mu.Lock()
		s.trim(ci, now)
		s.mu.Unlock()
	}
}
