package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON form is the -json output; the fields named in the design
// (users, rooms, duration_s, stability, join_ms, latency_ms, loss, freezes, sfu_cpu_cores, sfu_rss_mb,
// harness_cpu_cores) keep their names.
type Report struct {
	Scenario    string  `json:"scenario"`
	URL         string  `json:"url"`
	Users       int     `json:"users"`
	Rooms       int     `json:"rooms"`
	Publishers  int     `json:"publishers"` // send audio and video (allhands: the presenters)
	Speakers    int     `json:"speakers"`   // allhands: open microphones, sending audio only
	DurationS   float64 `json:"duration_s"`
	Partial     bool    `json:"partial"` // stopped early (Ctrl-C)
	Joined      int     `json:"joined"`  // users that joined
	JoinFailed  int     `json:"join_failed"`
	Disconnects int     `json:"disconnects"` // sessions lost after joining

	// Stability is the fraction of user-seconds in which the user was connected and received every stream it
	// should have (tracks published more than a grace period ago), counted from each user's scheduled join plus
	// the join grace. In allhands the audio it should have received is only that of the participants who, by the
	// harness's schedule, had been speaking for more than MinTalk at the second's start and still were at its
	// end (every video still counts): the server may forward only the loudest microphones.
	Stability   float64 `json:"stability"`
	UserSeconds int64   `json:"user_seconds"`

	// Audio streams a listener (a user who publishes nothing) received packets from within one second: the most
	// any listener had in any second, and the mean over the listener-seconds counted for stability in which the
	// listener was connected.
	AudioStreamsMax  int     `json:"audio_streams_max"`
	AudioStreamsMean float64 `json:"audio_streams_mean"`
	// SpeakerPacketsRecv counts the packets of the open microphones (allhands) the listeners received in those
	// seconds.
	SpeakerPacketsRecv int64 `json:"speaker_packets_received"`

	// JoinMS is from the WebSocket's opening to the first remote video frame (for a user who joined before any
	// video was published in its room: from the first track_published).
	JoinMS    Quantiles `json:"join_ms"`
	LatencyMS Quantiles `json:"latency_ms"` // a frame's send at the publisher to its receipt at a subscriber
	// SFULatencyMS is the server's own view (its sfu_forward_latency_seconds histogram): a packet's arrival to
	// the send of its last copy.
	SFULatencyMS Quantiles `json:"sfu_latency_ms"`

	Loss        float64 `json:"loss"`    // RTP packets lost / expected, over every received stream
	Freezes     int64   `json:"freezes"` // gaps of more than FreezeGap between two frames of a received video
	FramesRecv  int64   `json:"frames_received"`
	PacketsRecv int64   `json:"packets_received"`
	RecvMbps    float64 `json:"recv_mbps"` // mean received bitrate over all subscribers
	SentMbps    float64 `json:"sent_mbps"` // mean bitrate the publishers sent

	SFUCPUCores  float64 `json:"sfu_cpu_cores"` // mean, from the server's process figures
	SFURSSMB     float64 `json:"sfu_rss_mb"`    // at the end
	SFURSSPeakMB float64 `json:"sfu_rss_peak_mb"`
	// SFURSSSlopeMBPerMin is the trend of the server's resident memory over the steady window (after the last
	// join), in MB per minute: near 0 when memory is flat after warm-up.
	SFURSSSlopeMBPerMin float64 `json:"sfu_rss_slope_mb_per_min"`
	// SFUGoroutines is the server's goroutines at the end; SFUGoroutinesSlopePerMin their trend over the steady
	// window, per minute (near 0: none leak).
	SFUGoroutines            float64 `json:"sfu_goroutines"`
	SFUGoroutinesSlopePerMin float64 `json:"sfu_goroutines_slope_per_min"`
	HarnessCPUCores          float64 `json:"harness_cpu_cores"` // mean
	HarnessSaturated         bool    `json:"harness_saturated"` // the harness used nearly all its CPUs: its limits, not the server's, may show

	// CPU per packet: the server's CPU time over the packets it forwarded (sfu_packets_forwarded_total), and the
	// harness's over the packets it received, in microseconds, over the steady window (from the last join plus
	// its grace to the end; the whole run for a ramp). PacketsForwarded counts the whole run.
	PacketsForwarded   int64   `json:"packets_forwarded"`
	ServerUSPerPacket  float64 `json:"server_us_per_packet"`
	HarnessUSPerPacket float64 `json:"harness_us_per_packet"`
	KeyframeRequests   int64   `json:"keyframe_requests"` // PLIs the server sent publishers during the run
	// PacketsForwardedPerS is the server's rate of packets forwarded (sfu_packets_forwarded_total) from the last
	// scheduled join plus the join grace to the end (ramp, or a run stopped before: the whole run).
	PacketsForwardedPerS float64 `json:"packets_forwarded_per_s"`

	Timeline []Sample `json:"timeline"` // one sample per second
}

// Quantiles of a distribution, in milliseconds.
type Quantiles struct {
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count int64   `json:"count"`
}

