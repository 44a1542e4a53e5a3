package loadtest

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"os"
	"strconv"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: the summary, then a chart per timeline figure.
// The page has no script and loads nothing: its style is inline and its charts are inline SVG.
func (r *Report) WriteHTML(path string) error {
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, r.htmlPage()); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

type htmlPage struct {
	R         *Report
	State     string
	Rows      []htmlRow
	Quantiles []htmlQuantiles
	Charts    []chartSVG // none if the timeline is empty
}

type htmlRow struct {
	Name, Value string
	Warn        bool
}

type htmlQuantiles struct {
	Name string
	Q    Quantiles
	Note string
}

// htmlPage gathers the facts WriteSummary prints, and the charts.
func (r *Report) htmlPage() htmlPage {
	p := htmlPage{R: r, State: "complete"}
	if r.Partial {
		p.State = "partial (stopped early)"
	}
	harness := fmt.Sprintf("%.2f cores", r.HarnessCPUCores)
	if r.HarnessSaturated {
		harness += " (SATURATED: the harness, not the server, may be the limit)"
	}
	p.Rows = []htmlRow{
		{"run", p.State, r.Partial},
		{"users", r.usersLine(), false},
		{"joined", fmt.Sprintf("%d joined, %d failed to join, %d disconnected", r.Joined, r.JoinFailed, r.Disconnects),
			r.JoinFailed > 0 || r.Disconnects > 0},
		{"duration", fmt.Sprintf("%.1f s", r.DurationS), false},
		{"stability", fmt.Sprintf("%.3f %% of %d user-seconds", 100*r.Stability, r.UserSeconds), false},
		{"audio streams", r.audioStreamsLine(), false},
		{"loss", fmt.Sprintf("%.4f %% of %d packets", 100*r.Loss, r.PacketsRecv), false},
		{"freezes", fmt.Sprintf("%d (no frame for over %v) in %d frames", r.Freezes, FreezeGap, r.FramesRecv), false},
		{"bitrate", fmt.Sprintf("%.1f Mbit/s received, %.1f Mbit/s sent", r.RecvMbps, r.SentMbps), false},
		{"sfu", fmt.Sprintf("%.2f cores, %.0f MB resident (peak %.0f MB)", r.SFUCPUCores, r.SFURSSMB, r.SFURSSPeakMB), false},
		{"harness", harness, r.HarnessSaturated},
		{"cpu per packet", fmt.Sprintf("server %.1f µs (%d forwarded), harness %.1f µs (%d received)", r.ServerUSPerPacket,
			r.PacketsForwarded, r.HarnessUSPerPacket, r.PacketsRecv), false},
		{"keyframe requests", fmt.Sprintf("%d", r.KeyframeRequests), false},
		{"forwarded", fmt.Sprintf("%.0f packets/s by the server after the joins", r.PacketsForwardedPerS), false},
	}
	p.Quantiles = []htmlQuantiles{
		{"join", r.JoinMS, "WebSocket open to the first remote video frame"},
		{"latency", r.LatencyMS, "publisher send to subscriber receipt"},
		{"sfu latency", r.SFULatencyMS, "the server's histogram, arrival to last copy sent"},
	}
	if len(r.Timeline) > 0 {
		p.Charts = r.charts()
	}
	return p
}

