package roomcaptions

import (
	"errors"
	"strings"
	"testing"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// TestCaptionsKeepToTheRoomsRegions: cluster issue, residency. A room's speech goes only to a captions engine of
// its regions: with the engine in sg, a room kept in hk refuses captions as unavailable, saying why, and a room
// that may live in hk or sg takes them; an engine on this node (no region) serves every room.
func TestCaptionsKeepToTheRoomsRegions(t *testing.T) {
	for _, c := range []struct {
		name         string
		engineRegion string
		roomRegions  []string
		refused      bool
	}{
		{"engine in sg, room kept in hk", "sg", []string{"hk"}, true},
		{"engine in sg, room in hk or sg", "sg", []string{"hk", "sg"}, false},
		{"engine on this node", "", []string{"hk"}, false},
		{"engine in sg, room of a single node (no policy)", "sg", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := New(Config{Service: nopService{}, EngineRegion: c.engineRegion})
			s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}},
				Audio: &sfu.AudioConfig{}, Workers: []sfu.Worker{w}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			p, err := s.Join(sfu.JoinRequest{Room: "r", Identity: "a", CanSubscribe: true, Regions: c.roomRegions}, nopPeer{})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Control(protocol.TypeCaptions, read("en"))
			switch {
			case c.refused && (!errors.Is(err, sfu.ErrUnavailable) || !strings.Contains(err.Error(), "sg") || !strings.Contains(err.Error(), "hk")):
				t.Fatalf("captions: %v, want unavailable naming the engine's region and the room's", err)
			case !c.refused && err != nil:
				t.Fatalf("captions: %v", err)
			}
		})
	}
}
