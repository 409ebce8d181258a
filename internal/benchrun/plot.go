package benchrun

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws bench/results.png: receive throughput (ours against the
// baseline, with the ratio over each pair), the whole update's phases as
// shares of its total, and the peak RSS of every dom0 process in the
// memory cases against the 64 MiB target.
func (r *Results) WritePlot(path string) error {
	var panels []*plot.Plot
	for _, build := range []func() (*plot.Plot, error){r.receivePlot, r.updatePlot, r.memoryPlot} {
		p, err := build()
		if err != nil {
			return err
		}
		if p != nil {
			panels = append(panels, p)
		}
	}
	if len(panels) == 0 {
		return nil
	}
	const tileWidth, height = 5 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(vg.Length(len(panels))*tileWidth, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *Results) receivePlot() (*plot.Plot, error) {
	if len(r.Receive) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Receive pipeline (same stream, same run)"
	p.Y.Label.Text = "MiB/s (higher is better)"
	ours, baseline := make(plotter.Values, len(r.Receive)), make(plotter.Values, len(r.Receive))
	names := make([]string, len(r.Receive))
	ratios := plotter.XYLabels{XYs: make(plotter.XYs, len(r.Receive)), Labels: make([]string, len(r.Receive))}
	for i, x := range r.Receive {
		ours[i], baseline[i] = x.OursMiBps, x.BaselineMiBps
		names[i] = fmt.Sprintf("%d pkgs, %.0f MiB", x.Packages, float64(x.Bytes)/(1<<20))
		ratios.XYs[i] = plotter.XY{X: float64(i), Y: max(x.OursMiBps, x.BaselineMiBps)}
		ratios.Labels[i] = fmt.Sprintf("%.1f×", x.Ratio)
	}
	width := vg.Points(28)
	for j, series := range []struct {
		name   string
		values plotter.Values
	}{{"pedos-receive-updates", ours}, {"baseline: unpack, rpmkeys -K each, createrepo_c", baseline}} {
		bars, err := plotter.NewBarChart(series.values, width)
		if err != nil {
			return nil, err
		}
		bars.Color, bars.LineStyle.Width = plotutil.Color(j), 0
		bars.Offset = width * vg.Length(2*j-1) / 2
		p.Add(bars)
		p.Legend.Add(series.name, bars)
	}
	labels, err := plotter.NewLabels(ratios)
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].XAlign, labels.TextStyle[i].YAlign = draw.XCenter, draw.YBottom
	}
	p.Add(labels)
	p.Legend.Top = true
	p.NominalX(names...)
	p.Y.Max *= 1.3 // room for the legend
	return p, nil
}

func (r *Results) updatePlot() (*plot.Plot, error) {
	if len(r.Update) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Whole update (pedos-dom0-update -y, lab)"
	p.Y.Label.Text = "share of the total (%)"
	names := make([]string, len(r.Update))
	for i, u := range r.Update {
		names[i] = fmt.Sprintf("%d pkgs, %.0f s", u.Packages, u.TotalSeconds)
	}
	var below *plotter.BarChart
	for j, phase := range Phases {
		values := make(plotter.Values, len(r.Update))
		for i, u := range r.Update {
			values[i] = 100 * u.Phases[phase] / u.TotalSeconds
		}
		bars, err := plotter.NewBarChart(values, vg.Points(40))
		if err != nil {
			return nil, err
		}
		bars.Color, bars.LineStyle.Width = phaseColor(j), 0
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(phase, bars)
	}
	p.Legend.Left, p.Legend.Top = false, true
	p.Legend.XOffs = vg.Points(0)
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, 140 // room for the legend above 100 %
	return p, nil
}

// phaseColor gives our phases saturated colours and the two dnf phases
// (not ours) grey ones, so the share that is ours reads at a glance.
func phaseColor(i int) color.Color {
	switch Phases[i] {
	case "download":
		return color.RGBA{R: 190, G: 190, B: 190, A: 255}
	case "dnf":
		return color.RGBA{R: 130, G: 130, B: 130, A: 255}
	}
	return plotutil.Color(i)
}

// shortLabels shortens process names so that they fit under their bars.
var shortLabels = strings.NewReplacer("qfile-dom0-unpacker", "unpacker", "pedos-receive-updates", "service", "createrepo_c", "createrepo")

func (r *Results) memoryPlot() (*plot.Plot, error) {
	if len(r.Memory) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Peak RSS of each dom0 process (ours)"
	p.Y.Label.Text = "MiB (target < 64)"
	var names, labels []string
	for _, proc := range r.Memory[0].Ours {
		names = append(names, proc.Name)
		labels = append(labels, shortLabels.Replace(proc.Name))
	}
	width := vg.Points(22)
	for j, m := range r.Memory {
		peaks := map[string]float64{}
		for _, proc := range m.Ours {
			peaks[proc.Name] = proc.PeakMiB
		}
		values := make(plotter.Values, len(names))
		for i, name := range names {
			values[i] = peaks[name]
		}
		bars, err := plotter.NewBarChart(values, width)
		if err != nil {
			return nil, err
		}
		bars.Color, bars.LineStyle.Width = plotutil.Color(j), 0
		bars.Offset = width * vg.Length(2*j-len(r.Memory)+1) / 2
		p.Add(bars)
		p.Legend.Add(m.Case, bars)
	}
	target, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: targetRSSMiB}, {X: float64(len(names)) - 0.5, Y: targetRSSMiB}})
	if err != nil {
		return nil, err
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target)
	p.Legend.Add("target", target)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.Y.Min, p.Y.Max = 0, targetRSSMiB*1.4
	return p, nil
}
