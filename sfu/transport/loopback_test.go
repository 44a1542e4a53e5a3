package transport

import "testing"

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
