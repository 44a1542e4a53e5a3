package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/cluster"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
)

// placement routes joins across the nodes of a region (signaling.Placement over sfu/cluster): to the room's
// owner, or here with a relay to the owner when the owner is full; never outside the room's regions.
type placement struct {
	c        *cluster.Cluster
	relays   *relays
	log      *zap.Logger
	refusals prometheus.Counter
	relayed  prometheus.GaugeFunc
}

// startCluster registers this node in Redis and returns the placement for its signaling, and a function that
// stops relays and leaves the cluster.
func startCluster(cfg config, s *sfu.SFU, baseURL string, secret []byte, reg *prometheus.Registry, log *zap.Logger) (*placement, func(), error) {
	id := cfg.NodeID
	if id == "" {
		host, _ := os.Hostname()
		id = host + "-" + baseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	baseURL = strings.TrimSuffix(baseURL, "/")
	c, err := cluster.New(ctx, cluster.Config{RedisURL: cfg.Redis, Logger: log,
		Node:     cluster.NodeInfo{ID: id, Region: cfg.Region, URL: baseURL, Capacity: cfg.Capacity},
		LoadFunc: func() int { return s.Stats().Participants }})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	var ips []net.IP
	for _, a := range cfg.ICEIPs {
		if ip := net.ParseIP(a); ip != nil {
			ips = append(ips, ip)
		}
	}
	api, err := client.NewAPI(ips)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	rctx, stopRelays := context.WithCancel(context.Background())
	p := &placement{c: c, log: log}
	p.relays = &relays{ctx: rctx, log: log, rooms: map[string]*roomRelay{},
		make: func(room, owner string) *relay {
			return &relay{room: room, owner: owner, self: baseURL, token: relayToken(secret, id), api: api, log: log}
		},
		place: func(ctx context.Context, room string) (string, bool, error) {
			owner, mine, err := c.Place(ctx, room, []string{cfg.Region})
			return owner.URL, mine, err
		}}
	p.refusals = prometheus.NewCounter(prometheus.CounterOpts{Name: "sfu_residency_refusals_total",
		Help: "Joins refused because the room's region policy does not allow this node's region."})
	p.relayed = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sfu_rooms_relayed",
		Help: "Rooms hosted here and relayed to their owner on another node of the region."}, func() float64 {
		p.relays.mu.Lock()
		defer p.relays.mu.Unlock()
		return float64(len(p.relays.rooms))
	})
	region := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfu_node_region", Help: "This node's region (the label); 1.",
		ConstLabels: prometheus.Labels{"region": cfg.Region, "node": id}})
	region.Set(1)
	reg.MustRegister(p.refusals, p.relayed, region)
	stop := func() {
		stopRelays()
		p.relays.close()
		if err := c.Close(); err != nil {
			log.Warn("leave the cluster", zap.Error(err))
		}
	}
	log.Info("joined the cluster", zap.String("node", id), zap.String("region", cfg.Region), zap.String("url", baseURL))
	return p, stop, nil
}

// Region implements signaling.Placement.
func (p *placement) Region() string { return p.c.Self().Region }

// Route implements signaling.Placement.
func (p *placement) Route(ctx context.Context, room string, regions []string) (signaling.Route, error) {
	self := p.c.Self()
	if !slices.Contains(regions, self.Region) {
		p.refusals.Inc()
		return signaling.Route{}, fmt.Errorf("room %q is kept in region %v; this node is in %s: %w", room, regions, self.Region, signaling.ErrResidency)
	}
	owner, mine, err := p.c.Place(ctx, room, regions)
	switch {
	case err != nil:
		return signaling.Route{}, err
	case mine || owner.ID == self.ID:
		return signaling.Route{}, nil
	case !slices.Contains(regions, owner.Region): // Place keeps to the regions; this is the residency backstop
		p.refusals.Inc()
		return signaling.Route{}, fmt.Errorf("room %q is owned in region %s: %w", room, owner.Region, signaling.ErrResidency)
	case owner.Load < owner.Capacity:
		return signaling.Route{Redirect: owner.URL}, nil
	}
	// The owner is full: host the participant here and relay the room to and from it.
	return signaling.Route{Release: p.relays.acquire(room, owner.URL)}, nil
}

// Fallbacks implements signaling.Placement.
func (p *placement) Fallbacks() []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	nodes, err := p.c.Nodes(ctx, p.c.Self().Region)
	if err != nil {
		return nil
	}
	var urls []string
	for _, n := range nodes {
		if n.ID != p.c.Self().ID && !n.Draining {
			urls = append(urls, n.URL)
		}
	}
	return urls
}

// IsPeer implements signaling.Placement: a node of the region within the last day.
func (p *placement) IsPeer(base string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ok, err := p.c.KnownURL(ctx, p.c.Self().Region, strings.TrimSuffix(base, "/"), 24*time.Hour)
	return err == nil && ok
}

// drainTarget is the base URL of another live node of the region to send participants to, "" if none.
func (p *placement) drainTarget() string {
	if f := p.Fallbacks(); len(f) > 0 {
		return f[0]
	}
	return ""
}
