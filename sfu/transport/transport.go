// Package transport sets up Pion for the SFU: the codecs and header extensions it offers, the interceptors of
// publish and subscribe connections (NACK, RTCP reports, TWCC, the send-side bandwidth estimator), and the media
// sockets (one UDP socket for all media, an ICE-TCP listener).
package transport

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/edge-sfu/sfu/sfu/bwe"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// NetConfig says where media flows: the UDP sockets the SFU listens on and the addresses it advertises.
type NetConfig struct {
	// UDPAddr, when set, carries all media over one UDP socket (ICE UDP mux), e.g. ":7882" for every interface
	// or "127.0.0.1:0" for one address and a free port.
	UDPAddr string
	// PortMin and PortMax give a range of UDP ports, one per peer connection, when UDPAddr is empty.
	PortMin, PortMax uint16
	// PublicIPs are advertised instead of the local addresses (1:1 NAT, e.g. a cloud VM's public address).
	PublicIPs []string
	// ICEIPs restricts the local addresses candidates are gathered on; empty means every interface.
	ICEIPs []string
	// TCPAddr, when set, also takes ICE over TCP on one listener for every connection (ICE-TCP, RFC 6544), e.g.
	// ":7881": a fallback for clients whose network blocks UDP. Candidates are passive, and rank below UDP.
	TCPAddr string
}

// Logger sends Pion's own warnings and errors to zap.
func Logger(log *zap.Logger) logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	if w := zap.NewStdLog(log.Named("pion")).Writer(); w != nil {
		lf.Writer = w
	}
	return lf
}

// ParsePortRange reads "MIN-MAX".
func ParsePortRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("port range %q: want MIN-MAX", s)
	}
	min, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	max, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || min == 0 || max < min {
		return 0, 0, fmt.Errorf("port range %q: want MIN-MAX with 0 < MIN <= MAX <= 65535", s)
	}
	return uint16(min), uint16(max), nil
}

// MaxNackTries bounds how often the node asks a publisher for one lost packet (every 100 ms). Pion's default asks
// for as long as the packet is in its receive log (about 5 s of video): a node whose inbound socket overflows then
// asks for every lost packet fifty times, and the publishers' resends feed the overload.
const MaxNackTries = 5

// Bandwidth estimation bounds for a subscriber's connection. The estimate starts high enough for the top layer
// of one 1080p publisher, so an unconstrained subscriber sees 1080p at once, and falls within a second on a link
// that cannot carry it.
const (
	BWEInitial = 3_000_000
	bweMin     = 100_000
	bweMax     = 50_000_000
)

// APIs are the Pion APIs of a node: one shared by publish connections, and one per subscribe connection, whose
// bandwidth estimator belongs to that subscriber.
type APIs struct {
	me *webrtc.MediaEngine
	se webrtc.SettingEngine
	lf logging.LoggerFactory
	// Publish builds publish connections.
	Publish *webrtc.API
	// UDP is where media arrive over UDP.
	UDP UDPMedia
	// OnLoopback: the node's ICE addresses (NetConfig.ICEIPs) or its UDP mux name a loopback address, as on a
	// test or development node whose clients are on the same machine. Only then are clients' loopback
	// candidates taken.
	OnLoopback bool
}

// UDPMedia is where the SFU takes media over UDP: its IPs at ports PortMin..PortMax. With the ICE UDP mux that
// is the mux's one port (PortMin == PortMax) on the addresses it is bound to; with a port range, the range on the
// addresses candidates are gathered on. Either way the public addresses (1:1 NAT) are among the IPs. PortMin is 0
// when the ports are not known: with neither a mux nor a range, each connection takes any free port.
type UDPMedia struct {
	IPs              []net.IP
	PortMin, PortMax uint16
}

// Allows reports whether ip:port is one of the media addresses.
func (m UDPMedia) Allows(ip net.IP, port int) bool {
	if m.PortMin == 0 || port < int(m.PortMin) || port > int(m.PortMax) {
		return false
	}
	return m.AllowsIP(ip)
}