// charts draws the timeline.
func (r *Report) charts() []chartSVG {
	col := func(f func(Sample) float64) []float64 {
		v := make([]float64, len(r.Timeline))
		for i, s := range r.Timeline {
			v[i] = f(s)
		}
		return v
	}
	t := col(func(s Sample) float64 { return s.T })
	charts := []chartSVG{
		lineChart("Connected users", t, chartOpts{Unit: "users", FromZero: true},
			chartSeries{Name: "connected", Y: col(func(s Sample) float64 { return float64(s.Connected) })}),
		lineChart("Stable users (received every stream that second)", t, chartOpts{Unit: "%", Refs: []float64{99.95}},
			chartSeries{Name: "stable", Y: col(func(s Sample) float64 { return 100 * s.Stable })}),
		lineChart("Received bitrate", t, chartOpts{Unit: "Mbit/s", FromZero: true},
			chartSeries{Name: "received", Y: col(func(s Sample) float64 { return s.RecvMbps })}),
		lineChart("Latency, publisher to subscriber", t, chartOpts{Unit: "ms", FromZero: true},
			chartSeries{Name: "p50", Y: col(func(s Sample) float64 { return s.LatencyP50 })},
			chartSeries{Name: "p99", Y: col(func(s Sample) float64 { return s.LatencyP99 })}),
		lineChart("Packet loss and freezes", t, chartOpts{Unit: "%", RightUnit: "freezes/s", FromZero: true},
			chartSeries{Name: "loss %", Y: col(func(s Sample) float64 { return 100 * s.Loss })},
			chartSeries{Name: "freezes per second", Right: true, Bars: true, Y: col(func(s Sample) float64 { return float64(s.Freezes) })}),
		lineChart("CPU", t, chartOpts{Unit: "cores", FromZero: true},
			chartSeries{Name: "SFU", Y: col(func(s Sample) float64 { return s.SFUCPU })},
			chartSeries{Name: "harness", Y: col(func(s Sample) float64 { return s.HarnessCPU })}),
		lineChart("SFU resident memory", t, chartOpts{Unit: "MB", FromZero: true},
			chartSeries{Name: "RSS", Y: col(func(s Sample) float64 { return s.SFURSSMB })}),
	}
	if r.Scenario == AllHands {
		charts = append(charts, lineChart("Audio tracks a listener received packets from", t, chartOpts{Unit: "tracks", FromZero: true},
			chartSeries{Name: "mean", Y: col(func(s Sample) float64 { return s.AudioStreams })},
			chartSeries{Name: "most", Y: col(func(s Sample) float64 { return float64(s.AudioStreamsMax) })}))
	}
	return charts
}

// chartSeries is one line (or set of bars) of a chart, a value per x; NaN and ±Inf values are left out.
type chartSeries struct {
	Name  string
	Y     []float64
	Right bool // on a second y axis, at the right
	Bars  bool
}

type chartOpts struct {
	Unit, RightUnit string    // of the left and right y axes; RightUnit "" for none
	FromZero        bool      // the y axes include 0
	Refs            []float64 // dashed horizontal reference lines on the left axis
}

// chartSVG is a chart laid out in pixels, for the template.
type chartSVG struct {
	Title, Unit, RightUnit   string
	W, H                     int
	Left, Right, Top, Bottom float64 // the plot area
	XTicks, YTicks, RTicks   []chartTick
	Refs                     []chartTick
	Lines                    []chartLine
	Bars                     []chartBar
	Legend                   []chartLegend
	NoData                   bool
}

type chartTick struct {
	Pos   float64 // pixel
	Label string
}

type chartLine struct{ D, Color string }

type chartBar struct {
	X, Y, W, H float64
	Color      string
}

type chartLegend struct {
	X     float64
	Name  string
	Color string
	Bar   bool
}

var chartPalette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"}

const (
	chartW, chartH = 800, 220
	chartMargin    = 60 // at the left, and at the right if there is a right axis
)

