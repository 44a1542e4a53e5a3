package transport

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// TestOnLoopback: a node is on loopback when an ICE address or the UDP mux's host is a loopback address.
func TestOnLoopback(t *testing.T) {
	for _, c := range []struct {
		cfg  NetConfig
		want bool
	}{
		{NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, true},
		{NetConfig{UDPAddr: "127.0.0.1:7882"}, true},
		{NetConfig{UDPAddr: ":7882", ICEIPs: []string{"10.0.0.5", "::1"}}, true},
		{NetConfig{UDPAddr: ":7882"}, false}, // every interface, loopback among them: not a loopback node
		{NetConfig{UDPAddr: "10.0.0.5:7882", ICEIPs: []string{"10.0.0.5"}}, false},
		{NetConfig{PortMin: 50000, PortMax: 50010}, false},
	} {
		if got := onLoopback(c.cfg); got != c.want {
			t.Errorf("%+v: on loopback %v, want %v", c.cfg, got, c.want)
		}
	}
}

// gatherHosts gathers a publish connection's host candidates on a node with cfg and returns their addresses.
func gatherHosts(t *testing.T, cfg NetConfig) []net.IP {
	t.Helper()
	apis, closeNet, err := New(cfg, logging.NewDefaultLoggerFactory())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeNet() }()
	pc, err := apis.Publish.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("gathering did not complete")
	}
	var ips []net.IP
	for _, line := range strings.Split(pc.LocalDescription().SDP, "\n") {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		c, err := ice.UnmarshalCandidate(strings.TrimPrefix(strings.TrimSpace(line), "a="))
		if err != nil {
			t.Fatalf("candidate %q: %v", line, err)
		}
		if ip := net.ParseIP(c.Address()); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// TestDefaultCandidates: a node without -ice-ip offers no loopback or link-local candidate (only addresses a
// client elsewhere could reach); a node on loopback offers its loopback address.
func TestDefaultCandidates(t *testing.T) {
	ips := gatherHosts(t, NetConfig{UDPAddr: ":0"})
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			t.Errorf("a node without -ice-ip offers %v", ip)
		}
	}
	t.Logf("offered without -ice-ip: %v", ips)
	ips = gatherHosts(t, NetConfig{UDPAddr: "127.0.0.1:0"})
	if len(ips) == 0 || !ips[0].IsLoopback() {
		t.Errorf("a node on 127.0.0.1 offers %v, want its loopback address", ips)
	}
	if !notVirtual("eth0") || notVirtual("docker0") || notVirtual("veth12ab") || notVirtual("br-1f2e") {
		t.Error("notVirtual does not tell container bridges from real interfaces")
	}
}
