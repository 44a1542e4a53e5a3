package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/signaling"
)

// PlacementConfig configures a Placement.
type PlacementConfig struct {
	// Cluster is this node's membership: Redis, the node (Node.URL is its base URL, which relays and other nodes
	// reach it at), its load function, heartbeat and TTL.
	Cluster Config
	// RelayAPI builds the peer connections of the relays to other nodes; RelayToken mints the token they join
	// both nodes with (RelayToken(secret, audience, node id)).
	RelayAPI   *webrtc.API
	RelayToken func(room string, regions []string) (string, error)
	// OnMoved is told that another node now holds a room this node owned (its base URL): the room's participants
	// should go there. Nil: nobody is.
	OnMoved func(room, ownerURL string)
	// OnEnded is told that a room this node hosts part of was ended on another node while the relay between them
	// was down: it should end here too. Nil: nobody is.
	OnEnded func(room string)
	// Registerer takes the placement's metrics (residency refusals, relayed rooms, the node's region); nil: none.
	Registerer prometheus.Registerer
}

// Placement routes joins across the nodes of a region (signaling.Placement over a Cluster): to the room's
// owner, or here with a relay to the owner when the owner is full; never outside the room's regions. Its
// methods are safe for concurrent use.
type Placement struct {
	c        *Cluster
	relays   *relays
	stop     context.CancelFunc // ends the relays
	log      *zap.Logger
	refusals prometheus.Counter
}

var _ signaling.Placement = (*Placement)(nil)

// NewPlacement registers this node in the cluster (New; ctx bounds that only) and returns its placement, which
// relays rooms until Close.
func NewPlacement(ctx context.Context, cfg PlacementConfig) (*Placement, error) {
	if cfg.RelayToken == nil {
		return nil, errors.New("cluster: PlacementConfig.RelayToken is nil")
	}
	if cfg.Cluster.Logger == nil {
		cfg.Cluster.Logger = zap.NewNop()
	}
	log := cfg.Cluster.Logger
	cfg.Cluster.Node.URL = strings.TrimSuffix(cfg.Cluster.Node.URL, "/")
	if moved := cfg.OnMoved; moved != nil {
		cfg.Cluster.OnLost = func(room string, owner NodeInfo) { moved(room, owner.URL) }
	}
	c, err := New(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	self := c.Self()
	rctx, stop := context.WithCancel(context.Background())
	r := &relay{self: self.URL, token: cfg.RelayToken, api: cfg.RelayAPI, log: log}
	p := &Placement{c: c, stop: stop, log: log,
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfu_residency_refusals_total",
			Help: "Joins refused because the room's region policy does not allow this node's region."})}
	p.relays = &relays{ctx: rctx, log: log, rooms: map[string]*roomRelay{}, retry: relayRetryMin, run: r.run,
		place: func(ctx context.Context, room string) (Lease, error) {
			return c.PlaceRoom(ctx, room, []string{self.Region})
		},
		end: cfg.OnEnded}
	if cfg.Registerer != nil {
		relayed := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sfu_rooms_relayed",
			Help: "Rooms hosted here and relayed to their owner on another node of the region."},
			func() float64 { return float64(p.relays.count()) })
		region := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfu_node_info", Help: "This node's region and id (the labels); 1.",
			ConstLabels: prometheus.Labels{"region": self.Region, "node": self.ID}})
		region.Set(1)
		leases := func(name, help string, v func(LeaseStats) float64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(c.Leases()) })
		}
		held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sfu_cluster_leases", Help: "Room leases this node holds."},
			func() float64 { return float64(c.Leases().Held) })
		if err := registerAll(cfg.Registerer, p.refusals, relayed, region, held,
			leases("sfu_cluster_leases_released_total", "Room leases given back because the node no longer hosts the room.", func(s LeaseStats) float64 { return float64(s.Released) }),
			leases("sfu_cluster_leases_retaken_total", "Room leases that lapsed (Redis unreachable or emptied) and were taken again.", func(s LeaseStats) float64 { return float64(s.Retaken) }),
			leases("sfu_cluster_leases_lost_total", "Room leases found held by another node while this node held them (the room may be split).", func(s LeaseStats) float64 { return float64(s.Lost) }),
		); err != nil {
			p.Close()
			return nil, err
		}
	}
	log.Info("joined the cluster", zap.String("node", self.ID), zap.String("region", self.Region), zap.String("url", self.URL))
	return p, nil
}

// registerAll registers the collectors, or none of them.
func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("cluster: metrics: %w", err)
		}
	}
	return nil
}

// Region implements signaling.Placement.
func (p *Placement) Region() string { return p.c.Self().Region }

