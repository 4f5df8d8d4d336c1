package analysis

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFile(path, append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o666); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// writeSummaryCSV writes one row per scenario and receiver.
func writeSummaryCSV(path string, sum Summary) error {
	var b bytes.Buffer
	rows := [][]string{{"run", "receiver", "expected", "received", "lost", "duplicates", "reordered", "received_live",
		"received_sync", "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "longest_wait_ms"}}
	for _, s := range sum.Scenarios {
		for _, r := range s.Receivers {
			rows = append(rows, []string{s.Name, r.Node, itoa(r.Expected), itoa(r.Received), itoa(r.Lost),
				itoa(r.Duplicates), itoa(r.Reordered), itoa(r.ReceivedLive), itoa(r.ReceivedSync),
				f3(r.LatencyMS.P50), f3(r.LatencyMS.P99), f3(r.LatencyMS.Max), f3(r.LongestWaitMS)})
		}
	}
	if err := csv.NewWriter(&b).WriteAll(rows); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFile(path, b.Bytes())
}

// msOf formats v, a figure of l, or "–" when l has no samples.
func msOf(l Latency, v float64) string {
	if l.N == 0 {
		return "–"
	}
	return f3(v)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// messagesCSV streams one row per delivery during pass two, built by hand
// (names come CSV-quoted already) and written by a goroutine of its own so
// as not to hold up the matching. Rows go to messages.csv.partial, renamed
// only when the pass has run to its end.
type messagesCSV struct {
	f    *os.File
	path string // the output the temporary file f becomes
	buf  []byte
	full chan []byte
	free chan []byte
	done chan error
}

const csvBufSize = 1 << 20

// partialSuffix names messages.csv while pass two writes it.
const partialSuffix = ".partial"

func newMessagesCSV(path string) (*messagesCSV, error) {
	f, err := os.OpenFile(path+partialSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	m := &messagesCSV{f: f, path: path, full: make(chan []byte, 4), free: make(chan []byte, 5), done: make(chan error, 1)}
	for i := 0; i < 5; i++ {
		m.free <- make([]byte, 0, csvBufSize+4096)
	}
	m.buf = <-m.free
	go func() {
		var err error
		for b := range m.full {
			if err == nil {
				if _, werr := f.Write(b); werr != nil {
					err = fmt.Errorf("write %s: %w", path, werr)
				}
			}
			m.free <- b[:0]
		}
		m.done <- err
	}()
	m.buf = append(m.buf, "run,receiver,sender,room,seq,sent_ns,recv_ns,latency_us,duplicate,via\n"...)
	return m, nil
}

// write appends d's row, handing the buffer to the writer once it is full.
func (m *messagesCSV) write(d delivery) {
	r := m.buf
	for _, f := range [...]string{d.run, d.receiver, d.sender, d.conv} {
		r = append(append(r, f...), ',')
	}
	for _, v := range [...]int64{d.seq, d.sentNS, d.recvNS, d.latencyUS} {
		r = append(strconv.AppendInt(r, v, 10), ',')
	}
	r = append(append(strconv.AppendBool(r, d.duplicate), ','), d.via...)
	m.buf = append(r, '\n')
	if len(m.buf) >= csvBufSize {
		m.full <- m.buf
		m.buf = <-m.free
	}
}

// csvField quotes s when it needs it (names from foreign publishers).
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// close finishes the file: with keep it becomes the output, else it is removed.
func (m *messagesCSV) close(keep bool) error {
	if len(m.buf) > 0 {
		m.full <- m.buf
	}
	close(m.full)
	err := <-m.done
	if cerr := m.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", m.path, cerr)
	}
	if keep && err == nil {
		if err := os.Rename(m.f.Name(), m.path); err != nil {
			return errors.Join(fmt.Errorf("write %s: %w", m.path, err), os.Remove(m.f.Name()))
		}
		return nil
	}
	if rerr := os.Remove(m.f.Name()); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove unfinished %s: %w", m.path, rerr))
	}
	return err
}

// writeReport writes report.md: tables and plots, ready for a README.
func writeReport(path string, sum Summary, plots reportPlots) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# distchat evaluation report\n\nFrom %d lines in %d files (%d bad lines skipped).\n\n",
		sum.Input.Lines, sum.Input.Files, sum.Input.BadLines)
	b.WriteString("Latency is one-way, from the sender's send time (the scheduled time in load runs) to the receiver's " +
		"receive stamp. Containers on one host share one clock, so one-way figures compare stamps of the same clock; " +
		"across machines they would include clock offset. The round trip (a node's own messages back to itself) uses " +
		"one process' stamps only and is the clock-free check. Percentiles are nearest rank over every delivery, read " +
		"from a histogram: exact below 2.048 ms, above at most 0.1% below the exact value.\n\n")
	if len(sum.Scenarios) > 1 {
		reportSideBySide(&b, sum.Scenarios, plots.compare)
	}
	for _, s := range sum.Scenarios {
		reportScenario(&b, s, plots.scenario[s.Name])
	}
	return writeFile(path, []byte(b.String()))
}

