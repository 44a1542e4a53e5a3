package sfu

import "github.com/prometheus/client_golang/prometheus"

// collector reports the SFU's figures at scrape time, so the per-packet path only bumps its own counters.
type collector struct {
	s *SFU

	rooms, participants, tracks                           *prometheus.Desc
	packetsIn, bytesIn, packetsOut, bytesOut, nacks, plis *prometheus.Desc

	// Per subscriber.
	estimate, allocated, videos, sent, late *prometheus.Desc
}

// Collector is a Prometheus collector of the node's rooms, participants, tracks and forwarding counters.
func (s *SFU) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("sfu_"+name, help, nil, nil) }
	sub := []string{"room", "participant"}
	return &collector{
		s:            s,
		rooms:        d("rooms", "Rooms open now."),
		participants: d("participants", "Participants connected now."),
		tracks:       d("tracks", "Published tracks now."),
		packetsIn:    d("packets_received_total", "RTP packets received from publishers."),
		bytesIn:      d("bytes_received_total", "RTP bytes received from publishers."),
		packetsOut:   d("packets_forwarded_total", "RTP packets forwarded to subscribers."),
		bytesOut:     d("bytes_forwarded_total", "RTP payload bytes forwarded to subscribers."),
		nacks:        d("nacks_total", "Packets subscribers asked to be retransmitted (NACK)."),
		plis:         d("plis_total", "Keyframe requests (PLI) sent to publishers."),
		estimate:     prometheus.NewDesc("sfu_subscriber_estimate_bps", "A subscriber's bandwidth estimate (gcc).", sub, nil),
		allocated: prometheus.NewDesc("sfu_subscriber_allocated_bps",
			"What the allocator plans to send a subscriber.", sub, nil),
		videos: prometheus.NewDesc("sfu_subscriber_videos", "A subscriber's videos by the layer forwarded (off: paused or waiting for a keyframe).",
			append(sub, "layer"), nil),
		sent: prometheus.NewDesc("sfu_subscriber_packets_sent_total", "RTP packets sent to a subscriber.", sub, nil),
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
	for _, s := range c.s.Subscribers() {
		ch <- prometheus.MustNewConstMetric(c.estimate, prometheus.GaugeValue, s.EstimateBps, s.Room, s.ID)
		ch <- prometheus.MustNewConstMetric(c.allocated, prometheus.GaugeValue, s.AllocatedBps, s.Room, s.ID)
		for i, n := range s.VideosByLayer {
			ch <- prometheus.MustNewConstMetric(c.videos, prometheus.GaugeValue, float64(n), s.Room, s.ID, layerNames[i])
		}
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.PacketsSent), s.Room, s.ID)
		ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(s.LateDrops), s.Room, s.ID)
	}
}
