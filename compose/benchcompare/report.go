package benchcompare

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Report is compare.json: every result of a run and where it ran.
type Report struct {
	Date     string   `json:"date"` // RFC 3339, UTC
	Machine  Machine  `json:"machine"`
	Command  string   `json:"command"`
	Loads    []string `json:"loads"`
	LoadInfo []string `json:"load_info"` // describes each load in Loads
	Brokers  []string `json:"brokers"`
	Results  []Result `json:"results"`
}

// Machine is what the figures were measured on.
type Machine struct {
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Mosquitto string `json:"mosquitto_version,omitempty"`
}

// Markers delimit the generated table in a README.
const (
	MarkerStart = "<!-- bench-compare:start -->"
	MarkerEnd   = "<!-- bench-compare:end -->"
)

// column is one figure of the tables and the plot's panels.
type column struct {
	head   string
	get    func(Figures) float64
	format string
}

var columns = []column{
	{"p50 ms", func(f Figures) float64 { return f.P50MS }, "%.3f"},
	{"p99 ms", func(f Figures) float64 { return f.P99MS }, "%.3f"},
	{"max ms", func(f Figures) float64 { return f.MaxMS }, "%.1f"},
	{"msg/s", func(f Figures) float64 { return f.MsgPerS }, "%.0f"},
	{"loss", func(f Figures) float64 { return float64(f.Loss) }, "%.0f"},
	{"broker CPU-s/1k", func(f Figures) float64 { return f.BrokerCPUPer1k }, "%.4f"},
	{"load CPU-s/1k", func(f Figures) float64 { return f.LoadCPUPer1k }, "%.4f"},
	{"broker RSS MB", func(f Figures) float64 { return f.BrokerRSSMB }, "%.1f"},
}

// Markdown is compare.md: one table per load with a ratio column (ours ÷
// Mosquitto) after each figure, under the machine line.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# bench-compare: distchat beside Mosquitto\n\n" + r.measuredLine())
	b.WriteString("Mosquitto runs on its one thread, each single distchat broker on one processor (-procs 1); bare Mochi and the cluster's brokers on Go's default processors (every core, or GOMAXPROCS from the environment).\n")
	b.WriteString("The × columns are ours ÷ Mosquitto: below 1 is better for latency, loss, CPU and RSS; above 1 is better for msg/s and ramp capacity.\n")
	for i, load := range r.Loads {
		fmt.Fprintf(&b, "\n**%s**: %s\n\n", load, r.LoadInfo[i])
		r.table(&b, load)
	}
	return b.String()
}

// measuredLine says when, on what and with which command the figures were measured.
func (r Report) measuredLine() string {
	return fmt.Sprintf("Measured %s on %d cores, %s, %s, Mosquitto %s, with `%s`.\n", r.Date, r.Machine.Cores,
		r.Machine.OS, r.Machine.GoVersion, cmp.Or(r.Machine.Mosquitto, "—"), r.Command)
}

