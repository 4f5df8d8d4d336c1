package analysis

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// fileFacts is what the first pass learns from one file, applied to the
// model in file order afterwards, so files can be read in parallel.
type fileFacts struct {
	events []fact               // memberships, faults, and each node's first line, in file order
	sends  map[string]*sendSpan // per run label
	// lines read, of those the ones with a known event, and of those the
	// drill's fault and scenario lines
	lines, eventLines, faultLines int64
	runs                          map[string]bool    // its run labels: files sharing none merge apart
	nodes                         map[[2]string]bool // its (run, node) pairs: a node ends with its last file
	r                             rec
}

// fact is one line of interest to the first pass.
type fact struct {
	event                                        string // a wire event, or "" for a node's first parsed line
	run, node, conv, fault, target, phase, group string
	ts                                           int64
}

// sendSpan is the send times of a run's "sent" lines in one file.
type sendSpan struct{ first, last, n int64 }

// pass1 reads a line for what describes a run rather than its messages:
// memberships, fault windows and send times. It skips "received" lines
// unparsed, so it is cheap.
func (ff *fileFacts) pass1(line []byte) {
	ff.lines++
	ev := lineEvent(line)
	if eventName(ev) != "" {
		ff.eventLines++
	}
	if len(ev) == 0 || (ev[0] != 's' && ev[0] != 'u' && ev[0] != 'f') || !parseRec(line, &ff.r) {
		return
	}
	r := &ff.r
	e := eventName(r.event)
	if e == "" {
		return
	}
	if !ff.runs[string(r.run)] {
		ff.runs[string(r.run)] = true
	}
	if k := [2]string{string(r.run), string(r.node)}; !isDrillEvent(e) && !ff.nodes[k] {
		ff.nodes[k] = true
		ff.events = append(ff.events, fact{run: k[0], node: k[1]}) // the node, in the order the files name them
	}
	switch e {
	case nodelog.EventScenario, nodelog.EventFault:
		ff.faultLines++
		ff.events = append(ff.events, fact{event: e, run: string(r.run), fault: string(r.fault), target: string(r.target),
			phase: string(r.phase), group: string(r.group), ts: r.tsNS})
	case nodelog.EventSubscribed, nodelog.EventUnsubscribed:
		ff.events = append(ff.events, fact{event: e, run: string(r.run), node: string(r.node), conv: string(convKey(r)), ts: r.tsNS})
	case nodelog.EventSent:
		if len(r.id) == 0 {
			return
		}
		sp := ff.sends[string(r.run)]
		if sp == nil {
			sp = &sendSpan{first: r.sentNS, last: r.sentNS}
			ff.sends[string(r.run)] = sp
		}
		sp.first, sp.last, sp.n = min(sp.first, r.sentNS), max(sp.last, r.sentNS), sp.n+1
	}
}

// isDrillEvent reports whether lines of event e come from the evaluation's
// drill log rather than a node.
func isDrillEvent(e string) bool { return e == nodelog.EventFault || e == nodelog.EventScenario }

// nodeEnds tells pass two when a node's log has been read to its end: when
// every file holding its lines has, and no file that may hold any node's
// lines is still open.
type nodeEnds struct {
	open        map[[2]string]int // files still open per (run, node)
	unknownOpen int               // files still open for which anyNodes holds
	files       []*fileFacts      // the group's files
}

// anyNodes reports whether the file may hold lines of nodes pass one has
// not seen in it: it names several (docker-compose logs), or none but has
// node events.
func (ff *fileFacts) anyNodes() bool {
	return len(ff.nodes) > 1 || (len(ff.nodes) == 0 && ff.eventLines > ff.faultLines)
}

// newNodeEnds follows the files of one merge group.
func newNodeEnds(facts []fileFacts, group []int) *nodeEnds {
	e := &nodeEnds{open: map[[2]string]int{}}
	for _, f := range group {
		ff := &facts[f]
		e.files = append(e.files, ff)
		if ff.anyNodes() {
			e.unknownOpen++
		}
		for k := range ff.nodes {
			e.open[k]++
		}
	}
	return e
}

