package turn

import (
	"errors"
	"fmt"
	"net"

	"github.com/edge-sfu/sfu/sfu/transport"
	pionturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// The server relays to this node's media sockets only, with pion/turn's own hooks:
//   - its PermissionHandler grants CreatePermission and ChannelBind for the media IPs only (pion/turn gives it
//     the peer's IP: a TURN permission is per IP, RFC 5766 section 2.3);
//   - its RelayAddressGenerator wraps every relay socket so that it sends to media address:port pairs only and
//     passes on datagrams from them only, which holds the port part: a permission to a media IP carries nothing
//     to, or from, another port of that IP;
//   - the same generator refuses TCP relays (RFC 6062) and the outgoing TCP connections of Connect.

var (
	errNotMedia = errors.New("TURN: the peer is not one of this node's media addresses")
	errTCPRelay = errors.New("TURN: TCP relays (RFC 6062) are not offered, this server relays UDP to the node's media only")
)

// mediaPeers grants permissions to the node's media IPs only.
func mediaPeers(media transport.UDPMedia, log *zap.Logger) pionturn.PermissionHandler {
	return func(client net.Addr, peer net.IP) bool {
		if media.AllowsIP(peer) {
			return true
		}
		log.Debug("TURN: refused a permission to a peer that is not this node", zap.Stringer("client", client),
			zap.Stringer("peer", peer))
		return false
	}
}

// mediaRelays allocates relay sockets with the generator it wraps and limits them to the media addresses.
type mediaRelays struct {
	pionturn.RelayAddressGenerator
	media transport.UDPMedia
	log   *zap.Logger
}

// AllocatePacketConn allocates a UDP relay that sends to, and passes on datagrams from, media addresses only.
func (g *mediaRelays) AllocatePacketConn(c pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGenerator.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, fmt.Errorf("TURN relay socket: %w", err)
	}
	return &relayConn{PacketConn: conn, media: g.media, log: g.log}, addr, nil
}

// AllocateListener refuses a TCP allocation (REQUESTED-TRANSPORT TCP, RFC 6062); pion/turn answers it with 508
// (Insufficient Capacity).
func (g *mediaRelays) AllocateListener(c pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	g.log.Info("TURN: refused a TCP allocation (RFC 6062)", zap.String("username", c.UserID),
		zap.String("network", c.Network))
	return nil, nil, errTCPRelay
}

// AllocateConn refuses the outgoing TCP connection of a Connect request (RFC 6062), on any allocation.
func (g *mediaRelays) AllocateConn(c pionturn.AllocateConnConfig) (net.Conn, error) {
	g.log.Info("TURN: refused a TCP connection (RFC 6062 Connect)", zap.String("username", c.UserID),
		zap.Stringer("peer", c.RemoteAddr))
	return nil, errTCPRelay
}

// relayConn is a relay socket that carries datagrams to and from the media addresses only.
type relayConn struct {
	net.PacketConn
	media transport.UDPMedia
	log   *zap.Logger
}

func (c *relayConn) allows(addr net.Addr) bool {
	u, ok := addr.(*net.UDPAddr)
	return ok && c.media.Allows(u.IP, u.Port)
}

// WriteTo sends p to addr if it is a media address; to any other address it sends nothing and fails.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.allows(addr) {
		c.log.Debug("TURN: dropped a datagram to a peer that is not this node's media", zap.Stringer("relay", c.LocalAddr()),
			zap.Stringer("peer", addr))
		return 0, fmt.Errorf("%w: %v", errNotMedia, addr)
	}
	return c.PacketConn.WriteTo(p, addr)
}

// ReadFrom returns the next datagram from a media address, dropping the others; it fails as the socket does.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.allows(addr) {
			return n, addr, err
		}
		c.log.Debug("TURN: dropped a datagram from a peer that is not this node's media", zap.Stringer("relay", c.LocalAddr()),
			zap.Stringer("peer", addr))
	}
}
