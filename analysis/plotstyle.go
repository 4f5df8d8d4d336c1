package analysis

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot size: 800 by 500 px.
const (
	plotDPI = 96
	plotW   = 800 * vg.Inch / plotDPI
	plotH   = 500 * vg.Inch / plotDPI
)

// palette holds twelve colours told apart on screen and in print: Tableau's
// ten, black and a dark gold. Single-scenario plots use the first four for
// fixed roles (latency, via sync, throughput, lost).
var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255}, color.RGBA{0, 0, 0, 255}, color.RGBA{184, 134, 11, 255},
}

// dashPatterns go with the colours, so that neighbouring series stay apart
// in a greyscale print too.
var dashPatterns = [][]vg.Length{
	nil,
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1.5), vg.Points(2.5)},
	{vg.Points(7), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
}

// seriesStyle is the line style of the i-th series of a comparison: up to
// len(palette) series each have a colour of their own; past that, colours
// repeat with another dash pattern, so (colour, dashes) stays unique.
func seriesStyle(i int) draw.LineStyle {
	d := (i%len(dashPatterns) + i/len(palette)) % len(dashPatterns)
	return draw.LineStyle{Color: palette[i%len(palette)], Width: vg.Points(1.5), Dashes: dashPatterns[d]}
}

// faultColors shade fault windows, one colour per distinct fault.
var faultColors = []color.Color{
	color.NRGBA{214, 39, 40, 50}, color.NRGBA{148, 103, 189, 60}, color.NRGBA{140, 86, 75, 60},
	color.NRGBA{127, 127, 127, 60},
}

// minLatencyMS keeps log axes away from zero.
const minLatencyMS = 0.001

// newPlot returns an empty plot in the analysis' style, with a grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.X.Tick.Marker, p.Y.Tick.Marker = linTicks{}, linTicks{}
	return p
}

// save writes p as a PNG to path, with leg, if it has entries, in a column
// right of p's area: a legend outside the data area never hides data.
func save(p *plot.Plot, leg *plot.Legend, path string) error {
	img := vgimg.NewWith(vgimg.UseWH(plotW, plotH), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	if size := leg.Rectangle(dc).Size(); size.Y <= 0 {
		p.Draw(dc)
	} else {
		gap := vg.Points(8)
		width := size.X + 2*gap
		p.Draw(draw.Crop(dc, 0, -width, 0, 0))
		top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding + gap
		leg.Top, leg.Left = true, true
		leg.XOffs, leg.YOffs = 0, 0
		leg.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-width+gap, -gap, 0, -top))
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

// linTicks are about four to eight labelled ticks at a 1-2-5 step, with an
// unlabelled one between each pair, labelled with just the decimals the
// step needs ("1.2", not "1.2000000000000002" or "1.20"). With whole set
// (axes that count things) the ticks are on whole numbers only.
type linTicks struct{ whole bool }

// Ticks implements plot.Ticker.
func (lt linTicks) Ticks(lo, hi float64) []plot.Tick {
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
	if lt.whole && step < 1 {
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
		if lt.whole && v != math.Trunc(v) {
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

// addBars draws grouped bars: series[j].Values[i] is the bar of series j in
// group i, in colors[j], groups at x = 0, 1, ..., bars rising from bottom.
func addBars(p *plot.Plot, leg *plot.Legend, groups []string, series []namedBars, colors []color.Color, bottom float64) error {
	w := 0.8 / float64(len(series))
	for j, s := range series {
		var rings []plotter.XYer
		for i, v := range s.Values {
			if v <= bottom {
				continue
			}
			x0 := float64(i) - 0.4 + float64(j)*w
			rings = append(rings, plotter.XYs{{X: x0, Y: bottom}, {X: x0 + w, Y: bottom}, {X: x0 + w, Y: v}, {X: x0, Y: v}})
		}
		poly := &plotter.Polygon{}
		if len(rings) > 0 {
			var err error
			if poly, err = plotter.NewPolygon(rings...); err != nil {
				return err
			}
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		poly.Color = colors[j%len(colors)]
		leg.Add(s.Name, poly)
	}
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	ticks := make(plot.ConstantTicks, len(groups))
	for i, g := range groups {
		ticks[i] = plot.Tick{Value: float64(i), Label: g}
	}
	p.X.Tick.Marker = ticks
	return nil
}

// shadeFaults shades each fault window from y lo to hi on p, adding one
// legend entry per distinct fault.
func shadeFaults(p *plot.Plot, leg *plot.Legend, faults []faultSpan, lo, hi float64) error {
	inLegend := map[string]bool{}
	for _, f := range faults {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: f.FromS, Y: lo}, {X: f.ToS, Y: lo}, {X: f.ToS, Y: hi}, {X: f.FromS, Y: hi}})
		if err != nil {
			return err
		}
		poly.Color = faultColors[f.colorIdx%len(faultColors)]
		poly.LineStyle.Width = 0
		p.Add(poly)
		if !inLegend[f.Label] {
			inLegend[f.Label] = true
			leg.Add(f.Label, poly)
		}
	}
	return nil
}
