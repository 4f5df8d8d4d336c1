package analysis

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot size: 8.33 in at gonum's 96 dpi is 800 px wide.
const (
	plotW = 800 * vg.Inch / 96
	plotH = 500 * vg.Inch / 96
)

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
}

// minLatencyMS keeps log axes away from zero.
const minLatencyMS = 0.001

// cdfPoints returns the empirical CDF of sorted µs samples as (ms, fraction)
// points, at most maxPoints of them (every rank is kept for small inputs).
func cdfPoints(sorted []int32, maxPoints int) plotter.XYs {
	n := len(sorted)
	if n == 0 {
		return nil
	}
	step := max(1, n/maxPoints)
	var xy plotter.XYs
	for i := 0; i < n; i += step {
		xy = append(xy, plotter.XY{X: math.Max(float64(sorted[i])/1000, minLatencyMS), Y: float64(i+1) / float64(n)})
	}
	if last := xy[len(xy)-1]; last.Y != 1 {
		xy = append(xy, plotter.XY{X: math.Max(float64(sorted[n-1])/1000, minLatencyMS), Y: 1})
	}
	return xy
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

func save(p *plot.Plot, path string) error {
	if err := p.Save(plotW, plotH, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

func logX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
}

// plotScenario writes the per-scenario plots and returns their file names.
func plotScenario(dir string, s ScenarioSummary, timeline []point) ([]string, error) {
	var names []string
	add := func(name string, p *plot.Plot) error {
		names = append(names, name)
		return save(p, outPath(dir, name))
	}
	slices.Sort(s.all)

	p := newPlot(s.Name+": latency CDF", "one-way latency (ms, log scale)", "fraction of deliveries")
	if pts := cdfPoints(s.all, 2000); len(pts) > 0 {
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = palette[0]
		p.Add(l)
		logX(p)
	}
	if err := add("latency_cdf_"+s.Name+".png", p); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": latency histogram", "one-way latency (ms)", "deliveries")
	if len(s.all) > 0 {
		vals := make(plotter.Values, len(s.all))
		// Clip at p99.9 so one outlier does not squash the histogram.
		limit := float64(s.all[min(len(s.all)-1, int(float64(len(s.all))*0.999))]) / 1000
		for i, v := range s.all {
			vals[i] = math.Min(float64(v)/1000, limit)
		}
		h, err := plotter.NewHist(vals, 50)
		if err != nil {
			return nil, err
		}
		h.FillColor = palette[0]
		p.Add(h)
		p.X.Label.Text = "one-way latency (ms, clipped at p99.9)"
	}
	if err := add("latency_hist_"+s.Name+".png", p); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": latency over time", "time since first delivery (s)", "one-way latency (ms)")
	if len(timeline) > 0 {
		t0 := timeline[0].x
		maxY := 0.0
		xy := make(plotter.XYs, len(timeline))
		for i, pt := range timeline {
			xy[i] = plotter.XY{X: (pt.x - t0) / 1e9, Y: pt.y}
			maxY = math.Max(maxY, pt.y)
		}
		for i, f := range s.Faults {
			x0, x1 := (float64(f.StartNS)-t0)/1e9, (float64(f.EndNS)-t0)/1e9
			poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: maxY}, {X: x0, Y: maxY}})
			if err != nil {
				return nil, err
			}
			poly.Color = color.NRGBA{214, 39, 40, 60}
			poly.LineStyle.Width = 0
			p.Add(poly)
			if i == 0 {
				p.Legend.Add("fault: "+f.Name+" "+f.Target, poly)
			}
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: palette[0], Radius: vg.Points(1), Shape: draw.CircleGlyph{}}
		p.Add(sc)
	}
	if err := add("latency_time_"+s.Name+".png", p); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": delivered throughput", "time since first delivery (s)", "deliveries per second")
	if len(s.throughput) > 0 {
		l, err := plotter.NewLine(plotter.XYs(toXYs(s.throughput)))
		if err != nil {
			return nil, err
		}
		l.Color = palette[2]
		p.Add(l)
	}
	if err := add("throughput_"+s.Name+".png", p); err != nil {
		return nil, err
	}

	p = newPlot(s.Name+": loss and duplicates per receiver", "receiver", "messages")
	if len(s.Receivers) > 0 {
		lost, dup := make(plotter.Values, len(s.Receivers)), make(plotter.Values, len(s.Receivers))
		var nodes []string
		for i, r := range s.Receivers {
			lost[i], dup[i] = float64(r.Lost), float64(r.Duplicates)
			nodes = append(nodes, r.Node)
		}
		w := vg.Points(18)
		bl, err := plotter.NewBarChart(lost, w)
		if err != nil {
			return nil, err
		}
		bl.Color, bl.Offset = palette[3], -w/2
		bd, err := plotter.NewBarChart(dup, w)
		if err != nil {
			return nil, err
		}
		bd.Color, bd.Offset = palette[1], w/2
		p.Add(bl, bd)
		p.Legend.Add("lost", bl)
		p.Legend.Add("duplicates (suppressed)", bd)
		p.NominalX(nodes...)
		p.Y.Min = 0
		p.Y.Max = math.Max(p.Y.Max, 1)
	}
	if err := add("loss_"+s.Name+".png", p); err != nil {
		return nil, err
	}
	return names, nil
}

func toXYs(pts []point) plotter.XYs {
	xy := make(plotter.XYs, len(pts))
	for i, p := range pts {
		xy[i] = plotter.XY{X: p.x, Y: p.y}
	}
	return xy
}

// plotComparison overlays the scenarios' CDFs and sets their percentiles side
// by side; it returns the file names.
func plotComparison(dir string, ss []ScenarioSummary) ([]string, error) {
	p := newPlot("latency CDF by scenario", "one-way latency (ms, log scale)", "fraction of deliveries")
	for i, s := range ss {
		slices.Sort(s.all)
		pts := cdfPoints(s.all, 2000)
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	logX(p)
	p.Legend.Top, p.Legend.Left = false, false
	if err := save(p, outPath(dir, "compare_cdf.png")); err != nil {
		return nil, err
	}

	p = newPlot("latency percentiles by scenario", "percentile", "one-way latency (ms)")
	labels := []string{"p50", "p90", "p99", "p99.9"}
	n := float64(len(ss))
	w := vg.Points(math.Min(60/n, 20))
	for i, s := range ss {
		l := s.LatencyMS
		bars, err := plotter.NewBarChart(plotter.Values{l.P50, l.P90, l.P99, l.P999}, w)
		if err != nil {
			return nil, err
		}
		bars.Color = palette[i%len(palette)]
		bars.Offset = vg.Length(float64(i)-(n-1)/2) * w
		p.Add(bars)
		p.Legend.Add(s.Name, bars)
	}
	p.NominalX(labels...)
	p.Legend.Top, p.Legend.Left = true, true
	if err := save(p, outPath(dir, "compare_percentiles.png")); err != nil {
		return nil, err
	}
	return []string{"compare_cdf.png", "compare_percentiles.png"}, nil
}
