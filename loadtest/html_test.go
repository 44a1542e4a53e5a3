package loadtest

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// testReport is a made-up run with n seconds of varying figures.
func testReport(n int) *Report {
	r := &Report{
		Scenario: "<b>x</b>", URL: "ws://127.0.0.1:7880/ws?room=a&b=1",
		Users: 120, Rooms: 12, Publishers: 24, DurationS: 61.5, Partial: true,
		Joined: 118, JoinFailed: 2, Disconnects: 3,
		Stability: 0.99871, UserSeconds: 7020,
		JoinMS:       Quantiles{P50: 412, P95: 780, P99: 951, Max: 1203, Count: 118},
		LatencyMS:    Quantiles{P50: 38.4, P95: 71, P99: 95, Max: 140, Count: 50000},
		SFULatencyMS: Quantiles{P50: 0.42, P95: 1.3, P99: 2.75, Max: 9.125, Count: 1000},
		Loss:         0.00123, Freezes: 7, FramesRecv: 210000, PacketsRecv: 1234567,
		RecvMbps: 95.3, SentMbps: 12.4,
		SFUCPUCores: 1.87, SFURSSMB: 312, SFURSSPeakMB: 355,
		HarnessCPUCores: 7.6, HarnessSaturated: true,
	}
	for i := range n {
		f := float64(i)
		r.Timeline = append(r.Timeline, Sample{
			T: f + 1, Connected: min(2*(i+1), 118), Stable: 1 - 0.002*math.Abs(math.Sin(f/5)),
			RecvMbps: 1.6 * float64(min(2*(i+1), 118)), LatencyP50: 30 + 5*math.Sin(f/7), LatencyP99: 80 + 20*math.Cos(f/4),
			Loss: 0.001 * (1 + math.Sin(f/3)), Freezes: int64(i % 13 / 11), SFUCPU: 0.03 * f, SFURSSMB: 200 + 2*f,
			HarnessCPU: 0.12 * f,
		})
	}
	return r
}

func writeHTML(t *testing.T, r *Report) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if !utf8.ValidString(out) {
		t.Error("not valid UTF-8")
	}
	if strings.Contains(strings.ToLower(out), "<script") {
		t.Error("has a script")
	}
	if strings.Contains(out, "<b>x</b>") || !strings.Contains(out, "&lt;b&gt;x&lt;/b&gt;") {
		t.Error("the scenario is not escaped")
	}
	for _, s := range []string{"http://", "https://", "url("} {
		if strings.Contains(strings.ReplaceAll(out, `xmlns="http://www.w3.org/2000/svg"`, ""), s) {
			t.Errorf("refers to something outside: %q", s)
		}
	}
	checkHTML(t, out)
	return out
}

