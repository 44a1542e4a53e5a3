package transport

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// TestICETCPMux: with NetConfig.TCPAddr the SFU offers a passive TCP host candidate, ranked below its UDP one,
// a client that may only use TCP connects through it, and the closer closes the listener.
func TestICETCPMux(t *testing.T) {
	apis, closeNet, err := New(NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, TCPAddr: "127.0.0.1:0"},
		logging.NewDefaultLoggerFactory())
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = closeNet()
		}
	}()

	server, err := apis.Publish.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if _, err := server.CreateDataChannel("probe", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := server.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(server)
	if err := server.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	var udpPrio, tcpPrio uint64
	tcpPort := 0
	for _, line := range strings.Split(server.LocalDescription().SDP, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a=candidate:"))
		if !strings.HasPrefix(line, "a=candidate:") || len(f) < 8 {
			continue
		}
		prio, _ := strconv.ParseUint(f[3], 10, 32)
		switch strings.ToLower(f[2]) {
		case "udp":
			udpPrio = prio
		case "tcp":
			tcpPrio = prio
			tcpPort, _ = strconv.Atoi(f[5])
			if !strings.Contains(line, "tcptype passive") {
				t.Errorf("TCP candidate is not passive: %s", line)
			}
		}
	}
	if tcpPort == 0 || udpPrio == 0 {
		t.Fatalf("want a UDP and a TCP host candidate:\n%s", server.LocalDescription().SDP)
	}
	if tcpPrio >= udpPrio {
		t.Errorf("TCP candidate priority %d, UDP %d: UDP should be preferred", tcpPrio, udpPrio)
	}

	// A client limited to TCP connects.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	client, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	opened := make(chan struct{})
	client.OnDataChannel(func(dc *webrtc.DataChannel) { dc.OnOpen(func() { close(opened) }) })
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := client.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	cg := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-cg
	if err := server.SetRemoteDescription(*client.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the TCP-only client did not connect")
	}
	pair, err := client.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP || int(pair.Remote.Port) != tcpPort {
		t.Errorf("selected pair %v (%v), want the SFU's TCP candidate on port %d", pair, err, tcpPort)
	}
	_ = client.Close()
	_ = server.Close()

	// The closer releases the listener.
	closed = true
	if err := closeNet(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)))
	if err != nil {
		t.Fatalf("the ICE-TCP port is still taken after close: %v", err)
	}
	_ = ln.Close()
}