// lineChart lays out a chart of the series over x (seconds).
func lineChart(title string, x []float64, o chartOpts, ss ...chartSeries) chartSVG {
	c := chartSVG{Title: title, Unit: o.Unit, RightUnit: o.RightUnit, W: chartW, H: chartH,
		Left: chartMargin, Right: chartW - 20, Top: 44, Bottom: chartH - 36}
	if o.RightUnit != "" {
		c.Right = chartW - chartMargin
	}

	lo, hi, ok := chartRange(x)
	xs := chartNewScale(min(lo, 0), hi, ok, false, 8, chartMinStep(x), c.Left, c.Right)
	c.XTicks = xs.ticks()

	var left, right, all [][]float64
	for _, s := range ss {
		if s.Right {
			right = append(right, s.Y)
		} else {
			left = append(left, s.Y)
		}
		all = append(all, s.Y)
	}
	_, _, hasData := chartRange(all...)
	c.NoData = !hasData
	scale := func(vs [][]float64) chartScale {
		lo, hi, ok := chartRange(vs...)
		if ok && o.FromZero {
			lo, hi = min(lo, 0), max(hi, 0)
		}
		return chartNewScale(lo, hi, ok, true, 4, chartMinStep(vs...), c.Bottom, c.Top)
	}
	ys, rs := scale(append(left, o.Refs)), scale(right)
	c.YTicks = ys.ticks()
	if o.RightUnit != "" {
		c.RTicks = rs.ticks()
	}
	for _, v := range o.Refs {
		c.Refs = append(c.Refs, chartTick{ys.px(v), strconv.FormatFloat(v, 'f', -1, 64) + " " + o.Unit})
	}

	for i, s := range ss {
		color := chartPalette[i%len(chartPalette)]
		sy := ys
		if s.Right {
			sy = rs
		}
		if s.Bars {
			c.Bars = append(c.Bars, chartBars(x, s.Y, xs, sy, color)...)
		} else if d := chartPath(x, s.Y, xs, sy); d != "" {
			c.Lines = append(c.Lines, chartLine{d, color})
		}
		if len(ss) > 1 {
			c.Legend = append(c.Legend, chartLegend{Name: s.Name, Color: color, Bar: s.Bars})
		}
	}
	// The legend is right-aligned on the title's line; text is about 6.5 px a character at 11 px.
	at := float64(chartW - 10)
	for i := len(c.Legend) - 1; i >= 0; i-- {
		at -= 20 + 6.5*float64(len(c.Legend[i].Name))
		c.Legend[i].X = at
		at -= 14
	}
	return c
}

// chartPath is SVG path data through the finite points, broken where a value is missing; a lone point is drawn
// as a small circle.
func chartPath(x, y []float64, xs, ys chartScale) string {
	n := min(len(x), len(y))
	pt := func(i int) (px, py float64, ok bool) {
		if i < 0 || i >= n {
			return 0, 0, false
		}
		px, py = xs.px(x[i]), ys.px(y[i])
		return px, py, chartFinite(px) && chartFinite(py)
	}
	var b strings.Builder
	for i := range n {
		px, py, ok := pt(i)
		_, _, prev := pt(i - 1)
		_, _, next := pt(i + 1)
		switch {
		case !ok:
		case prev:
			fmt.Fprintf(&b, "L%.1f,%.1f", px, py)
		case next:
			fmt.Fprintf(&b, "M%.1f,%.1f", px, py)
		default:
			fmt.Fprintf(&b, "M%.1f,%.1fm-2.5,0a2.5,2.5 0 1,0 5,0a2.5,2.5 0 1,0 -5,0", px, py)
		}
	}
	return b.String()
}

// chartBars is a bar from 0 for every finite nonzero value.
func chartBars(x, y []float64, xs, ys chartScale, color string) []chartBar {
	n := min(len(x), len(y))
	w := min(max(0.6*(xs.p1-xs.p0)/float64(n), 1), 12)
	var bars []chartBar
	for i := range n {
		px, py, p0 := xs.px(x[i]), ys.px(y[i]), ys.px(0)
		if !chartFinite(px) || !chartFinite(py) || y[i] == 0 {
			continue
		}
		bars = append(bars, chartBar{X: px - w/2, Y: min(py, p0), W: w, H: math.Abs(py - p0), Color: color})
	}
	return bars
}

// chartScale maps [lo, hi] to pixels [p0, p1], with ticks every step.
type chartScale struct{ lo, hi, step, p0, p1 float64 }

// chartNewScale makes a scale over [lo, hi] (or [0, 1] if !ok) with about n round ticks, at least minStep apart.
// If extend, the range is widened to whole ticks.
func chartNewScale(lo, hi float64, ok, extend bool, n int, minStep, p0, p1 float64) chartScale {
	if !ok || !chartFinite(hi-lo) {
		lo, hi = 0, 1
	}
	if hi <= lo {
		if lo == 0 {
			hi = 1
		} else {
			d := math.Abs(lo) * 0.01
			lo, hi = lo-d, hi+d
		}
	}
	step := max(chartNiceStep((hi-lo)/float64(n)), minStep)
	if extend {
		lo, hi = math.Floor(lo/step+1e-9)*step, math.Ceil(hi/step-1e-9)*step
	}
	return chartScale{lo, hi, step, p0, p1}
}

