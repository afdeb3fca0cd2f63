package loadtest

import (
	"fmt"
	"html"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// palette colours the calls in the charts (then cycles).
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// WriteHTML writes a self-contained page (no scripts, no external
// resources, well-formed XML): the summary table, the verification, and
// inline SVG charts of each call's p50 and p99 latency and throughput per
// second of the run.
func (r *Report) WriteHTML(w io.Writer) error {
	var b strings.Builder
	esc := html.EscapeString
	title := "artifactstate load test"
	if r.Scenario != "" {
		title += ": " + r.Scenario
	}
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	b.WriteString(`<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: bold; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
pre { background: #f6f6f6; padding: 8px; }
svg text { font-size: 11px; fill: #444; }
</style>
</head>
<body>
`)
	fmt.Fprintf(&b, "<h1>%s</h1>\n<p>", esc(title))
	if r.Target != "" {
		fmt.Fprintf(&b, "Target %s. ", esc(r.Target))
	}
	fmt.Fprintf(&b, "Started %s, measured %.2f s: %d calls (%.1f/s), %d errors (%d non-retriable), %d dropped.",
		esc(r.Started.Format(time.RFC3339)), r.DurationSeconds, r.Total.Count, r.Total.Throughput,
		r.Total.Errors, r.Total.NonRetriable, r.Total.Dropped)
	if r.Interrupted {
		fmt.Fprintf(&b, " <strong>Interrupted</strong> (%d calls in flight cancelled).", r.Canceled)
	}
	b.WriteString("</p>\n")
	if len(r.Params) > 0 {
		b.WriteString("<p>")
		for i, k := range slices.Sorted(maps.Keys(r.Params)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=<code>%s</code>", esc(k), esc(r.Params[k]))
		}
		b.WriteString("</p>\n")
	}

	b.WriteString("<table>\n<tr><th>call</th><th>count</th><th>calls/s</th><th>mean ms</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>dropped</th></tr>\n")
	for i, c := range append(slices.Clone(r.Calls), r.Total) {
		class := ""
		if i == len(r.Calls) {
			class = ` class="total"`
		}
		fmt.Fprintf(&b, "<tr%s><td>%s</td><td>%d</td><td>%.1f</td>", class, esc(c.Call), c.Count, c.Throughput)
		for _, v := range c.latencyCells() {
			fmt.Fprintf(&b, "<td>%s</td>", v)
		}
		fmt.Fprintf(&b, "<td>%d</td><td>%d</td></tr>\n", c.Errors, c.Dropped)
	}
	b.WriteString("</table>\n")
	if r.Total.Errors > 0 {
		b.WriteString("<h2>Errors</h2>\n<table>\n<tr><th>call</th><th>count</th><th>error</th></tr>\n")
		for _, c := range r.Calls {
			for _, msg := range slices.Sorted(maps.Keys(c.ErrorsByMessage)) {
				fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td style=\"text-align:left\">%s</td></tr>\n", esc(c.Call), c.ErrorsByMessage[msg], esc(msg))
			}
		}
		b.WriteString("</table>\n")
	}
	if r.Verification != nil || r.ReadAfterWrite != nil || r.Linearizability != nil || r.FanOut != nil {
		var v strings.Builder
		r.writeChecks(&v)
		fmt.Fprintf(&b, "<h2>Checks</h2>\n<pre>%s</pre>\n", esc(strings.TrimPrefix(v.String(), "\n")))
	}

	seconds := int(math.Ceil(r.DurationSeconds))
	for _, c := range r.Calls {
		seconds = max(seconds, len(c.Timeline))
	}
	b.WriteString("<h2>Over time</h2>\n<p class=\"legend\">")
	for i, c := range r.Calls {
		fmt.Fprintf(&b, "<span><i style=\"background:%s\"></i>%s</span>", palette[i%len(palette)], esc(c.Call))
	}
	b.WriteString("<span><i style=\"background:#000\"></i>all (dashed)</span>")
	b.WriteString("</p>\n")
	charts := []struct {
		title string
		value func(Point) (float64, bool)
		show  bool
	}{
		{"p50 latency (ms) of the successful calls, per second", func(p Point) (float64, bool) { return p.P50, p.Count > p.Errors }, true},
		{"p99 latency (ms) of the successful calls, per second", func(p Point) (float64, bool) { return p.P99, p.Count > p.Errors }, true},
		{"throughput (calls completed per second)", func(p Point) (float64, bool) { return float64(p.Count), true }, true},
		{"errors and dropped arrivals per second", func(p Point) (float64, bool) { return float64(p.Errors + p.Dropped), true },
			r.Total.Errors+r.Total.Dropped > 0},
	}
	for _, ch := range charts {
		if !ch.show {
			continue
		}
		var ss []series
		for i, c := range append(slices.Clone(r.Calls), r.Total) {
			s := series{name: c.Call, color: palette[i%len(palette)]}
			if i == len(r.Calls) {
				s.color, s.dashed = "#000", true
			}
			for _, p := range c.Timeline {
				v, ok := ch.value(p)
				s.points = append(s.points, seriesPoint{x: float64(p.Second) + 0.5, y: v, ok: ok})
			}
			ss = append(ss, s)
		}
		fmt.Fprintf(&b, "<h3>%s</h3>\n", esc(ch.title))
		svgChart(&b, seconds, ss)
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type seriesPoint struct {
	x, y float64
	ok   bool // false: no value (a gap in the line)
}

type series struct {
	name, color string
	dashed      bool
	points      []seriesPoint
}

// svgChart draws ss as lines over [0, seconds] seconds.
func svgChart(b *strings.Builder, seconds int, ss []series) {
	const (
		width, height            = 960, 280
		left, right, top, bottom = 64, 16, 12, 36
		pw, ph                   = width - left - right, height - top - bottom
	)
	seconds = max(seconds, 1)
	ymax := 0.0
	for _, s := range ss {
		for _, p := range s.points {
			if p.ok {
				ymax = max(ymax, p.y)
			}
		}
	}
	ymax = niceCeil(ymax)
	x := func(v float64) float64 { return left + v/float64(seconds)*pw }
	y := func(v float64) float64 { return top + ph - v/ymax*ph }
	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", width, height, width, height)
	fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", left, top, pw, ph)
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>", left, y(v), left+pw, y(v))
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left-6, y(v)+4, formatTick(v))
	}
	step := tickStep(seconds)
	for s := 0; s <= seconds; s += step {
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>", x(float64(s)), top+ph, x(float64(s)), top+ph+4)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%ds</text>\n", x(float64(s)), top+ph+16, s)
	}
	for _, s := range ss {
		fmt.Fprintf(b, "<g><title>%s</title>\n", html.EscapeString(s.name))
		var seg []string
		var cx, cy float64 // the segment's first point
		flush := func() {
			switch len(seg) {
			case 0:
			case 1:
				fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", cx, cy, s.color)
			default:
				dash := ""
				if s.dashed {
					dash = ` stroke-dasharray="6 3"`
				}
				fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"%s\"/>\n", s.color, dash, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for _, p := range s.points {
			if !p.ok {
				flush()
				continue
			}
			if len(seg) == 0 {
				cx, cy = x(p.x), y(p.y)
			}
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(p.x), y(p.y)))
		}
		flush()
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 if v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// tickStep is a step of seconds giving at most about 12 ticks.
func tickStep(seconds int) int {
	for _, s := range []int{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		if seconds/s <= 12 {
			return s
		}
	}
	return 7200
}
