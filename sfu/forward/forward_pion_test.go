package forward

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// subscriberPair connects one SFU-side subscribe connection carrying d to a Pion subscriber over loopback, and
// drains what the subscriber receives.
func subscriberPair(tb testing.TB, api *webrtc.API, d *DownTrack) (closeFn func()) {
	tb.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		tb.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		tb.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	subAPI := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	server, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	client, err := subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	sender, err := server.AddTrack(d)
	if err != nil {
		tb.Fatal(err)
	}
	go d.ReadRTCP(sender)
	client.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
		}
	})
	connected := make(chan struct{})
	var once sync.Once
	server.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := server.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gather := webrtc.GatheringCompletePromise(server)
	if err := server.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gather
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := client.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	cgather := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-cgather
	if err := server.SetRemoteDescription(*client.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		tb.Fatal("subscriber did not connect")
	}
	return func() {
		_ = client.Close()
		_ = server.Close()
	}
}

// BenchmarkForwardPion measures the whole send path of a forwarded packet: the DownTrack's rewrite, Pion's
// interceptors (NACK buffer, RTCP reports), SRTP encryption and the UDP send, for one packet in and ten
// subscribers out. The ten subscribers are Pion peers in the same process, so their decryption runs on the
// other core and their allocations are counted too.
func BenchmarkForwardPion(b *testing.B) {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled // at benchmark rates TWCC feedback outgrows the MTU; not a real-world case
	apis, closeNet, err := transport.New(transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, lf)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = closeNet() }()
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	var closers []func()
	const subscribers = 10
	for i := 0; i < subscribers; i++ {
		d := NewDownTrack(r, "PA_pub", nil)
		d.SetTargetLayer(0)
		api, err := apis.Subscribe(func(cc.BandwidthEstimator) {})
		if err != nil {
			b.Fatal(err)
		}
		closers = append(closers, subscriberPair(b, api, d))
		r.AddDownTrack(d)
	}
	benchInterFrames(b, r, 500) // about 1000 bytes
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subscribers), "ns/forwarded-pkt")
	for _, c := range closers {
		c() // the subscribers' read goroutines end with their connections
	}
}