func (s chartScale) px(v float64) float64 { return s.p0 + (v-s.lo)/(s.hi-s.lo)*(s.p1-s.p0) }

func (s chartScale) ticks() []chartTick {
	dec := 0
	if s.step < 1 {
		dec = int(math.Ceil(-math.Log10(s.step) - 1e-9))
	}
	var ts []chartTick
	first := math.Ceil(s.lo/s.step-1e-9) * s.step
	for i := 0; i < 50; i++ {
		v := first + float64(i)*s.step
		if v > s.hi+s.step*1e-6 {
			break
		}
		if math.Abs(v) < s.step*1e-6 {
			v = 0 // not -0
		}
		label := strconv.FormatFloat(v, 'f', dec, 64)
		if math.Abs(v) >= 1e9 {
			label = strconv.FormatFloat(v, 'g', 4, 64)
		}
		ts = append(ts, chartTick{s.px(v), label})
	}
	return ts
}

// chartNiceStep rounds raw up to 1, 2 or 5 times a power of ten.
func chartNiceStep(raw float64) float64 {
	if !(raw > 0) || !chartFinite(raw) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		return mag
	case f <= 2:
		return 2 * mag
	case f <= 5:
		return 5 * mag
	default:
		return 10 * mag
	}
}

// chartMinStep is 1 if every value is a whole number (a count), so that ticks are too, else 0.
func chartMinStep(vs ...[]float64) float64 {
	for _, v := range vs {
		for _, y := range v {
			if chartFinite(y) && y != math.Trunc(y) {
				return 0
			}
		}
	}
	return 1
}

// chartRange is the least and greatest finite value; ok is false if there is none.
func chartRange(vs ...[]float64) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		for _, y := range v {
			if chartFinite(y) {
				lo, hi, ok = min(lo, y), max(hi, y), true
			}
		}
	}
	return lo, hi, ok
}

