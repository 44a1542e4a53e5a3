// Package turntest holds test helpers for TURN servers: a pion/turn client on loopback that allocates relays as a
// participant would, a UDP echo service to aim them at, and checks of what a relay carries. Every wait is bounded.
package turntest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// Client is a pion/turn client on its own loopback socket, for the TURN server at server with the credentials a
// participant is given. It is closed when the test ends.
func Client(t testing.TB, server net.Addr, realm, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server.String(), TURNServerAddr: server.String(),
		Conn: conn, Username: username, Password: password, Realm: realm, LoggerFactory: lf, RTO: 200 * time.Millisecond})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Allocate allocates a UDP relay (RFC 5766) with a new client and returns it, or the allocation's error (nil
// when the server accepted the credentials). The relay is closed when the test ends.
func Allocate(t testing.TB, server net.Addr, realm, username, password string) (net.PacketConn, error) {
	t.Helper()
	relay, err := Client(t, server, realm, username, password).Allocate()
	if err != nil {
		return nil, fmt.Errorf("allocate: %w", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay, nil
}

// AllocateTCP asks for a TCP relay (RFC 6062, REQUESTED-TRANSPORT TCP) with a new client and returns the
// allocation's error: nil when the server granted it.
func AllocateTCP(t testing.TB, server net.Addr, realm, username, password string) error {
	t.Helper()
	alloc, err := Client(t, server, realm, username, password).AllocateTCP()
	if err != nil {
		return fmt.Errorf("allocate TCP: %w", err)
	}
	_ = alloc.Close()
	return nil
}

// Exchange sends msg through relay to peer and waits up to wait for a datagram back from peer through the relay:
// it returns what came back, nil when nothing did.
func Exchange(t testing.TB, relay net.PacketConn, peer net.Addr, msg string, wait time.Duration) []byte {
	t.Helper()
	if _, err := relay.WriteTo([]byte(msg), peer); err != nil {
		t.Logf("write %q through the relay to %v: %v", msg, peer, err)
		return nil
	}
	return ReadFrom(relay, peer, wait)
}

// ReadFrom waits up to wait for a datagram from peer on relay, skipping others, and returns it; nil when none
// came.
func ReadFrom(relay net.PacketConn, peer net.Addr, wait time.Duration) []byte {
	deadline := time.Now().Add(wait)
	_ = relay.SetReadDeadline(deadline)
	defer func() { _ = relay.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 1500)
	for i := 0; i < 100 && time.Now().Before(deadline); i++ {
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			return nil
		}
		if from.String() == peer.String() {
			return buf[:n]
		}
	}
	return nil
}

// EchoService is a UDP service on 127.0.0.1 that sends every datagram back to its sender: a private service of
// the machine the TURN server runs on.
type EchoService struct {
	conn     net.PacketConn
	received atomic.Int64
	done     sync.WaitGroup
}

// Echo starts an echo service on 127.0.0.1 and a free port; it stops when the test ends.
func Echo(t testing.TB) *EchoService {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &EchoService{conn: conn}
	e.done.Add(1)
	go e.serve()
	t.Cleanup(func() {
		_ = conn.Close()
		e.done.Wait()
	})
	return e
}

func (e *EchoService) serve() {
	defer e.done.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := e.conn.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		e.received.Add(1)
		_, _ = e.conn.WriteTo(buf[:n], from)
	}
}

// Addr is the service's address.
func (e *EchoService) Addr() net.Addr { return e.conn.LocalAddr() }

// Received is how many datagrams the service got.
func (e *EchoService) Received() int64 { return e.received.Load() }

// SendTo sends msg from the service's socket to addr, unasked (e.g. to a relay's address).
func (e *EchoService) SendTo(msg string, addr net.Addr) error {
	_, err := e.conn.WriteTo([]byte(msg), addr)
	return err
}
