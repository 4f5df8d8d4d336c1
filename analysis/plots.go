package analysis

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot size: 8.33 in at 96 dpi is 800 px wide.
const (
	plotDPI = 96
	plotW   = 800 * vg.Inch / plotDPI
	plotH   = 500 * vg.Inch / plotDPI
)

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
}

// faultColors shade fault windows, one colour per distinct fault.
var faultColors = []color.Color{
	color.NRGBA{214, 39, 40, 50}, color.NRGBA{148, 103, 189, 60}, color.NRGBA{140, 86, 75, 60},
	color.NRGBA{127, 127, 127, 60},
}

// minLatencyMS keeps log axes away from zero.
const minLatencyMS = 0.001

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
}

// faultSpan is a fault window on the latency-over-time plot's x axis.
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
// fraction) points: one per distinct value for small inputs, at most about
// maxPoints of them for large ones, and always the last (fraction 1).
func cdfPoints(h *hist, maxPoints int) plotter.XYs {
	if h == nil || h.n == 0 {
		return nil
	}
	step := max(1, h.n/int64(maxPoints))
	var xy plotter.XYs
	var seen, shown int64
	h.each(func(v int32, c int64) {
		seen += c
		if seen-shown >= step || seen == h.n {
			xy = append(xy, plotter.XY{X: math.Max(float64(v)/1000, minLatencyMS), Y: float64(seen) / float64(h.n)})
			shown = seen
		}
	})
	return xy
}

func pairs(xys plotter.XYs) [][2]float64 {
	out := make([][2]float64, len(xys))
	for i, p := range xys {
		out[i] = [2]float64{p.X, p.Y}
	}
	return out
}

func xysOf(ps [][2]float64) plotter.XYs {
	xy := make(plotter.XYs, len(ps))
	for i, p := range ps {
		xy[i] = plotter.XY{X: p[0], Y: p[1]}
	}
	return xy
}

