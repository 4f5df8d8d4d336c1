package benchcompare

import (
	"bufio"
	"errors"
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// brokerColors colour the brokers in AllBrokers order.
var brokerColors = []color.Color{
	color.RGBA{127, 127, 127, 255}, color.RGBA{31, 119, 180, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{255, 127, 14, 255}, color.RGBA{214, 39, 40, 255},
}

const plotDPI = 96

// writePlot draws compare.png: per load (columns), p50 and p99 bars per
// broker on top and msg/s (ramp: capacity) bars below.
func (r Report) writePlot(path string) error {
	if len(r.Loads) == 0 {
		return errors.New("plot: no loads")
	}
	w := vg.Length(320*len(r.Loads)) * vg.Inch / plotDPI
	h := 760 * vg.Inch / plotDPI
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: len(r.Loads), PadX: vg.Points(8), PadY: vg.Points(8),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	for col, load := range r.Loads {
		lat, err := r.barPlot(load, "latency (ms)", []string{"p50", "p99"},
			func(f Figures) []float64 { return []float64{f.P50MS, f.P99MS} })
		if err != nil {
			return err
		}
		lat.Title.Text = load
		label := "msg/s"
		if load == "ramp" {
			label = "zero-loss capacity (msg/s)"
		}
		thr, err := r.barPlot(load, label, []string{label}, func(f Figures) []float64 { return []float64{f.MsgPerS} })
		if err != nil {
			return err
		}
		lat.Draw(tiles.At(dc, col, 0))
		thr.Draw(tiles.At(dc, col, 1))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(bw)
	if err = errors.Join(err, bw.Flush(), f.Close()); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// barPlot is one panel: a group of bars per category, one bar per broker.
func (r Report) barPlot(load, ylabel string, categories []string, values func(Figures) []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	barW := vg.Points(10)
	var shown []string
	for _, broker := range r.Brokers {
		if res, ok := r.find(load, broker); ok && res.Error == "" {
			shown = append(shown, broker)
		}
	}
	for i, broker := range shown {
		res, _ := r.find(load, broker)
		bars, err := plotter.NewBarChart(plotter.Values(values(res.Figures)), barW)
		if err != nil {
			return nil, fmt.Errorf("plot %s %s: %w", load, broker, err)
		}
		bars.Color = brokerColor(broker)
		bars.LineStyle.Width = 0
		bars.Offset = barW * vg.Length(2*i-len(shown)+1) / 2
		p.Add(bars)
		p.Legend.Add(broker, bars)
	}
	p.NominalX(categories...)
	return p, nil
}

func brokerColor(name string) color.Color {
	for i, b := range AllBrokers {
		if b == name {
			return brokerColors[i%len(brokerColors)]
		}
	}
	return color.Black
}