func (r Report) table(b *strings.Builder, load string) {
	head := []string{"broker"}
	for _, c := range columns {
		if load == "ramp" && c.head == "msg/s" {
			c.head = "capacity msg/s"
		}
		head = append(head, c.head, "×")
	}
	writeRow(b, head...)
	b.WriteString("|---|" + strings.Repeat("---:|---:|", len(columns)) + "\n")
	var notes []string
	for _, broker := range r.Brokers {
		if res, ok := r.find(load, broker); ok {
			writeRow(b, r.cells(res)...)
			notes = append(notes, notesOf(res)...)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n- " + strings.Join(notes, "\n- ") + "\n")
	}
}

func writeRow(b *strings.Builder, cells ...string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// cells are a result's row: the broker, then each figure and its ratio to Mosquitto's.
func (r Report) cells(res Result) []string {
	ref, hasRef := r.find(res.Load, Mosquitto)
	// A ramp whose first step failed has a capacity of 0 and no other figures.
	noPass := len(res.Steps) > 0 && !res.Steps[0].Passed
	row := []string{res.Broker}
	for _, c := range columns {
		if (res.Error != "" && len(res.Steps) == 0) || (noPass && c.head != "msg/s") {
			row = append(row, "—", "—")
			continue
		}
		v := fmt.Sprintf(c.format, c.get(res.Figures))
		if res.AtLeast && c.head == "msg/s" {
			v = "≥ " + v
		}
		ratio := "—"
		if hasRef && res.Broker != Mosquitto && ref.Error == "" {
			ratio = Ratio(c.get(res.Figures), c.get(ref.Figures))
		}
		row = append(row, v, ratio)
	}
	return row
}

// notesOf are the lines under a table about one result.
func notesOf(res Result) []string {
	var notes []string
	if res.Error != "" {
		notes = append(notes, fmt.Sprintf("%s failed: %s", res.Broker, oneLine(res.Error)))
	}
	if len(res.Steps) > 0 {
		notes = append(notes, res.Broker+" steps (msg/s in all): "+stepsLine(res.Steps))
	}
	if len(res.RoundsMsgPerS) > 1 {
		notes = append(notes, res.Broker+" rounds (msg/s): "+joinEach(res.RoundsMsgPerS, func(r float64) string { return fmt.Sprintf("%.0f", r) }))
	}
	if g := res.GroupCommits; g.Fsyncs > 0 {
		notes = append(notes, fmt.Sprintf("%s group commit (its /stats): %d fsyncs, %.1f appends per fsync, %.3f ms per fsync",
			res.Broker, g.Fsyncs, g.AppendsPerFsync, g.FsyncMeanMS))
	}
	return notes
}

func (r Report) find(load, broker string) (Result, bool) {
	i := slices.IndexFunc(r.Results, func(res Result) bool { return res.Load == load && res.Broker == broker })
	if i < 0 {
		return Result{}, false
	}
	return r.Results[i], true
}

// Ratio formats ours ÷ ref with two decimals; "—" when ref is 0.
func Ratio(ours, ref float64) string {
	if ref == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", ours/ref)
}

// stepsLine is a note's list of a ramp's steps, each with its verdict.
func stepsLine(steps []RampStep) string {
	return joinEach(steps, func(s RampStep) string {
		mark := "pass"
		switch {
		case s.Error != "":
			mark = "failed"
		case !s.Passed && s.Loss > 0:
			mark = fmt.Sprintf("loss %d", s.Loss)
		case !s.Passed:
			mark = fmt.Sprintf("p99 %.0f ms", s.P99MS)
		}
		return fmt.Sprintf("%g %s", s.TotalRate, mark)
	})
}

func joinEach[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// save writes compare.json, compare.md and compare.png into c.out and,
// with -readme, the README summary.
func (r Report) save(c cmdLine) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.out, err)
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode compare.json: %w", err)
	}
	for name, data := range map[string][]byte{"compare.json": append(j, '\n'), "compare.md": []byte(r.Markdown())} {
		if err := os.WriteFile(filepath.Join(c.out, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := r.writePlot(filepath.Join(c.out, "compare.png")); err != nil {
		return err
	}
	if c.readme != "" {
		return r.updateReadme(c.readme, c.out)
	}
	return nil
}

// ReplaceBetweenMarkers returns doc with the text between MarkerStart and
// MarkerEnd replaced by content; both markers must be there, in order.
func ReplaceBetweenMarkers(doc, content string) (string, error) {
	i := strings.Index(doc, MarkerStart)
	j := strings.Index(doc, MarkerEnd)
	if i < 0 || j < 0 || j < i {
		return "", fmt.Errorf("markers %s … %s not found (in order)", MarkerStart, MarkerEnd)
	}
	if strings.Count(doc, MarkerStart) > 1 || strings.Count(doc, MarkerEnd) > 1 {
		return "", errors.New("the bench-compare markers appear more than once")
	}
	return doc[:i+len(MarkerStart)] + "\n" + strings.TrimRight(content, "\n") + "\n" + doc[j:], nil
}

// updateReadme puts the summary, linking to outDir's compare.md, between path's markers.
func (r Report) updateReadme(path, outDir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	link := filepath.Join(outDir, "compare.md")
	if rel, err := filepath.Rel(filepath.Dir(path), link); err == nil {
		link = rel
	}
	out, err := ReplaceBetweenMarkers(string(b), r.Summary(filepath.ToSlash(link)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// keyFigureOf is the load's figure in the README's summary: throughput for
// the closed loops, capacity for the ramp, p99 for the open-loop chat loads
// (whose rate is fixed, so their msg/s says nothing).
func keyFigureOf(load string) column {
	switch {
	case load == "ramp":
		return column{head: "capacity", get: func(f Figures) float64 { return f.MsgPerS }}
	case strings.HasPrefix(load, "pairs-"):
		return column{head: "msg/s", get: func(f Figures) float64 { return f.MsgPerS }}
	default:
		return column{head: "p99", get: func(f Figures) float64 { return f.P99MS }}
	}
}

// Summary is what bench-compare puts between the README's markers: each
// distchat broker's key figures as ratios to Mosquitto's and a link to the
// full tables, so the README stays short.
func (r Report) Summary(link string) string {
	var b strings.Builder
	b.WriteString(r.measuredLine())
	b.WriteString("Each cell is the broker's key figure under the load ÷ Mosquitto's: msg/s and capacity, above 1 is better; p99, below 1 is better.\n")
	fmt.Fprintf(&b, "Every figure (latency, loss, CPU and memory per broker), the rounds' spread and what each load is: [%s](%s).\n\n", link, link)
	head := []string{"broker"}
	for _, load := range r.Loads {
		head = append(head, load+" "+keyFigureOf(load).head+" ×")
	}
	writeRow(&b, head...)
	b.WriteString("|---|" + strings.Repeat("---:|", len(r.Loads)) + "\n")
	for _, broker := range r.Brokers {
		if broker == Mosquitto {
			continue
		}
		row := []string{broker}
		for _, load := range r.Loads {
			row = append(row, r.summaryCell(load, broker))
		}
		writeRow(&b, row...)
	}
	return b.String()
}

// summaryCell is broker's key ratio under load, with its loss if any.
func (r Report) summaryCell(load, broker string) string {
	res, ok := r.find(load, broker)
	if !ok {
		return "—"
	}
	if res.Error != "" && len(res.Steps) == 0 {
		return "failed"
	}
	ref, hasRef := r.find(load, Mosquitto)
	if !hasRef || ref.Error != "" {
		return "—"
	}
	key := keyFigureOf(load)
	cell := Ratio(key.get(res.Figures), key.get(ref.Figures))
	if res.Loss > 0 && len(res.Steps) == 0 {
		cell += fmt.Sprintf(" (loss %d)", res.Loss)
	}
	return cell
}
