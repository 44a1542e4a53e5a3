// Package turntest holds test helpers for TURN servers: Allocate allocates a relay as a client would and checks
// where it relays.
package turntest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// Allocate allocates a relay on the TURN server at server (realm, username, password as a client is given them)
// and returns the allocation's error: nil when the server accepted the credentials. Once allocated, it checks
// that the relay carries a datagram to a peer on 127.0.0.1, and none to a peer on 127.0.0.2 (when this machine
// has that address): the test fails if either does not hold.
func Allocate(t testing.TB, server net.Addr, realm, username, password string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server.String(), TURNServerAddr: server.String(),
		Conn: conn, Username: username, Password: password, Realm: realm, LoggerFactory: lf, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	defer relay.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relay.WriteTo([]byte("through the relay"), peer.LocalAddr()); err != nil {
		t.Fatalf("write through the relay: %v", err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	k, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "through the relay" || from.String() != relay.LocalAddr().String() {
		t.Fatalf("the peer got %q from %v (%v), want the datagram from the relay %v", buf[:k], from, err, relay.LocalAddr())
	}

	other, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Logf("no 127.0.0.2 to test a refused peer on: %v", err)
		return nil
	}
	defer other.Close()
	_, _ = relay.WriteTo([]byte("elsewhere"), other.LocalAddr()) // the permission is refused
	_ = other.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if k, from, err := other.ReadFrom(buf); err == nil {
		t.Errorf("the relay carried %q from %v to 127.0.0.2, which is not the node", buf[:k], from)
	}
	return nil
}