// scenarioPlotData computes every series the scenario's plots draw from
// the summary and the sampled latency-over-time points (live and via sync).
func scenarioPlotData(s ScenarioSummary, live, sync []point) scenarioPlots {
	var d scenarioPlots
	d.CDF = pairs(cdfPoints(s.all, 2000))
	if s.all != nil && s.all.n > 0 {
		// Clip at p99.9 so one outlier does not squash the histogram.
		d.HistClipMS = float64(s.all.quantile(999)) / 1000
		var vals plotter.XYs
		s.all.each(func(v int32, c int64) {
			vals = append(vals, plotter.XY{X: math.Min(float64(v)/1000, d.HistClipMS), Y: float64(c)})
		})
		if h, err := plotter.NewHistogram(vals, 50); err == nil {
			for _, b := range h.Bins {
				d.Hist = append(d.Hist, [3]float64{b.Min, b.Max, b.Weight})
			}
		}
	}
	t0 := math.Inf(1)
	for _, pt := range append(live[:len(live):len(live)], sync...) {
		t0 = math.Min(t0, pt.x)
	}
	rel := func(pts []point) [][2]float64 {
		out := make([][2]float64, len(pts))
		for i, pt := range pts {
			out[i] = [2]float64{(pt.x - t0) / 1e9, pt.y}
		}
		// Deliveries are counted in the order their messages complete;
		// the plot wants them in time order.
		slices.SortStableFunc(out, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
		return out
	}
	if len(live)+len(sync) > 0 {
		d.TimeLive, d.TimeSync = rel(live), rel(sync)
		colors := map[string]int{}
		for _, f := range s.Faults {
			label := "fault: " + f.Name + " " + f.Target
			c, ok := colors[label]
			if !ok {
				c = len(colors)
				colors[label] = c
			}
			d.Faults = append(d.Faults, faultSpan{Label: label, FromS: (float64(f.StartNS) - t0) / 1e9,
				ToS: (float64(f.EndNS) - t0) / 1e9, colorIdx: c})
		}
	}
	for _, p := range s.throughput {
		d.Throughput = append(d.Throughput, [2]float64{p.x, p.y})
	}
	for _, r := range s.Receivers {
		d.Loss = append(d.Loss, lossBar{Node: r.Node, Lost: float64(r.Lost), Duplicates: float64(r.Duplicates)})
	}
	return d
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	return p
}

// save draws p at 800 px wide, with the legend, if it has entries, in a band
// between the title and the data area so that it never covers data.
func save(p *plot.Plot, leg *plot.Legend, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(plotW, plotH), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	if leg != nil {
		band := leg.Rectangle(dc).Size().Y
		if band > 0 {
			gap := vg.Points(6)
			titleH := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
			p.Title.Padding += band + gap
			p.Draw(dc)
			leg.Top, leg.Left = true, false
			leg.XOffs = -vg.Points(12)
			leg.Draw(draw.Crop(dc, 0, 0, 0, -(titleH + gap/2)))
		} else {
			p.Draw(dc)
		}
	} else {
		p.Draw(dc)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	w := bufio.NewWriter(f)
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	if err = errors.Join(err, w.Flush(), f.Close()); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// newLegend returns an empty legend in the plots' style.
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	return &l
}

// logTicks marks a log axis at 1, 2 and 5 of every decade (with unlabelled
// minor ticks between), or only at powers of ten over more than 5 decades.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	lo, hi = math.Max(lo, 1e-9), math.Max(hi, 1e-9)
	e0, e1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	sparse := e1-e0 > 5
	var ticks []plot.Tick
	for e := e0; e <= e1; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow10(e)
			if e < 0 {
				v = float64(m) / math.Pow10(-e) // exact decimal: 0.002, not 0.0020000000000000005
			}
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (!sparse && (m == 2 || m == 5)) {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// intTicks are linear ticks on whole numbers only: for axes that count
// things.
type intTicks struct{}

// Ticks implements plot.Ticker.
func (intTicks) Ticks(lo, hi float64) []plot.Tick { return linearTicks(lo, hi, true) }

// plainTicks are linear ticks at 1-2-5 steps, labelled with just the
// decimals the step needs ("1.2", not "1.2000000000000002" or "1.20").
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick { return linearTicks(lo, hi, false) }

// linearTicks returns about four to eight labelled ticks at a 1-2-5 step
// between lo and hi, with an unlabelled one between each pair; with whole
// set, the step is at least 1.
func linearTicks(lo, hi float64, whole bool) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'f', -1, 64)}}
	}
	exp := math.Floor(math.Log10((hi - lo) / 5))
	step := math.Pow10(int(exp))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(m*step) <= 8 {
			step *= m
			break
		}
	}
	if whole && step < 1 {
		step = 1
	}
	decimals := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	first := math.Ceil(lo/step*2-1e-9) / 2 // half steps: the unlabelled ticks
	for k := 0; ; k++ {
		v := (first + float64(k)/2) * step
		if v > hi*(1+1e-12)+1e-12 || k > 100 {
			break
		}
		half := math.Abs(v/step-math.Round(v/step)) > 1e-6
		if whole && v != math.Trunc(v) {
			continue
		}
		t := plot.Tick{Value: v}
		if !half {
			t.Label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// nominalTicks labels whole x positions 0..len(names)-1.
func nominalTicks(names []string) plot.ConstantTicks {
	t := make(plot.ConstantTicks, len(names))
	for i, n := range names {
		t[i] = plot.Tick{Value: float64(i), Label: n}
	}
	return t
}

// addBars draws grouped bars: series[j][i] is the bar of series j in group
// i, in colors[j], groups at x = 0, 1, ..., bars rising from bottom. The x range is padded
// so that no bar touches the y axis or leaves the plot.
func addBars(p *plot.Plot, leg *plot.Legend, groups, names []string, series [][]float64, colors []color.Color, bottom float64) error {
	n := float64(len(series))
	w := 0.8 / n
	for j, vals := range series {
		var rings []plotter.XYer
		for i, v := range vals {
			if v <= bottom {
				continue
			}
			x0 := float64(i) - 0.4 + float64(j)*w
			rings = append(rings, plotter.XYs{{X: x0, Y: bottom}, {X: x0 + w, Y: bottom}, {X: x0 + w, Y: v}, {X: x0, Y: v}})
		}
		poly := &plotter.Polygon{Color: colors[j%len(colors)]}
		if len(rings) > 0 {
			var err error
			if poly, err = plotter.NewPolygon(rings...); err != nil {
				return err
			}
			poly.Color = colors[j%len(colors)]
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		leg.Add(names[j], poly)
	}
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	p.X.Tick.Marker = nominalTicks(groups)
	return nil
}

// plotScenario writes the per-scenario plots and returns their file names;
// it stops before the next plot, with ctx's error, when ctx ends.
func plotScenario(ctx context.Context, dir string, s ScenarioSummary, d scenarioPlots) ([]string, error) {
	var names []string
	add := func(name string, p *plot.Plot, leg *plot.Legend) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names = append(names, name)
		return save(p, leg, outPath(dir, name))
	}

	p := newPlot(s.Name+": latency CDF", "one-way latency (ms, log scale)", "fraction of deliveries")
	if len(d.CDF) > 0 {
		l, err := plotter.NewLine(xysOf(d.CDF))
		if err != nil {
			return nil, err
		}
		l.Color = palette[0]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
		p.Y.Min, p.Y.Max = 0, 1
	}
	if err := add("latency_cdf_"+s.Name+".png", p, nil); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": latency histogram", "one-way latency (ms)", "deliveries")
	p.Y.Tick.Marker = intTicks{}
	if len(d.Hist) > 0 {
		h := &plotter.Histogram{FillColor: palette[0], LineStyle: plotter.DefaultLineStyle}
		h.LineStyle.Color = color.White
		h.LineStyle.Width = vg.Points(0.5)
		for _, b := range d.Hist {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: b[0], Max: b[1], Weight: b[2]})
		}
		h.Width = d.Hist[0][1] - d.Hist[0][0]
		p.Add(h)
		lo, hi := d.Hist[0][0], d.Hist[len(d.Hist)-1][1]
		pad := math.Max((hi-lo)*0.02, 0.001)
		top := 1.0
		for _, b := range d.Hist {
			top = math.Max(top, b[2])
		}
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo-pad, hi+pad, 0, top*1.05
		p.X.Label.Text = fmt.Sprintf("one-way latency (ms, clipped at p99.9 = %s ms)", strconv.FormatFloat(d.HistClipMS, 'f', -1, 64))
	}
	if err := add("latency_hist_"+s.Name+".png", p, nil); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": latency over time", "time since first delivery (s)", "one-way latency (ms)")
	leg := newLegend()
	if len(d.TimeLive)+len(d.TimeSync) > 0 {
		maxY := 0.0
		for _, pt := range append(d.TimeLive[:len(d.TimeLive):len(d.TimeLive)], d.TimeSync...) {
			maxY = math.Max(maxY, pt[1])
		}
		maxY = math.Max(maxY*1.05, 1)
		inLegend := map[string]bool{}
		for _, f := range d.Faults {
			poly, err := plotter.NewPolygon(plotter.XYs{{X: f.FromS, Y: 0}, {X: f.ToS, Y: 0}, {X: f.ToS, Y: maxY}, {X: f.FromS, Y: maxY}})
			if err != nil {
				return nil, err
			}
			poly.Color = faultColors[f.colorIdx%len(faultColors)]
			poly.LineStyle.Width = 0
			p.Add(poly)
			if !inLegend[f.Label] {
				inLegend[f.Label] = true
				leg.Add(f.Label, poly)
			}
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
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: palette[i], Radius: vg.Points(1.5), Shape: draw.CircleGlyph{}}
			p.Add(sc)
			leg.Add(series.name, sc)
		}
		minX, maxX := math.Inf(1), math.Inf(-1)
		for _, pt := range append(d.TimeLive[:len(d.TimeLive):len(d.TimeLive)], d.TimeSync...) {
			minX, maxX = math.Min(minX, pt[0]), math.Max(maxX, pt[0])
		}
		for _, f := range d.Faults {
			minX, maxX = math.Min(minX, f.FromS), math.Max(maxX, f.ToS)
		}
		pad := math.Max((maxX-minX)*0.02, 0.01)
		p.X.Min, p.X.Max = minX-pad, maxX+pad
		p.Y.Min, p.Y.Max = 0, maxY
	}
	if err := add("latency_time_"+s.Name+".png", p, leg); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": delivered throughput", "time since first delivery (s)", "deliveries per second")
	p.Y.Tick.Marker = intTicks{}
	if len(d.Throughput) > 0 {
		// Each one-second bin is a flat step over its second, so even a run
		// shorter than two seconds shows its rate.
		var xy plotter.XYs
		for _, pt := range d.Throughput {
			xy = append(xy, plotter.XY{X: pt[0], Y: pt[1]}, plotter.XY{X: pt[0] + 1, Y: pt[1]})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = palette[2]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Y.Min = 0
		p.Y.Max = math.Max(p.Y.Max*1.05, 1)
	}
	if err := add("throughput_"+s.Name+".png", p, nil); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": loss and duplicates per receiver", "receiver", "messages")
	p.Y.Tick.Marker = intTicks{}
	leg = newLegend()
	if len(d.Loss) > 0 {
		var nodes []string
		lost, dup := make([]float64, len(d.Loss)), make([]float64, len(d.Loss))
		top := 1.0
		for i, r := range d.Loss {
			nodes = append(nodes, r.Node)
			lost[i], dup[i] = r.Lost, r.Duplicates
			top = math.Max(top, math.Max(r.Lost, r.Duplicates))
		}
		if err := addBars(p, leg, nodes, []string{"lost", "duplicates (suppressed)"}, [][]float64{lost, dup},
			[]color.Color{palette[3], palette[1]}, 0); err != nil {
			return nil, err
		}
		p.Y.Min, p.Y.Max = 0, top*1.05
	}
	if err := add("loss_"+s.Name+".png", p, leg); err != nil {
		return nil, err
	}
	return names, nil
}