var svgBlock = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// checkHTML parses the page leniently as HTML, each chart strictly as XML, and checks that every number an SVG
// element is placed with is finite.
func checkHTML(t *testing.T, out string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(out))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("page does not parse: %v", err)
		}
	}

	if n, m := strings.Count(out, "<svg"), len(svgBlock.FindAllString(out, -1)); n != m || m != strings.Count(out, "</svg>") {
		t.Fatalf("%d <svg, %d </svg>, %d blocks", n, strings.Count(out, "</svg>"), m)
	}
	number := regexp.MustCompile(`[-+]?[0-9.]+(?:e[-+]?[0-9]+)?|[A-Za-z]+`)
	for _, block := range svgBlock.FindAllString(out, -1) {
		if strings.Contains(block, "NaN") || strings.Contains(block, "Inf") {
			t.Errorf("NaN or Inf in an SVG: %.200s", block)
		}
		d := xml.NewDecoder(strings.NewReader(block))
		depth := 0
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("SVG does not parse: %v\n%s", err, block)
			}
			switch el := tok.(type) {
			case xml.StartElement:
				depth++
				for _, a := range el.Attr {
					switch a.Name.Local {
					case "x", "y", "x1", "x2", "y1", "y2", "width", "height", "dx", "dy":
						if strings.HasSuffix(a.Value, "%") {
							continue
						}
						if v, err := strconv.ParseFloat(a.Value, 64); err != nil || !(math.Abs(v) <= 1e4) {
							t.Errorf("<%s %s=%q>", el.Name.Local, a.Name.Local, a.Value)
						}
					case "d":
						for _, tok := range number.FindAllString(a.Value, -1) {
							if tok == "M" || tok == "L" || tok == "m" || tok == "a" {
								continue
							}
							if v, err := strconv.ParseFloat(tok, 64); err != nil || !(math.Abs(v) <= 1e4) {
								t.Errorf("path data %q: %q", a.Value, tok)
							}
						}
					}
				}
			case xml.EndElement:
				depth--
			}
		}
		if depth != 0 {
			t.Errorf("unbalanced SVG: %s", block)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	out := writeHTML(t, testReport(60))
	for _, want := range []string{
		"120 in 12 rooms, 24 publishers", "118 joined, 2 failed to join, 3 disconnected", "61.5 s",
		"99.871 % of 7020 user-seconds", "0.1230 % of 1234567 packets", "7 (no frame for over 500ms) in 210000 frames",
		"95.3 Mbit/s received, 12.4 Mbit/s sent", "1.87 cores, 312 MB resident (peak 355 MB)", "7.60 cores", "SATURATED",
		"partial (stopped early)", "ws://127.0.0.1:7880/ws?room=a&amp;b=1",
		">412<", ">780<", ">951<", ">1203<", ">118<", ">38<", ">140<", ">50000<", ">0.42<", ">2.75<", ">9.125<",
		"99.95 %", // the reference line
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	if n := strings.Count(out, "<svg"); n != 7 {
		t.Errorf("%d charts, want 7", n)
	}
	if strings.Contains(out, "no samples") {
		t.Error(`"no samples" with a timeline`)
	}
}

func TestWriteHTMLEmptyTimeline(t *testing.T) {
	r := testReport(0)
	r.Partial, r.HarnessSaturated = false, false
	r.LatencyMS = Quantiles{}
	out := writeHTML(t, r)
	if strings.Contains(out, "<svg") {
		t.Error("charts without samples")
	}
	for _, want := range []string{"no samples", "complete", "99.871 %"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	for _, unwanted := range []string{"SATURATED", "partial"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("has %q", unwanted)
		}
	}
}

func TestWriteHTMLOddValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for name, r := range map[string]*Report{
		"nan": func() *Report {
			r := testReport(60)
			for i := range r.Timeline {
				if i%7 == 3 {
					r.Timeline[i].LatencyP99, r.Timeline[i].Loss = nan, inf
				}
			}
			r.Timeline[0].Stable, r.Timeline[59].T = nan, nan
			for i := range r.Timeline {
				r.Timeline[i].SFURSSMB = nan // a series with no value at all
			}
			return r
		}(),
		"one sample": func() *Report { r := testReport(1); r.Timeline[0].T = 0; return r }(),
		"all zero":   {Scenario: "<b>x</b>", Timeline: make([]Sample, 30)},
		"huge":       func() *Report { r := testReport(5); r.Timeline[2].RecvMbps = math.MaxFloat64; return r }(),
	} {
		t.Run(name, func(t *testing.T) {
			out := writeHTML(t, r)
			if n := strings.Count(out, "<svg"); n != 7 {
				t.Errorf("%d charts, want 7", n)
			}
		})
	}
}

// TestWriteHTMLAllHands: an all-hands report says who spoke and how many audio tracks the listeners received,
// with a chart of them.
func TestWriteHTMLAllHands(t *testing.T) {
	r := testReport(30)
	r.Scenario, r.Rooms, r.Publishers, r.Speakers = AllHands, 1, 2, 20
	r.AudioStreamsMax, r.AudioStreamsMean, r.SpeakerPacketsRecv, r.PacketsForwardedPerS = 4, 2.75, 98765, 43210
	for i := range r.Timeline {
		r.Timeline[i].AudioStreams, r.Timeline[i].AudioStreamsMax = 2.5, 3+i%2
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := r.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	checkHTML(t, out)
	for _, want := range []string{"120 in 1 room, 2 presenters, 20 open microphones", "at most 4, mean 2.75 per listener-second",
		"98765 open-microphone packets", "43210 packets/s", "Audio tracks a listener received packets from"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	if n := strings.Count(out, "<svg"); n != 8 {
		t.Errorf("%d charts, want 8", n)
	}
	var sum strings.Builder
	r.WriteSummary(&sum)
	for _, want := range []string{"2 presenters, 20 open microphones", "at most 4, mean 2.75", "43210 packets/s"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary: no %q in\n%s", want, sum.String())
		}
	}
}