// Route implements signaling.Placement. A new room is placed with the token's regions as its policy (none: this
// node's region); a placed room keeps its stored policy, which the token may narrow and never widen.
func (p *Placement) Route(ctx context.Context, room string, claim []string) (signaling.Route, error) {
	self := p.c.Self()
	want := claim
	if len(want) == 0 {
		want = []string{self.Region}
	}
	if !slices.Contains(want, self.Region) {
		return signaling.Route{}, p.refuse("room %q: the token allows regions %v; this node is in %s", room, want, self.Region)
	}
	l, err := p.c.PlaceRoom(ctx, room, want)
	if err != nil {
		return signaling.Route{}, err
	}
	allowed := narrow(l.Regions, claim)
	switch {
	case !slices.Contains(allowed, self.Region):
		return signaling.Route{}, p.refuse("room %q is kept in regions %v (its policy since it was placed, narrowed by the token to %v); this node is in %s",
			room, l.Regions, allowed, self.Region)
	case l.Mine:
		return signaling.Route{Locked: l.Locked, Regions: l.Regions}, nil
	case !slices.Contains(allowed, l.Owner.Region): // placement keeps to the regions; this is the backstop
		return signaling.Route{}, p.refuse("room %q is owned in region %s, outside %v", room, l.Owner.Region, allowed)
	case l.Owner.Load < l.Owner.Capacity:
		return signaling.Route{Redirect: l.Owner.URL}, nil
	}
	// The owner is full: host the participant here and relay the room to and from it.
	return signaling.Route{Release: p.relays.acquire(room, l.Owner.URL, l.Regions), Locked: l.Locked, Regions: l.Regions}, nil
}

// Admit implements signaling.Placement: a relay's participant may join here only while a node holds the room's
// lease and the room is open here (a relay never recreates an ended room), and this node's region is in the
// room's stored policy narrowed by the relay token's regions.
func (p *Placement) Admit(ctx context.Context, room string, claim []string) error {
	l, ok, err := p.c.liveOwner(ctx, room)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("room %q is not open on any node: %w", room, signaling.ErrNotPlaced)
	}
	if self := p.c.Self(); !slices.Contains(narrow(l.Regions, claim), self.Region) {
		return p.refuse("room %q is kept in regions %v, narrowed by the relay token to %v; this node is in %s",
			room, l.Regions, narrow(l.Regions, claim), self.Region)
	}
	if p.c.hosts != nil && !p.c.hosts(room) {
		return fmt.Errorf("room %q is not open on this node: %w", room, signaling.ErrNotPlaced)
	}
	return nil
}

// SetEnded implements signaling.Placement (Cluster.SetEnded).
func (p *Placement) SetEnded(ctx context.Context, room string) error { return p.c.SetEnded(ctx, room) }

// SetLocked implements signaling.Placement (Cluster.SetLocked).
func (p *Placement) SetLocked(ctx context.Context, room string, locked bool) error {
	return p.c.SetLocked(ctx, room, locked)
}

// refuse counts a residency refusal and returns its error.
func (p *Placement) refuse(format string, args ...any) error {
	p.refusals.Inc()
	return fmt.Errorf(format+": %w", append(args, signaling.ErrResidency)...)
}

// narrow is the room's policy narrowed by a token's regions claim (none: the policy itself).
func narrow(policy, claim []string) []string {
	if len(claim) == 0 {
		return policy
	}
	var out []string
	for _, r := range policy {
		if slices.Contains(claim, r) {
			out = append(out, r)
		}
	}
	return out
}

// Fallbacks implements signaling.Placement: the base URLs of the region's other nodes that are not draining,
// from the snapshot the heartbeat refreshes; it reads no Redis.
func (p *Placement) Fallbacks() []string {
	return activeURLs(p.c.Peers())
}

func activeURLs(nodes []NodeInfo) []string {
	var urls []string
	for _, n := range nodes {
		if !n.Draining {
			urls = append(urls, n.URL)
		}
	}
	return urls
}

// IsPeer implements signaling.Placement: a node of the region within the last day.
func (p *Placement) IsPeer(base string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ok, err := p.c.KnownURL(ctx, p.c.Self().Region, strings.TrimSuffix(base, "/"), 24*time.Hour)
	return err == nil && ok
}

// Ready reports whether this node takes new participants (Cluster.Ready), for /readyz.
func (p *Placement) Ready() error { return p.c.Ready() }

// Drain marks this node draining, so that no new room is placed here, and returns the base URL of another live
// node of the region to send its participants to, as Redis has it now; "" if there is none or Redis cannot say.
func (p *Placement) Drain(ctx context.Context) (string, error) {
	errDrain := p.c.SetDraining(ctx, true)
	nodes, err := p.c.Nodes(ctx, p.c.Self().Region)
	if err != nil {
		return "", errors.Join(errDrain, err)
	}
	self := p.c.Self().ID
	for _, n := range nodes {
		if n.ID != self && !n.Draining {
			return n.URL, errDrain
		}
	}
	return "", errDrain
}

// Abandon stops heartbeating as a crash would (Cluster.Abandon); the relays go on until Close. Tests use it to
// kill a node.
func (p *Placement) Abandon() { p.c.Abandon() }

// Close stops the relays, waits for them and leaves the cluster.
func (p *Placement) Close() error {
	p.stop()
	p.relays.close()
	if err := p.c.Close(); err != nil {
		return fmt.Errorf("leave the cluster: %w", err)
	}
	return nil
}