// Sample is one second of a run.
type Sample struct {
	T          float64 `json:"t"`         // seconds since the start
	Connected  int     `json:"connected"` // users joined and connected
	Stable     float64 `json:"stable"`    // fraction of the counted users that received everything this second
	RecvMbps   float64 `json:"recv_mbps"`
	SentMbps   float64 `json:"sent_mbps"` // what the publishers sent
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	Loss       float64 `json:"loss"`
	Freezes    int64   `json:"freezes"` // freezes that ended this second
	SFUCPU     float64 `json:"sfu_cpu_cores"`
	// ForwardedPerS is the server's packets forwarded per second.
	ForwardedPerS float64 `json:"packets_forwarded_per_s"`
	// AudioStreams is the mean number of audio tracks the connected listeners received packets from this
	// second, AudioStreamsMax the most any one did.
	AudioStreams    float64 `json:"audio_streams"`
	AudioStreamsMax int     `json:"audio_streams_max"`
	SFURSSMB        float64 `json:"sfu_rss_mb"`
	SFUGoroutines   float64 `json:"sfu_goroutines"`
	HarnessCPU      float64 `json:"harness_cpu_cores"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteSummary prints the summary table.
func (r *Report) WriteSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	state := "complete"
	if r.Partial {
		state = "partial (stopped early)"
	}
	fmt.Fprintf(tw, "scenario\t%s, %s, %s\n", r.Scenario, state, r.URL)
	fmt.Fprintf(tw, "users\t%s; %d joined, %d failed to join, %d disconnected\n",
		r.usersLine(), r.Joined, r.JoinFailed, r.Disconnects)
	fmt.Fprintf(tw, "duration\t%.1f s\n", r.DurationS)
	fmt.Fprintf(tw, "stability\t%.3f %% of %d user-seconds\n", 100*r.Stability, r.UserSeconds)
	fmt.Fprintf(tw, "audio streams\t%s\n", r.audioStreamsLine())
	fmt.Fprintf(tw, "join (ms)\t%s\n", r.JoinMS)
	fmt.Fprintf(tw, "latency (ms)\t%s  publisher send to subscriber receipt\n", r.LatencyMS)
	fmt.Fprintf(tw, "sfu latency (ms)\t%s  the server's histogram, arrival to last copy sent\n", r.SFULatencyMS)
	fmt.Fprintf(tw, "loss\t%.4f %% of %d packets\n", 100*r.Loss, r.PacketsRecv)
	fmt.Fprintf(tw, "freezes\t%d (no frame for over %v) in %d frames\n", r.Freezes, FreezeGap, r.FramesRecv)
	fmt.Fprintf(tw, "bitrate\t%.1f Mbit/s received, %.1f Mbit/s sent\n", r.RecvMbps, r.SentMbps)
	fmt.Fprintf(tw, "sfu\t%.2f cores, %.0f MB resident (peak %.0f MB, %+.1f MB/min after the last join), %.0f goroutines (%+.1f/min)\n",
		r.SFUCPUCores, r.SFURSSMB, r.SFURSSPeakMB, r.SFURSSSlopeMBPerMin, r.SFUGoroutines, r.SFUGoroutinesSlopePerMin)
	sat := ""
	if r.HarnessSaturated {
		sat = "  SATURATED: the harness, not the server, may be the limit"
	}
	fmt.Fprintf(tw, "harness\t%.2f cores%s\n", r.HarnessCPUCores, sat)
	fmt.Fprintf(tw, "cpu per packet\tserver %.1f µs (%d forwarded), harness %.1f µs (%d received)\n",
		r.ServerUSPerPacket, r.PacketsForwarded, r.HarnessUSPerPacket, r.PacketsRecv)
	fmt.Fprintf(tw, "keyframe requests\t%d\n", r.KeyframeRequests)
	fmt.Fprintf(tw, "forwarded\t%.0f packets/s by the server after the joins\n", r.PacketsForwardedPerS)
	_ = tw.Flush()
}

// usersLine says who took part.
func (r *Report) usersLine() string {
	if r.Scenario == AllHands {
		return fmt.Sprintf("%d in %d room, %d presenters, %d open microphones", r.Users, r.Rooms, r.Publishers, r.Speakers)
	}
	return fmt.Sprintf("%d in %d rooms, %d publishers", r.Users, r.Rooms, r.Publishers)
}

// audioStreamsLine says how many audio tracks a listener received at once.
func (r *Report) audioStreamsLine() string {
	line := fmt.Sprintf("at most %d, mean %.2f per listener-second (tracks a listener received packets from)",
		r.AudioStreamsMax, r.AudioStreamsMean)
	if r.Speakers > 0 {
		line += fmt.Sprintf("; %d open-microphone packets received", r.SpeakerPacketsRecv)
	}
	return line
}

func (q Quantiles) String() string {
	if q.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (%d samples)", ms(q.P50), ms(q.P95), ms(q.P99), ms(q.Max), q.Count)
}

func ms(v float64) string {
	if v < 10 {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
	return fmt.Sprintf("%.0f", v)
}

// progressLine is the live line printed every second.
func progressLine(s Sample, elapsed, total time.Duration, joined, users int) string {
	return fmt.Sprintf("\r%5.0fs/%-5.0fs joined %d/%d  connected %d  stable %5.1f%%  recv %6.1f Mbit/s  latency p50 %s p99 %s ms  sfu %.2f cores %.0f MB  harness %.2f cores ",
		elapsed.Seconds(), total.Seconds(), joined, users, s.Connected, 100*s.Stable, s.RecvMbps,
		ms(s.LatencyP50), ms(s.LatencyP99), s.SFUCPU, s.SFURSSMB, s.HarnessCPU)
}
