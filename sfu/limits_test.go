package sfu

import (
	"errors"
	"testing"

	"github.com/edge-sfu/sfu/sfu/transport"
)

// TestConcurrentJoinLimit: with every join slot taken, one more join is refused with ErrBusy at once, and gets
// in once a slot frees.
func TestConcurrentJoinLimit(t *testing.T) {
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, MaxConcurrentJoins: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.joinSlots <- struct{}{} // a join is being set up
	if _, err := s.Join(JoinRequest{Room: "r", Identity: "a", CanSubscribe: true}, fuzzPeer{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a join with every slot taken: %v", err)
	}
	<-s.joinSlots
	p, err := s.Join(JoinRequest{Room: "r", Identity: "a", CanSubscribe: true}, fuzzPeer{})
	if err != nil {
		t.Fatalf("a join with a free slot: %v", err)
	}
	p.Close()
}
