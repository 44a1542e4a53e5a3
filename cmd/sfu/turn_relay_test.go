package main

import (
	"net"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/turn"
	"github.com/edge-sfu/sfu/sfu/turn/turntest"
)

// turnQuota is the built-in TURN server's allocations per credential.
const turnQuota = turn.DefaultMaxAllocations

// participantTURN returns the TURN username and password a participant's joined message carries.
func participantTURN(t *testing.T, n *node, identity string) (string, string) {
	t.Helper()
	ice := n.turnMint.ICEServers(identity)
	if len(ice) == 0 {
		t.Fatal("no TURN credentials minted")
	}
	pass, _ := ice[0].Credential.(string)
	return ice[0].Username, pass
}

// freeUDPAddr returns a loopback UDP address nothing listens on.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestTURNRelayReachesNodeOnly: with a participant's credentials and no -ice-ip (the allow-list was every local
// address), a relay carries nothing to a private UDP service on 127.0.0.1 nor anything from it back; a permission
// to the node's media socket is still granted.
func TestTURNRelayReachesNodeOnly(t *testing.T) {
	media := freeUDPAddr(t)
	n := turnNode(t, func(c *config) { c.ICEIPs, c.UDPAddr = nil, media })
	user, pass := participantTURN(t, n, "mallory")
	relay, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", user, pass)
	if err != nil {
		t.Fatalf("allocation with a participant's credentials: %v", err)
	}

	echo := turntest.Echo(t)
	for i := range 3 {
		if reply := turntest.Exchange(t, relay, echo.Addr(), "ping", time.Second); reply != nil {
			t.Fatalf("try %d: the relay reached the private service at %v and carried back %q", i, echo.Addr(), reply)
		}
	}
	if k := echo.Received(); k != 0 {
		t.Errorf("the private service at %v got %d datagrams through the relay", echo.Addr(), k)
	}
	// The service sending to the relay, unasked, reaches the client neither.
	if err := echo.SendTo("unasked", relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := turntest.ReadFrom(relay, echo.Addr(), time.Second); got != nil {
		t.Errorf("the relay carried %q from the private service at %v to the client", got, echo.Addr())
	}

	mediaAddr, err := net.ResolveUDPAddr("udp4", media)
	if err != nil {
		t.Fatal(err)
	}
	c := turntest.Client(t, n.turn.Addr(), "edge-sfu", user, pass)
	if _, err := c.Allocate(); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePermission(mediaAddr); err != nil {
		t.Errorf("a permission to the node's media socket %v: %v", mediaAddr, err)
	}
}

// TestTURNRefusesTCPAllocation: an RFC 6062 TCP allocation (whose Connect would tell open ports from closed
// ones) is refused.
func TestTURNRefusesTCPAllocation(t *testing.T) {
	n := turnNode(t)
	user, pass := participantTURN(t, n, "mallory")
	if err := turntest.AllocateTCP(t, n.turn.Addr(), "edge-sfu", user, pass); err == nil {
		t.Fatal("a TCP allocation was granted")
	} else {
		t.Logf("TCP allocation: %v", err)
	}
	if _, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", user, pass); err != nil {
		t.Errorf("a UDP allocation after the refused TCP one: %v", err)
	}
}

// TestTURNAllocationQuota: one credential holds turnQuota allocations at once; the next is refused, another
// participant's credential still allocates, and closing one frees its place.
func TestTURNAllocationQuota(t *testing.T) {
	n := turnNode(t)
	user, pass := participantTURN(t, n, "mallory")
	var relays []net.PacketConn
	for i := range turnQuota {
		relay, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", user, pass)
		if err != nil {
			t.Fatalf("allocation %d of %d: %v", i+1, turnQuota, err)
		}
		relays = append(relays, relay)
	}
	for i := range 3 {
		if _, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", user, pass); err == nil {
			t.Fatalf("allocation %d beyond the quota of %d was granted", i+1, turnQuota)
		} else if i == 0 {
			t.Logf("beyond the quota: %v", err)
		}
	}
	otherUser, otherPass := participantTURN(t, n, "alice")
	if _, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", otherUser, otherPass); err != nil {
		t.Errorf("another participant's allocation: %v", err)
	}
	_ = relays[0].Close() // a Refresh with lifetime 0 ends the allocation
	var err error
	for i := 0; i < 20; i++ {
		if _, err = turntest.Allocate(t, n.turn.Addr(), "edge-sfu", user, pass); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("an allocation after closing one: %v", err)
	}
}