// AllowsIP reports whether ip is one of the media IPs, at whatever port.
func (m UDPMedia) AllowsIP(ip net.IP) bool {
	for _, a := range m.IPs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

// New sets up codecs, header extensions and the ICE network settings. Publish connections get NACK generation,
// RTCP reports and TWCC feedback to the publisher. The returned closer releases the media sockets.
func New(cfg NetConfig, lf logging.LoggerFactory) (*APIs, func() error, error) {
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, nil, err
	}
	pubIR := &interceptor.Registry{}
	nackOpts := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(MaxNackTries)}
	if err := webrtc.ConfigureNackWithOptions(me, pubIR, nackOpts); err != nil {
		return nil, nil, fmt.Errorf("nack interceptors: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(pubIR); err != nil {
		return nil, nil, fmt.Errorf("rtcp report interceptors: %w", err)
	}
	if err := webrtc.ConfigureTWCCSender(me, pubIR); err != nil { // also registers the transport-cc extension
		return nil, nil, fmt.Errorf("twcc interceptor: %w", err)
	}

	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPAddr != "" {
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// The SFU only listens: it does not dial TCP connections to the addresses clients name.
	se.DisableActiveTCP(true)
	// No mDNS: a browser's .local candidates resolve only on its own network, and its checks reach the node
	// anyway (a peer-reflexive candidate). Pion's default opens multicast sockets and a goroutine per connection.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	// A node on loopback (a test or development node) offers loopback candidates; no other does.
	ipFilter, loopback, err := ipFilter(cfg.ICEIPs, onLoopback(cfg))
	se.SetIncludeLoopbackCandidate(loopback)
	se.SetIPFilter(ipFilter)
	if len(cfg.ICEIPs) == 0 {
		se.SetInterfaceFilter(notVirtual)
	}

	var closers []func() error
	closer := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	var udp UDPMedia
	switch {
	case cfg.UDPAddr != "":
		mux, err := udpMux(cfg.UDPAddr, ipFilter, loopback, lf)
		if err != nil {
			return nil, nil, err
		}
		se.SetICEUDPMux(mux)
		closers = append(closers, mux.Close)
		udp = muxMedia(mux.GetListenAddresses())
	case cfg.PortMin != 0:
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, nil, fmt.Errorf("udp port range: %w", err)
		}
		if udp.IPs, err = gatheredIPs(cfg.ICEIPs); err != nil {
			return nil, nil, err
		}
		udp.PortMin, udp.PortMax = cfg.PortMin, cfg.PortMax
	}
	for _, s := range cfg.PublicIPs {
		if ip := net.ParseIP(strings.TrimSpace(s)); ip != nil {
			udp.IPs = append(udp.IPs, ip)
		}
	}
	if cfg.TCPAddr != "" {
		mux, err := tcpMux(cfg.TCPAddr, lf)
		if err != nil {
			_ = closer()
			return nil, nil, err
		}
		se.SetICETCPMux(mux)
		closers = append(closers, mux.Close)
	}

	a := &APIs{me: me, se: se, lf: lf, UDP: udp, OnLoopback: onLoopback(cfg)}
	a.Publish = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(pubIR), webrtc.WithSettingEngine(se))
	return a, closer, nil
}

// Subscribe builds the API of one subscribe connection: RTCP reports, transport-wide sequence numbers on every
// packet, and a send-side bandwidth estimator fed by the subscriber's TWCC feedback (sfu/bwe, in Pion's cc
// interceptor; Pion's gcc cost about a fifth of the server's CPU), handed to onBWE.
// Packets are not paced: the SFU forwards each one as it arrives. NACKs are answered by the forwarding path from
// one buffer per published layer (sfu/forward/rtx.go), not by a responder that copies every packet per subscriber.
func (a *APIs) Subscribe(onBWE func(cc.BandwidthEstimator)) (*webrtc.API, error) {
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("rtcp report interceptors: %w", err)
	}
	bwe, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return bwe.New(bwe.Config{Initial: BWEInitial, Min: bweMin, Max: bweMax}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("congestion control: %w", err)
	}
	bwe.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { onBWE(e) })
	ir.Add(bwe)
	// Added last, so it runs first on the way out: the estimator needs each packet's transport-wide number.
	twccExt, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return nil, fmt.Errorf("twcc header extension: %w", err)
	}
	ir.Add(twccExt)
	return webrtc.NewAPI(webrtc.WithMediaEngine(a.me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(a.se)), nil
}

// socketBuffer is the kernel buffer asked for the shared media socket.
const socketBuffer = 8 << 20

// udpMux opens the single media socket. A host in addr binds that address only; no host binds every interface.
func udpMux(addr string, filter func(net.IP) bool, loopback bool, lf logging.LoggerFactory) (ice.UDPMux, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("udp address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("udp address %q: bad port", addr)
	}
	if host != "" {
		ip := net.ParseIP(host)
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("udp address %q: host must be an IP address", addr)
		}
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		// One socket carries every participant's media: give it room for bursts (the kernel caps this at
		// net.core.rmem_max and wmem_max).
		_ = conn.SetReadBuffer(socketBuffer)
		_ = conn.SetWriteBuffer(socketBuffer)
		return webrtc.NewICEUDPMux(lf.NewLogger("ice"), conn), nil
	}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithLogger(lf.NewLogger("ice")),
		ice.UDPMuxFromPortWithReadBufferSize(socketBuffer),
		ice.UDPMuxFromPortWithWriteBufferSize(socketBuffer),
		ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6),
	}
	opts = append(opts, ice.UDPMuxFromPortWithInterfaceFilter(notVirtual))
	if filter != nil {
		opts = append(opts, ice.UDPMuxFromPortWithIPFilter(filter))
	}
	if loopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	mux, err := ice.NewMultiUDPMuxFromPort(port, opts...)
	if err != nil {
		return nil, fmt.Errorf("listen udp port %d: %w", port, err)
	}
	return mux, nil
}