// chartFinite reports whether v can be drawn: it is not NaN, and it is finite and small enough that ranges and
// ticks computed from it do not overflow.
func chartFinite(v float64) bool { return math.Abs(v) <= 1e300 }

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":   func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"ms":  ms,
	"add": func(a, b float64) float64 { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Load test: {{.R.Scenario}} – {{.R.URL}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 24px; max-width: 820px; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 24px 0 4px; }
.url { color: #555; margin: 0 0 12px; overflow-wrap: anywhere; }
.banner { background: #fdecea; border: 1px solid #e6a19a; color: #8a1c12; padding: 6px 10px; margin: 8px 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { text-align: left; padding: 3px 14px 3px 0; vertical-align: top; }
th { font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.note { color: #666; }
tr.warn td, tr.warn th { color: #b3261e; font-weight: 600; }
svg.chart { display: block; margin: 6px 0 14px; font-family: system-ui, sans-serif; }
svg .title { font-size: 13px; font-weight: 600; fill: #222; }
svg .tick, svg .unit, svg .legend { font-size: 11px; fill: #555; }
svg .grid { stroke: #e6e6e6; }
svg .axis { stroke: #888; }
svg .line { fill: none; stroke-width: 1.8; stroke-linejoin: round; stroke-linecap: round; }
svg .ref { stroke: #b3261e; stroke-dasharray: 6 4; }
svg text.ref { stroke: none; fill: #b3261e; font-size: 11px; }
svg .nodata { font-size: 13px; fill: #888; }
</style>
</head>
<body>
<h1>Load test: {{.R.Scenario}}</h1>
<p class="url">{{.R.URL}} · {{.State}}</p>
{{if .R.Partial}}<p class="banner">Partial: the run was stopped early; the figures cover {{printf "%.1f" .R.DurationS}} s.</p>
{{end}}{{if .R.HarnessSaturated}}<p class="banner">Harness saturated: it used {{printf "%.2f" .R.HarnessCPUCores}} cores, nearly all its CPUs, so the harness, not the server, may be the limit.</p>
{{end}}<table class="summary">
{{range .Rows}}<tr{{if .Warn}} class="warn"{{end}}><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
<table class="quantiles">
<tr><th>ms</th><th class="n">p50</th><th class="n">p95</th><th class="n">p99</th><th class="n">max</th><th class="n">samples</th><th></th></tr>
{{range .Quantiles}}<tr><th>{{.Name}}</th>{{if .Q.Count}}<td class="n">{{ms .Q.P50}}</td><td class="n">{{ms .Q.P95}}</td><td class="n">{{ms .Q.P99}}</td><td class="n">{{ms .Q.Max}}</td><td class="n">{{.Q.Count}}</td>{{else}}<td colspan="5">no samples</td>{{end}}<td class="note">{{.Note}}</td></tr>
{{end}}</table>
<h2>Timeline</h2>
{{range .Charts}}{{template "chart" .}}{{else}}<p class="nodata">no samples</p>
{{end}}</body>
</html>
{{define "chart"}}<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<text class="title" x="8" y="18">{{.Title}}</text>
{{range .YTicks}}<line class="grid" x1="{{f $.Left}}" x2="{{f $.Right}}" y1="{{f .Pos}}" y2="{{f .Pos}}"/><text class="tick" x="{{f $.Left}}" y="{{f .Pos}}" dx="-6" dy="4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .RTicks}}<line class="axis" x1="{{f $.Right}}" x2="{{f (add $.Right 4)}}" y1="{{f .Pos}}" y2="{{f .Pos}}"/><text class="tick" x="{{f $.Right}}" y="{{f .Pos}}" dx="6" dy="4">{{.Label}}</text>
{{end}}{{range .XTicks}}<line class="grid" x1="{{f .Pos}}" x2="{{f .Pos}}" y1="{{f $.Top}}" y2="{{f $.Bottom}}"/><text class="tick" x="{{f .Pos}}" y="{{f $.Bottom}}" dy="15" text-anchor="middle">{{.Label}}</text>
{{end}}<line class="axis" x1="{{f .Left}}" x2="{{f .Left}}" y1="{{f .Top}}" y2="{{f .Bottom}}"/>
<line class="axis" x1="{{f .Left}}" x2="{{f .Right}}" y1="{{f .Bottom}}" y2="{{f .Bottom}}"/>
{{if .RightUnit}}<line class="axis" x1="{{f .Right}}" x2="{{f .Right}}" y1="{{f .Top}}" y2="{{f .Bottom}}"/>
<text class="unit" x="{{.W}}" y="{{f .Top}}" dx="-4" dy="-12" text-anchor="end">{{.RightUnit}}</text>
{{end}}<text class="unit" x="{{f .Left}}" y="{{f .Top}}" dx="-6" dy="-12" text-anchor="end">{{.Unit}}</text>
<text class="unit" x="{{f .Right}}" y="{{.H}}" dy="-4" text-anchor="end">time (s)</text>
{{range .Bars}}<rect x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}" fill="{{.Color}}" fill-opacity="0.6"/>
{{end}}{{range .Lines}}<path class="line" d="{{.D}}" stroke="{{.Color}}"/>
{{end}}{{range .Refs}}<line class="ref" x1="{{f $.Left}}" x2="{{f $.Right}}" y1="{{f .Pos}}" y2="{{f .Pos}}"/><text class="ref" x="{{f $.Right}}" y="{{f .Pos}}" dx="-4" dy="-4" text-anchor="end">{{.Label}}</text>
{{end}}{{range .Legend}}{{if .Bar}}<rect x="{{f .X}}" y="9" width="14" height="10" fill="{{.Color}}" fill-opacity="0.6"/>{{else}}<line class="line" x1="{{f .X}}" x2="{{f (add .X 14)}}" y1="14" y2="14" stroke="{{.Color}}"/>{{end}}<text class="legend" x="{{f .X}}" y="18" dx="18">{{.Name}}</text>
{{end}}{{if .NoData}}<text class="nodata" x="50%" y="55%" text-anchor="middle">no data</text>
{{end}}</svg>
{{end}}`))
