package sfu

import "github.com/prometheus/client_golang/prometheus"

// collector reports the SFU's figures at scrape time, so the per-packet path only bumps its own counters.
type collector struct {
	s      *SFU
	detail bool // per-subscriber series, labelled with room and participant

	rooms, participants, tracks                           *prometheus.Desc
	packetsIn, bytesIn, packetsOut, bytesOut, nacks, plis *prometheus.Desc

	// Per subscriber.
	estimate, allocated, videos, sent, late *prometheus.Desc
}

// Collector is a Prometheus collector of the node's rooms, participants, tracks and forwarding counters, and of
// the subscribers' figures: summed over every subscriber, or with perSubscriber one series each, labelled with its
// room's name and participant id (which a scrape then discloses).
func (s *SFU) Collector(perSubscriber bool) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("sfu_"+name, help, nil, nil) }
	var sub []string
	if perSubscriber {
		sub = []string{"room", "participant"}
	}
	return &collector{
		s:            s,
		detail:       perSubscriber,
		rooms:        d("rooms", "Rooms open now."),
		participants: d("participants", "Participants connected now."),
		tracks:       d("tracks", "Published tracks now."),
		packetsIn:    d("packets_received_total", "RTP packets received from publishers."),
		bytesIn:      d("bytes_received_total", "RTP bytes received from publishers."),
		packetsOut:   d("packets_forwarded_total", "RTP packets forwarded to subscribers."),
		bytesOut:     d("bytes_forwarded_total", "RTP payload bytes forwarded to subscribers."),
		nacks:        d("nacks_total", "Packets subscribers asked to be retransmitted (NACK)."),
		plis:         d("plis_total", "Keyframe requests (PLI) sent to publishers."),
		estimate:     prometheus.NewDesc("sfu_subscriber_estimate_bits_per_second", "Subscribers' bandwidth estimates (gcc), summed unless per subscriber.", sub, nil),
		allocated: prometheus.NewDesc("sfu_subscriber_allocated_bits_per_second",
			"What the allocator plans to send subscribers, summed unless per subscriber.", sub, nil),
		videos: prometheus.NewDesc("sfu_subscriber_videos", "Videos subscribers receive, by the layer forwarded (off: paused or waiting for a keyframe).",
			append(append([]string(nil), sub...), "layer"), nil),
		sent: prometheus.NewDesc("sfu_subscriber_packets_sent_total", "RTP packets sent to subscribers.", sub, nil),
		late: prometheus.NewDesc("sfu_subscriber_late_drops_total",
			"Frames (audio: packets) that were past the SFU's latency budget for a subscriber: its upper temporal layers are dropped from there, and the allocator steps it down.", sub, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.participants, c.tracks, c.packetsIn, c.bytesIn, c.packetsOut,
		c.bytesOut, c.nacks, c.plis, c.estimate, c.allocated, c.videos, c.sent, c.late} {
		ch <- d
	}
	c.s.latency.Describe(ch)
	c.s.processing.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.s.latency.Collect(ch)
	c.s.processing.Collect(ch)
	st := c.s.Stats()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.rooms, st.Rooms)
	gauge(c.participants, st.Participants)
	gauge(c.tracks, st.Tracks)
	counter(c.packetsIn, st.PacketsIn)
	counter(c.bytesIn, st.BytesIn)
	counter(c.packetsOut, st.PacketsOut)
	counter(c.bytesOut, st.BytesOut)
	counter(c.nacks, st.NACKs)
	counter(c.plis, st.PLIs)
	layerNames := [...]string{"off", "q", "h", "f"}
	subs := c.s.Subscribers()
	if !c.detail {
		var est, alloc float64
		var videos [4]int
		var sent, late uint64
		for _, s := range subs {
			est += s.EstimateBps
			alloc += s.AllocatedBps
			for i, n := range s.VideosByLayer {
				videos[i] += n
			}
			sent += s.PacketsSent
			late += s.LateDrops
		}
		ch <- prometheus.MustNewConstMetric(c.estimate, prometheus.GaugeValue, est)
		ch <- prometheus.MustNewConstMetric(c.allocated, prometheus.GaugeValue, alloc)
		for i, n := range videos {
			ch <- prometheus.MustNewConstMetric(c.videos, prometheus.GaugeValue, float64(n), layerNames[i])
		}
		counter(c.sent, sent)
		counter(c.late, late)
		return
	}
	for _, s := range subs {
		ch <- prometheus.MustNewConstMetric(c.estimate, prometheus.GaugeValue, s.EstimateBps, s.Room, s.ID)
		ch <- prometheus.MustNewConstMetric(c.allocated, prometheus.GaugeValue, s.AllocatedBps, s.Room, s.ID)
		for i, n := range s.VideosByLayer {
			ch <- prometheus.MustNewConstMetric(c.videos, prometheus.GaugeValue, float64(n), s.Room, s.ID, layerNames[i])
		}
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.PacketsSent), s.Room, s.ID)
		ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(s.LateDrops), s.Room, s.ID)
	}
}