// muxMedia is the media address of an ICE UDP mux: its one port on each address it listens on.
func muxMedia(addrs []net.Addr) UDPMedia {
	var m UDPMedia
	for _, a := range addrs {
		if u, ok := a.(*net.UDPAddr); ok && u.Port > 0 && u.Port <= 65535 {
			m.IPs = append(m.IPs, u.IP)
			m.PortMin, m.PortMax = uint16(u.Port), uint16(u.Port)
		}
	}
	return m
}

// gatheredIPs are the addresses candidates are gathered on: the ICE addresses, or every local address (loopback
// included) when there are none.
func gatheredIPs(iceIPs []string) ([]net.IP, error) {
	var ips []net.IP
	for _, s := range iceIPs {
		if ip := net.ParseIP(strings.TrimSpace(s)); ip != nil {
			ips = append(ips, ip)
		}
	}
	if len(iceIPs) > 0 {
		return ips, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("local addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips, nil
}

// ICE-TCP buffers: packets queued from one connection for its ICE agent, and bytes queued to one connection.
// Writes beyond the write buffer are dropped rather than blocking: one slow TCP subscriber must not hold up the
// forwarding of a publisher's packets to everyone else.
const (
	tcpReadPackets = 64
	tcpWriteBuffer = 1 << 20
)

// tcpMux opens the ICE-TCP listener. Its closer closes the listener and every connection and waits for the
// mux's goroutines.
func tcpMux(addr string, lf logging.LoggerFactory) (ice.TCPMux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s (ICE-TCP): %w", addr, err)
	}
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: ln, Logger: lf.NewLogger("ice-tcp"),
		ReadBufferSize: tcpReadPackets, WriteBufferSize: tcpWriteBuffer}), nil
}

// onLoopback reports whether an ICE address or the UDP mux's host is a loopback address.
func onLoopback(cfg NetConfig) bool {
	hosts := slices.Clone(cfg.ICEIPs)
	if host, _, err := net.SplitHostPort(cfg.UDPAddr); err == nil {
		hosts = append(hosts, host)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(strings.TrimSpace(h)); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	return false
}

// ipFilter turns a list of addresses into a gathering filter, and reports whether loopback candidates are
// offered: when the list names a loopback address, or the node is on loopback. An empty list gathers on every
// address a client elsewhere could reach: not link-local, multicast or unspecified ones, and loopback only on a
// node on loopback.
func ipFilter(ips []string, onLoopback bool) (func(net.IP) bool, bool, error) {
	if len(ips) == 0 {
		return func(ip net.IP) bool {
			return (onLoopback || !ip.IsLoopback()) && !ip.IsLinkLocalUnicast() && !ip.IsMulticast() && !ip.IsUnspecified()
		}, onLoopback, nil
	}
	allowed := make([]net.IP, 0, len(ips))
	loopback := false
	for _, s := range ips {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return nil, false, fmt.Errorf("ice ip %q is not an IP address", s)
		}
		loopback = loopback || ip.IsLoopback()
		allowed = append(allowed, ip)
	}
	return func(ip net.IP) bool {
		for _, a := range allowed {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}, loopback || onLoopback, nil
}

// virtualPrefixes name the interfaces of containers and virtual machines on the host (Docker, libvirt, CNI,
// Podman): their addresses reach nothing a client is on, so a node without -ice-ip does not offer them.
var virtualPrefixes = []string{"docker", "br-", "veth", "virbr", "cni", "flannel", "podman", "vnet"}

// notVirtual is the interface filter of a node without -ice-ip.
func notVirtual(name string) bool {
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"}, {Type: webrtc.TypeRTCPFBTransportCC},
}

// registerCodecs offers what browsers publish and the SFU can forward without transcoding: Opus, VP8 and
// constrained-baseline H.264, each video codec with RTX for retransmissions.
func registerCodecs(me *webrtc.MediaEngine) error {
	type offered struct {
		params webrtc.RTPCodecParameters
		kind   webrtc.RTPCodecType
	}
	codecs := []offered{
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}}},
			PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback},
			PayloadType:        96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96"},
			PayloadType:        97}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
				RTCPFeedback: videoFeedback},
			PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=102"},
			PayloadType:        103}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c.params, c.kind); err != nil {
			return fmt.Errorf("register %s: %w", c.params.MimeType, err)
		}
	}
	exts := []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},       // simulcast rid
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo}, // rid of retransmissions
		{sdp.AudioLevelURI, webrtc.RTPCodecTypeAudio},
		{codec.PlayoutDelayURI, webrtc.RTPCodecTypeVideo}, // asks receivers to keep their buffers short
	}
	for _, e := range exts {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return fmt.Errorf("register header extension %s: %w", e.uri, err)
		}
	}
	return nil
}