// comparePlots is the data behind the comparison plots, kept apart from
// the drawing so that it can be compared with golden files.
type comparePlots struct {
	CDFs []namedCDF `json:"latency_cdfs"` // per scenario: ms, fraction of deliveries
	// Percentiles are p50, p90, p99 and p99.9 in ms per scenario (at least
	// minLatencyMS, for the log axis).
	Percentiles []namedBars `json:"percentiles"`
	Labels      []string    `json:"labels"`
	BottomMS    float64     `json:"bottom_ms"` // where the bars rise from
	TopMS       float64     `json:"top_ms"`
}

type namedCDF struct {
	Name   string       `json:"scenario"`
	Points [][2]float64 `json:"points"`
}

type namedBars struct {
	Name   string    `json:"scenario"`
	Values []float64 `json:"values"`
}

// comparePlotData computes the comparison plots' series.
func comparePlotData(ss []ScenarioSummary) comparePlots {
	d := comparePlots{Labels: []string{"p50", "p90", "p99", "p99.9"}}
	lo, hi := math.Inf(1), minLatencyMS
	for _, s := range ss {
		if pts := cdfPoints(s.all, 2000); len(pts) > 0 {
			d.CDFs = append(d.CDFs, namedCDF{Name: s.Name, Points: pairs(pts)})
		}
		l := s.LatencyMS
		vals := []float64{l.P50, l.P90, l.P99, l.P999}
		for i, v := range vals {
			vals[i] = math.Max(v, minLatencyMS)
			lo, hi = math.Min(lo, vals[i]), math.Max(hi, vals[i])
		}
		d.Percentiles = append(d.Percentiles, namedBars{Name: s.Name, Values: vals})
	}
	// Bars rise from the decade below the smallest value.
	d.BottomMS = math.Pow10(int(math.Floor(math.Log10(math.Min(lo, hi)))) - 1)
	d.TopMS = hi * 1.5
	return d
}

