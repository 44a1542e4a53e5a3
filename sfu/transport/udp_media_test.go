package transport

import (
	"net"
	"testing"

	"github.com/pion/logging"
)

// TestUDPMedia: the media addresses are the UDP mux's address:port (and the public addresses at that port), or,
// with a port range, the ICE addresses at the ports of the range; nothing when the ports are any.
func TestUDPMedia(t *testing.T) {
	lf := logging.NewDefaultLoggerFactory()
	apis, closeNet, err := New(NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, PublicIPs: []string{"203.0.113.7"}}, lf)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNet()
	m := apis.UDP
	if m.PortMin == 0 || m.PortMin != m.PortMax {
		t.Fatalf("mux media ports %d-%d, want the mux's one port", m.PortMin, m.PortMax)
	}
	port := int(m.PortMin)
	for addr, want := range map[string]bool{"127.0.0.1": true, "203.0.113.7": true, "127.0.0.2": false} {
		if got := m.Allows(net.ParseIP(addr), port); got != want {
			t.Errorf("%s:%d: %v, want %v", addr, port, got, want)
		}
	}
	if m.Allows(net.IPv4(127, 0, 0, 1), port+1) {
		t.Error("another port of the mux's address is media")
	}

	ranged, closeRanged, err := New(NetConfig{PortMin: 50000, PortMax: 50010, ICEIPs: []string{"127.0.0.1"}}, lf)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRanged()
	r := ranged.UDP
	if !r.Allows(net.IPv4(127, 0, 0, 1), 50005) || r.Allows(net.IPv4(127, 0, 0, 1), 50011) || r.Allows(net.IPv4(10, 0, 0, 1), 50005) {
		t.Errorf("port range media %+v, want 127.0.0.1 at 50000-50010", r)
	}
	all, err := gatheredIPs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !(UDPMedia{IPs: all, PortMin: 1, PortMax: 1}).AllowsIP(net.IPv4(127, 0, 0, 1)) {
		t.Error("with no ICE address, the loopback address is not among the media IPs of a port range")
	}

	anyPort, closeAny, err := New(NetConfig{ICEIPs: []string{"127.0.0.1"}}, lf)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAny()
	if anyPort.UDP.PortMin != 0 || anyPort.UDP.Allows(net.IPv4(127, 0, 0, 1), 50005) {
		t.Errorf("media on any port: %+v, want no known port", anyPort.UDP)
	}
}
