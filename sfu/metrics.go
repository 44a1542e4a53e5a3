package sfu

import "github.com/prometheus/client_golang/prometheus"

// collector reports the SFU's figures at scrape time, so the per-packet path only bumps its own counters.
type collector struct {
	s *SFU

	rooms, participants, tracks                           *prometheus.Desc
	packetsIn, bytesIn, packetsOut, bytesOut, nacks, plis *prometheus.Desc
}

// Collector is a Prometheus collector of the node's rooms, participants, tracks and forwarding counters.
func (s *SFU) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc("sfu_"+name, help, nil, nil) }
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
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rooms, c.participants, c.tracks, c.packetsIn, c.bytesIn, c.packetsOut, c.bytesOut, c.nacks, c.plis} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
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
}