// plotComparison overlays the scenarios' CDFs and sets their percentiles side
// by side; it returns the file names.
func plotComparison(ctx context.Context, dir string, d comparePlots) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := newPlot("latency CDF by scenario", "one-way latency (ms, log scale)", "fraction of deliveries")
	leg := newLegend()
	for i, c := range d.CDFs {
		l, err := plotter.NewLine(xysOf(c.Points))
		if err != nil {
			return nil, err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		leg.Add(c.Name, l)
	}
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	if err := save(p, leg, outPath(dir, "compare_cdf.png")); err != nil {
		return nil, err
	}

	// A short y label: gonum centres a log axis' label box on the arithmetic
	// middle of the range, near the top, and a long one squeezes the plot.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p = newPlot("one-way latency percentiles by scenario (log scale)", "percentile", "latency (ms)")
	leg = newLegend()
	var names []string
	var series [][]float64
	for _, b := range d.Percentiles {
		names = append(names, b.Name)
		series = append(series, b.Values)
	}
	if err := addBars(p, leg, d.Labels, names, series, palette, d.BottomMS); err != nil {
		return nil, err
	}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	p.Y.Min, p.Y.Max = d.BottomMS, d.TopMS
	if err := save(p, leg, outPath(dir, "compare_percentiles.png")); err != nil {
		return nil, err
	}
	return []string{"compare_cdf.png", "compare_percentiles.png"}, nil
}