// reportSideBySide writes the table of every scenario and the comparison
// plots, under a heading per group.
func reportSideBySide(b *strings.Builder, ss []ScenarioSummary, compare map[string][]string) {
	b.WriteString("## Scenarios side by side\n\n")
	b.WriteString("| scenario | sent | expected | received | lost | dup | via sync | p50 ms | p99 ms | max ms | longest wait ms | round trip p50 ms | ack p50 ms | msg/s | MB/s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range ss {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, s.Sent, s.Expected,
			s.Received, s.Lost, s.Duplicates, s.ReceivedSync, msOf(s.LatencyMS, s.LatencyMS.P50), msOf(s.LatencyMS, s.LatencyMS.P99),
			msOf(s.LatencyMS, s.LatencyMS.Max), f3(s.LongestWaitMS), msOf(s.RoundTripMS, s.RoundTripMS.P50),
			msOf(s.AckLatencyMS, s.AckLatencyMS.P50), f3(s.ThroughputMsgsPerS), f3(s.ThroughputMBPerS))
	}
	b.WriteString("\n")
	for _, c := range comparisons(ss) {
		if len(compare[c.Group]) == 0 {
			continue // -no-plots
		}
		if c.Group != "" {
			names := make([]string, len(c.Scenarios))
			for i, s := range c.Scenarios {
				names[i] = s.Name
			}
			fmt.Fprintf(b, "### %s: %s\n\n", c.Group, strings.Join(names, " vs "))
		}
		for _, p := range compare[c.Group] {
			fmt.Fprintf(b, "![%s](%s)\n\n", p, p)
		}
	}
}

// reportScenario writes one scenario's figures, tables and plots.
func reportScenario(b *strings.Builder, s ScenarioSummary, plots []string) {
	fmt.Fprintf(b, "## %s\n\n", s.Name)
	fmt.Fprintf(b, "%d messages sent in a %.1f s window; %d deliveries expected, %d received (%d live, %d recovered "+
		"from the room log), **%d lost**, %d duplicates suppressed, %d reordered; %.1f deliveries/s.\n\n",
		s.Sent, s.WindowS, s.Expected, s.Received, s.ReceivedLive, s.ReceivedSync, s.Lost, s.Duplicates, s.Reordered,
		s.ThroughputMsgsPerS)
	if s.LongestWaitNode != "" {
		fmt.Fprintf(b, "Longest wait for a delivery while the load ran: **%s ms** (%s).\n\n", f3(s.LongestWaitMS), s.LongestWaitNode)
	}
	if n := s.NegativeLatencies; n > 0 {
		what := itoa(n) + " deliveries were"
		if n == 1 {
			what = "1 delivery was"
		}
		fmt.Fprintf(b, "%s stamped by the receiver before the sender's send time (clock skew): counted "+
			"with a one-way latency of 0 ms.\n\n", what)
	}
	for _, f := range s.Faults {
		fmt.Fprintf(b, "- fault `%s` on %s for %.1f s\n", f.Name, f.Target, float64(f.EndNS-f.StartNS)/1e9)
	}
	b.WriteString("\n| latency (ms) | n | min | mean | p50 | p90 | p95 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range []struct {
		name string
		l    Latency
	}{{"all deliveries", s.LatencyMS}, {"live", s.LiveLatencyMS}, {"via room log (sync)", s.SyncLatencyMS},
		{"round trip (own messages)", s.RoundTripMS}, {"publish → PUBACK", s.AckLatencyMS}} {
		l := row.l
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.name, l.N, msOf(l, l.Min), msOf(l, l.Mean),
			msOf(l, l.P50), msOf(l, l.P90), msOf(l, l.P95), msOf(l, l.P99), msOf(l, l.P999), msOf(l, l.Max))
	}
	b.WriteString("\n| receiver | expected | received | lost | duplicates | reordered | via sync | p50 ms | p99 ms | longest wait ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range s.Receivers {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", r.Node, r.Expected, r.Received, r.Lost,
			r.Duplicates, r.Reordered, r.ReceivedSync, msOf(r.LatencyMS, r.LatencyMS.P50), msOf(r.LatencyMS, r.LatencyMS.P99),
			f3(r.LongestWaitMS))
	}
	b.WriteString("\n")
	for _, p := range plots {
		fmt.Fprintf(b, "![%s](%s)\n\n", p, p)
	}
}