// fileDone records that the group's file i has been read and returns the
// (run, node) pairs whose logs are now complete.
func (e *nodeEnds) fileDone(i int) [][2]string {
	ff := e.files[i]
	for k := range ff.nodes {
		e.open[k]--
	}
	if ff.anyNodes() {
		e.unknownOpen--
	}
	if e.unknownOpen > 0 {
		return nil
	}
	candidates := maps.Keys(ff.nodes)
	if ff.anyNodes() { // its end may complete any node
		candidates = maps.Keys(e.open)
	}
	var ended [][2]string
	for k := range candidates {
		if e.open[k] == 0 {
			ended = append(ended, k)
			e.open[k] = -1 // told once
		}
	}
	return ended
}

// mergeGroups splits the files into groups that share no run label, in the
// order of their first file, so that pass two holds one scenario's files
// open at a time. A file with events but no run label could belong
// anywhere: then every file is merged together.
func mergeGroups(facts []fileFacts) [][]int {
	parent := make([]int, len(facts)) // a root is its group's first file
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	union := func(i, j int) {
		a, b := find(i), find(j)
		parent[max(a, b)] = min(a, b)
	}
	owner := map[string]int{}
	for i := range facts {
		if facts[i].eventLines > 0 && len(facts[i].runs) == 0 {
			for j := range facts {
				union(i, j)
			}
		}
		for run := range facts[i].runs {
			if j, ok := owner[run]; ok {
				union(i, j)
			} else {
				owner[run] = i
			}
		}
	}
	var groups [][]int
	at := make([]int, len(facts)) // a root's index in groups
	for i := range facts {
		if find(i) == i {
			at[i] = len(groups)
			groups = append(groups, nil)
		}
		g := at[find(i)]
		groups[g] = append(groups[g], i)
	}
	return groups
}

// apply adds one file's facts to the model.
func (m *model) apply(ff *fileFacts) {
	for _, f := range ff.events {
		s := m.scenario(f.run)
		switch f.event {
		case nodelog.EventScenario:
			s.groups = splitGroups(f.group)
			continue
		case nodelog.EventFault:
			key := faultKey{f.fault, f.target}
			if f.phase == nodelog.PhaseStart {
				s.openFault[key] = f.ts
			} else if start, ok := s.openFault[key]; ok {
				delete(s.openFault, key)
				s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: f.ts})
			}
			continue
		}
		n := s.node(f.node)
		if f.event == "" || f.conv == "" {
			continue
		}
		key := memberKey{n, s.convs.add([]byte(f.conv))}
		if f.event == nodelog.EventSubscribed {
			if _, already := s.open[key]; !already {
				s.open[key] = f.ts
			}
		} else if from, ok := s.open[key]; ok {
			delete(s.open, key)
			s.member[key] = append(s.member[key], interval{from, f.ts})
		}
	}
	for run, sp := range ff.sends {
		s := m.scenario(run)
		if s.sentLines == 0 || sp.first < s.firstNS {
			s.firstNS = sp.first
		}
		s.lastNS = max(s.lastNS, sp.last)
		s.sentLines += sp.n
	}
}

// splitGroups returns the comma-separated groups of a scenario line.
func splitGroups(s string) []string {
	var gs []string
	for g := range strings.SplitSeq(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	return gs
}

// lineEvent returns the event name of a raw line without parsing it (empty
// when it has none), for the first pass' filter.
func lineEvent(line []byte) []byte {
	_, v, found := bytes.Cut(line, []byte(`"event":"`))
	if v, _, closed := bytes.Cut(v, []byte{'"'}); found && closed {
		return v
	}
	return nil
}

// endPass1 leaves memberships without an "unsubscribed" line open (they end
// at the node's last line), closes open fault windows and sets the measured
// window.
func (m *model) endPass1(warmup, cooldown int64) error {
	for _, s := range m.runs {
		if len(s.nodes.list) > maxNodes {
			return fmt.Errorf("scenario %q has %d nodes; the analysis handles at most %d per scenario", s.name, len(s.nodes.list), maxNodes)
		}
		for key, from := range s.open {
			s.member[key] = append(s.member[key], interval{from, openEnd})
		}
		s.open = nil
		for key, start := range s.openFault {
			s.faults = append(s.faults, Fault{Name: key.fault, Target: key.target, StartNS: start, EndNS: max(s.lastNS, start)})
		}
		s.winFrom, s.winTo = s.firstNS+warmup, s.lastNS-cooldown
		slices.SortFunc(s.faults, func(a, b Fault) int { return cmp.Compare(a.StartNS, b.StartNS) })
	}
	return nil
}
