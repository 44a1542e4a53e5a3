package bwe

import (
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// FuzzFeedback: any RTCP a subscriber sends, parsed as Pion parses it, leaves the estimate within its bounds and
// the estimator working.
func FuzzFeedback(f *testing.F) {
	rec := twcc.NewRecorder(1)
	for i := 0; i < 40; i++ {
		if i%7 != 3 {
			rec.Record(2, uint16(i), int64(i)*1500)
		}
	}
	for _, p := range rec.BuildFeedbackPacket() {
		if raw, err := p.Marshal(); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pkts, err := rtcp.Unmarshal(raw)
		if err != nil {
			return
		}
		e := New(Config{Initial: 1_000_000, Min: 100_000, Max: 50_000_000})
		now := time.Unix(1000, 0)
		for i := 0; i < 64; i++ {
			e.Sent(uint16(i), 1000, now.Add(time.Duration(i)*time.Millisecond))
		}
		for i := 0; i < 3; i++ {
			for _, p := range pkts {
				if fb, ok := p.(*rtcp.TransportLayerCC); ok {
					e.Feedback(fb, now.Add(time.Duration(i)*300*time.Millisecond))
				}
			}
		}
		if got := e.GetTargetBitrate(); got < 100_000 || got > 50_000_000 {
			t.Fatalf("estimate %d outside its bounds", got)
		}
	})
}
