package analysis

import (
	"cmp"
	"context"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// scenarioPlots is the data behind one scenario's plots, kept apart from
// the drawing so that it can be compared with golden files. Points are
// [x, y]; histogram bins are [from, to, count].
type scenarioPlots struct {
	CDF        [][2]float64 `json:"latency_cdf"` // ms, fraction of deliveries
	Hist       [][3]float64 `json:"latency_hist"`
	HistClipMS float64      `json:"latency_hist_clip_ms"`
	TimeLive   [][2]float64 `json:"latency_time_live"` // s since the first delivery, ms
	TimeSync   [][2]float64 `json:"latency_time_sync"`
	Faults     []faultSpan  `json:"fault_windows"`
	Throughput [][2]float64 `json:"throughput"` // s since the first delivery, deliveries in that second
	Loss       []lossBar    `json:"loss"`
	// the fault windows on the throughput plot's axis (its seconds start at
	// the first delivery's whole second)
	throughputFaults []faultSpan
}

// faultSpan is a fault window on a time plot's x axis.
type faultSpan struct {
	Label    string  `json:"label"`
	FromS    float64 `json:"from_s"`
	ToS      float64 `json:"to_s"`
	colorIdx int
}

// lossBar is one receiver's bars in the loss plot.
type lossBar struct {
	Node       string  `json:"node"`
	Lost       float64 `json:"lost"`
	Duplicates float64 `json:"duplicates"`
}

// cdfPoints returns the empirical CDF of a latency histogram as (ms,
// fraction) points: at most about maxPoints, always with the last one.
func cdfPoints(h *hist, maxPoints int) [][2]float64 {
	if h == nil || h.n == 0 {
		return nil
	}
	step := max(1, h.n/int64(maxPoints))
	var xy [][2]float64
	var seen, shown int64
	for v, c := range h.buckets() {
		seen += c
		if seen-shown >= step || seen == h.n {
			xy = append(xy, [2]float64{math.Max(float64(v)/1000, minLatencyMS), float64(seen) / float64(h.n)})
			shown = seen
		}
	}
	return xy
}

// xysOf returns points as gonum draws them.
func xysOf(ps [][2]float64) plotter.XYs {
	xy := make(plotter.XYs, len(ps))
	for i, p := range ps {
		xy[i] = plotter.XY{X: p[0], Y: p[1]}
	}
	return xy
}

// scenarioPlotData computes every series the scenario's plots draw.
func scenarioPlotData(s ScenarioSummary) scenarioPlots {
	var d scenarioPlots
	d.CDF = cdfPoints(s.all, 2000)
	d.Hist, d.HistClipMS = histBins(s.all)
	if all := slices.Concat(s.timeLive, s.timeSync); len(all) > 0 {
		t0 := slices.MinFunc(all, func(a, b point) int { return cmp.Compare(a[0], b[0]) })[0]
		d.TimeLive, d.TimeSync = relativeTo(s.timeLive, t0), relativeTo(s.timeSync, t0)
		d.Faults = faultSpans(s.Faults, t0)
	}
	if d.Throughput = s.throughput; len(d.Throughput) > 0 {
		d.throughputFaults = faultSpans(s.Faults, float64(s.throughputT0))
	}
	for _, r := range s.Receivers {
		d.Loss = append(d.Loss, lossBar{Node: r.Node, Lost: float64(r.Lost), Duplicates: float64(r.Duplicates)})
	}
	return d
}

// histBins returns the latency histogram's 50 bins, clipped at p99.9 so
// that one outlier does not squash it, and the clip in ms.
func histBins(all *hist) ([][3]float64, float64) {
	if all == nil || all.n == 0 {
		return nil, 0
	}
	clip := float64(all.quantile(999)) / 1000
	var vals plotter.XYs
	for v, c := range all.buckets() {
		vals = append(vals, plotter.XY{X: math.Min(float64(v)/1000, clip), Y: float64(c)})
	}
	h, err := plotter.NewHistogram(vals, 50)
	if err != nil {
		return nil, clip
	}
	var bins [][3]float64
	for _, b := range h.Bins {
		bins = append(bins, [3]float64{b.Min, b.Max, b.Weight})
	}
	return bins, clip
}

// relativeTo returns pts as [s since t0 (ns), y], sorted by time: deliveries
// are counted in the order their messages complete.
func relativeTo(pts []point, t0 float64) [][2]float64 {
	out := make([][2]float64, len(pts))
	for i, pt := range pts {
		out[i] = point{(pt[0] - t0) / 1e9, pt[1]}
	}
	slices.SortStableFunc(out, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// faultSpans places the fault windows on an axis of seconds since t0 (ns),
// one colour per distinct fault and target.
func faultSpans(faults []Fault, t0 float64) []faultSpan {
	var spans []faultSpan
	colors := map[string]int{}
	for _, f := range faults {
		label := "fault: " + f.Name + " " + f.Target
		c, ok := colors[label]
		if !ok {
			c = len(colors)
			colors[label] = c
		}
		spans = append(spans, faultSpan{Label: label, FromS: (float64(f.StartNS) - t0) / 1e9,
			ToS: (float64(f.EndNS) - t0) / 1e9, colorIdx: c})
	}
	return spans
}

// fileName makes a run label or group safe in a file name: a node's -run
// may hold any text, and the plots of "a/b" must not need a directory a.
// Letters, digits, '.', '_' and '-' stay; anything else becomes '_'.
func fileName(label string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '_'
	}, label)
}

// plotKind is one kind of plot: its file name prefix, its title (a format
// for the scenario's or comparison's name) and axis labels, whether its y
// axis counts things (whole ticks), and how to draw d on it.
type plotKind[D any] struct {
	prefix, title, x, y string
	whole               bool
	draw                func(p *plot.Plot, d D, leg *plot.Legend) error
}

// scenarioPlotKinds are a scenario's plots, in the order the report shows them.
var scenarioPlotKinds = []plotKind[scenarioPlots]{
	{"latency_cdf_", "%s: latency CDF", "one-way latency (ms, log scale)", "fraction of deliveries", false, latencyCDFPlot},
	{"latency_hist_", "%s: latency histogram", "one-way latency (ms)", "deliveries", true, latencyHistPlot},
	{"latency_time_", "%s: latency over time", "time since first delivery (s)", "one-way latency (ms)", false, latencyTimePlot},
	{"throughput_", "%s: delivered throughput", "time since first delivery (s)", "deliveries per second (1/s)", true, throughputPlot},
	{"loss_", "%s: loss and duplicates per receiver", "receiver", "messages", true, lossPlot},
}

// savePlots draws d in each kind of plot into dir as prefix + suffix +
// ".png" and returns the file names; it stops with ctx's error when ctx
// ends. A plot without data keeps its axes and title.
func savePlots[D any](ctx context.Context, dir string, kinds []plotKind[D], title, suffix string, d D) ([]string, error) {
	var names []string
	for _, k := range kinds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		leg := plot.NewLegend()
		p := newPlot(fmt.Sprintf(k.title, title), k.x, k.y)
		if k.whole {
			p.Y.Tick.Marker = linTicks{whole: true}
		}
		if err := k.draw(p, d, &leg); err != nil {
			return nil, fmt.Errorf("plot %s%s: %w", k.prefix, suffix, err)
		}
		name := k.prefix + suffix + ".png"
		if err := save(p, &leg, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// latencyCDFPlot is the fraction of deliveries within each latency.
func latencyCDFPlot(p *plot.Plot, d scenarioPlots, _ *plot.Legend) error {
	if len(d.CDF) == 0 {
		return nil
	}
	return addCDFs(p, nil, []namedCDF{{Points: d.CDF}})
}

// setLogX makes p's x axis logarithmic over [lo, hi], widened to a decade
// around a single value (gonum's ±1 could reach zero, which a log scale
// cannot draw).
func setLogX(p *plot.Plot, lo, hi float64) {
	lo, hi = math.Max(lo, minLatencyMS), math.Max(hi, minLatencyMS)
	if hi <= lo*1.001 {
		lo, hi = lo/math.Sqrt(10), hi*math.Sqrt(10)
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	p.X.Min, p.X.Max = lo, hi
}

// latencyHistPlot is the latency histogram, clipped at p99.9.
func latencyHistPlot(p *plot.Plot, d scenarioPlots, _ *plot.Legend) error {
	if len(d.Hist) == 0 {
		return nil
	}
	h := &plotter.Histogram{FillColor: palette[0], LineStyle: plotter.DefaultLineStyle}
	h.LineStyle.Color = color.White
	h.LineStyle.Width = vg.Points(0.5)
	top := 1.0
	for _, b := range d.Hist {
		h.Bins = append(h.Bins, plotter.HistogramBin{Min: b[0], Max: b[1], Weight: b[2]})
		top = math.Max(top, b[2])
	}
	h.Width = d.Hist[0][1] - d.Hist[0][0]
	p.Add(h)
	lo, hi := d.Hist[0][0], d.Hist[len(d.Hist)-1][1]
	pad := math.Max((hi-lo)*0.02, 0.001)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo-pad, hi+pad, 0, top*1.05
	p.X.Label.Text = fmt.Sprintf("one-way latency (ms, clipped at p99.9 = %s ms)", strconv.FormatFloat(d.HistClipMS, 'f', -1, 64))
	return nil
}

// latencyTimePlot is every sampled delivery's latency at its receive time,
// live and via sync apart, over the shaded fault windows.
func latencyTimePlot(p *plot.Plot, d scenarioPlots, leg *plot.Legend) error {
	all := slices.Concat(d.TimeLive, d.TimeSync)
	if len(all) == 0 {
		return nil
	}
	minX, maxX, maxY := math.Inf(1), math.Inf(-1), 0.0
	for _, pt := range all {
		minX, maxX, maxY = math.Min(minX, pt[0]), math.Max(maxX, pt[0]), math.Max(maxY, pt[1])
	}
	maxY = math.Max(maxY*1.05, 1)
	if err := shadeFaults(p, leg, d.Faults, 0, maxY); err != nil {
		return err
	}
	for i, series := range []struct {
		name string
		pts  [][2]float64
	}{{"live", d.TimeLive}, {"via room log (sync)", d.TimeSync}} {
		if len(series.pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xysOf(series.pts))
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: palette[i], Radius: vg.Points(1.5), Shape: draw.CircleGlyph{}}
		p.Add(sc)
		leg.Add(series.name, sc)
	}
	for _, f := range d.Faults {
		minX, maxX = math.Min(minX, f.FromS), math.Max(maxX, f.ToS)
	}
	pad := math.Max((maxX-minX)*0.02, 0.01)
	p.X.Min, p.X.Max = minX-pad, maxX+pad
	p.Y.Min, p.Y.Max = 0, maxY
	return nil
}

// throughputPlot is the deliveries in each second of receive time over the
// shaded fault windows: an outage shows as a drop.
func throughputPlot(p *plot.Plot, d scenarioPlots, leg *plot.Legend) error {
	if len(d.Throughput) == 0 {
		return nil
	}
	// Each one-second bin is a flat step over its second, so even a run
	// shorter than two seconds shows its rate.
	var xy plotter.XYs
	top := 0.0
	for _, pt := range d.Throughput {
		xy = append(xy, plotter.XY{X: pt[0], Y: pt[1]}, plotter.XY{X: pt[0] + 1, Y: pt[1]})
		top = math.Max(top, pt[1])
	}
	top = math.Max(top*1.05, 1)
	if err := shadeFaults(p, leg, d.throughputFaults, 0, top); err != nil {
		return err
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = palette[2]
	l.Width = vg.Points(1.5)
	p.Add(l)
	if len(d.throughputFaults) > 0 {
		leg.Add("deliveries", l)
	}
	p.Y.Min, p.Y.Max = 0, top
	return nil
}

// lossPlot is each receiver's lost messages and suppressed duplicates.
func lossPlot(p *plot.Plot, d scenarioPlots, leg *plot.Legend) error {
	if len(d.Loss) == 0 {
		return nil
	}
	var nodes []string
	bars := []namedBars{{Name: "lost"}, {Name: "duplicates (suppressed)"}}
	top := 1.0
	for _, r := range d.Loss {
		nodes = append(nodes, r.Node)
		bars[0].Values, bars[1].Values = append(bars[0].Values, r.Lost), append(bars[1].Values, r.Duplicates)
		top = math.Max(top, math.Max(r.Lost, r.Duplicates))
	}
	if err := addBars(p, leg, nodes, bars, []color.Color{palette[3], palette[1]}, 0); err != nil {
		return err
	}
	p.Y.Min, p.Y.Max = 0, top*1.05
	return nil
}
