// Package cluster lets the SFU nodes of one or more regions find each other
// through Redis and makes each room owned by exactly one node at a time.
//
// Every node registers itself and renews its registration with a heartbeat;
// a room is owned by the node holding its lease, which the owner's heartbeat
// renews while the node is alive. A node that stops heartbeating (a crash)
// disappears after the TTL, and its leases with it. The heartbeat also
// re-reads the region's nodes into a snapshot (Peers), for answers that must
// not wait on Redis.
//
// Placement (placement.go) is the signaling's view of the cluster: where a
// joining participant goes, and the fallback nodes its client is told of.
// When a room's owner is full, participants are hosted on another node of the
// region and relay.go carries the room between the two nodes.
//
// Redis keys:
//
//	sfu:node:{id}   hash: id, region, url, capacity, load, draining ("1" or "0"),
//	                sig (HMAC-SHA256 of the other fields with the cluster secret:
//	                a hash without a valid one is not a node).
//	                Written whole by every heartbeat and by SetDraining, with
//	                the node TTL (PEXPIRE), so a node whose heartbeat lapses
//	                vanishes after the TTL. Close deletes it at once.
//	sfu:nodes       set of node ids. Members whose hash has expired are ignored
//	                and removed lazily by readers.
//	sfu:urls:{region} hash: every node URL the region has had → when it was last live (Unix seconds) and a
//	                signature ("unix.sig"), so that pages served by a node that has just left may still reach
//	                the others.
//	sfu:room:{room} hash: node (the id of the owner node), regions (the
//	                room's residency policy, comma-separated, fixed when the room
//	                was first placed), locked ("1" while an administrator has the
//	                room locked), ended (Unix ms of an administrator's last end of
//	                the room), with the lease TTL; taken only if absent
//	                (takeScript). The owner's heartbeat renews it while it still
//	                holds it (compare-and-pexpire Lua script), and takes it again
//	                if it lapsed and nobody else took it (Redis was unreachable
//	                for longer than the TTL, or restarted empty); Release, Close
//	                and the heartbeat, once the node no longer hosts the room,
//	                delete it only if this node holds it (compare-and-delete Lua
//	                script). A lease whose holder has no live node hash is
//	                treated as free.
//
//	sfu:ban:{len(room)}:{room}:{identity}
//	                string: when a kick's ban ends (Unix ms), expiring then;
//	                see Bans (bans.go).
//
// {id} and {room} are used as-is after the prefix (Redis keys are
// binary-safe), so room names may contain any characters.
package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Key prefixes; see the package comment.
const (
	nodeKeyPrefix = "sfu:node:"
	nodesKey      = "sfu:nodes"
	urlsKeyPrefix = "sfu:urls:" // + region: a hash of every node URL the region has had, to when it was last live
	roomKeyPrefix = "sfu:room:"
)

// Defaults for Config.
const (
	DefaultHeartbeat = time.Second
	DefaultTTL       = 3 * time.Second
)

// Hash fields of sfu:node:{id}.
const (
	fieldID       = "id"
	fieldRegion   = "region"
	fieldURL      = "url"
	fieldCapacity = "capacity"
	fieldLoad     = "load"
	fieldDraining = "draining"
	fieldSig      = "sig"
)

var (
	// ErrClosed is returned by the methods of a closed Cluster.
	ErrClosed = errors.New("cluster: closed")
	// ErrNoNode is returned by Place when no live, non-draining node of the
	// allowed regions exists.
	ErrNoNode = errors.New("cluster: no live node available in the allowed regions")
)

// placeAttempts bounds Place's re-reads when it loses a lease race.
const placeAttempts = 5

// Fields of sfu:room:{room}.
const (
	leaseNode    = "node"
	leaseRegions = "regions"
	leaseLocked  = "locked"
	leaseEnded   = "ended"
)

// setScript sets a field (ARGV[1]) of a held lease to ARGV[2]; a room nobody holds is left alone.
var setScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)

// takeScript takes a free lease (1): this node, the room's policy (ARGV[2]), the TTL (ARGV[3]); a held one is
// left alone (0).
var takeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'regions', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// releaseScript deletes a lease only if this node holds it.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// renewScript extends a lease if this node still holds it (1), or takes it again, with the room's policy
// (ARGV[3]), if nobody holds it (2): it lapsed while Redis could not be reached, or Redis restarted without its
// data. Another node's lease is left alone (0).
var renewScript = redis.NewScript(`
local holder = redis.call('HGET', KEYS[1], 'node')
if holder == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
	redis.call('HSET', KEYS[1], 'node', ARGV[1], 'regions', ARGV[3])
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 2
end
return 0`)

// renewBatch bounds the leases renewed in one Redis round trip, so that one pipeline never carries them all.
const renewBatch = 500

// DefaultReleaseGrace is how long a lease is kept after the last time a join here confirmed it, before the
// heartbeat may give it back because the node no longer hosts the room: it covers a join between its placement
// and the room's creation.
const DefaultReleaseGrace = 10 * time.Second

// NodeInfo describes one SFU node.
type NodeInfo struct {
	ID, Region, URL string // URL: the node's public base URL, e.g. "http://127.0.0.1:7880"
	Capacity        int    // participants it takes
	Load            int    // participants it has
	Draining        bool
}

// full reports whether the node has no room left for a participant.
func (n NodeInfo) full() bool { return n.Load >= n.Capacity }

// lessLoaded reports whether a's Load/Capacity ratio is below b's.
// Capacities are positive (New checks this node's; readNode others').
func lessLoaded(a, b NodeInfo) bool {
	return int64(a.Load)*int64(b.Capacity) < int64(b.Load)*int64(a.Capacity)
}

// sameLoad reports whether a and b have the same Load/Capacity ratio.
func sameLoad(a, b NodeInfo) bool {
	return int64(a.Load)*int64(b.Capacity) == int64(b.Load)*int64(a.Capacity)
}

// Config configures a Cluster.
type Config struct {
	RedisURL  string        // redis://127.0.0.1:6379/0
	Secret    []byte        // the cluster secret every node of the region shares: registrations are signed with it
	Node      NodeInfo      // this node (Load is reported by LoadFunc)
	LoadFunc  func() int    // current participants, read at each heartbeat; nil: Node.Load
	Heartbeat time.Duration // default 1 s
	TTL       time.Duration // node and lease time-to-live, default 3 s; must exceed Heartbeat
	Logger    *zap.Logger   // nil: no logging
	// Hosts reports whether this node still hosts a room (the SFU has it open). The heartbeat gives back the
	// lease of a room it no longer hosts, ReleaseGrace after a join here last confirmed it. Nil: leases are
	// kept until Release or Close.
	Hosts        func(room string) bool
	ReleaseGrace time.Duration // default DefaultReleaseGrace
	// OnLost is told, from the heartbeat, that another live node holds the lease of a room this node held (owner):
	// the room should move there. Nil: the lease is only forgotten (and counted).
	OnLost func(room string, owner NodeInfo)
}

// Lease is a room's placement: its owner, whether that is this node, and the room's residency policy (the
// regions whose nodes may host any of its media), fixed when the room was first placed.
type Lease struct {
	Owner   NodeInfo
	Mine    bool
	Regions []string
	Locked  bool      // an administrator has the room locked
	EndedAt time.Time // when an administrator last ended the room (zero: never, under this lease)
}

// lease is a room whose lease this node holds.
type lease struct {
	regions   []string
	confirmed time.Time     // when a join here last found or took it
	releasing chan struct{} // non-nil while the heartbeat gives it back; closed when that is done
}

// LeaseStats counts what happened to this node's leases.
type LeaseStats struct {
	Held     int   // held now
	Released int64 // given back because the node no longer hosted the room
	Retaken  int64 // lapsed (Redis unreachable or emptied) and taken again by the heartbeat
	Lost     int64 // found held by another node while this node held it: the room may be split
}

// Cluster is this node's membership of the cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	rdb       *redis.Client
	secret    []byte
	log       *zap.Logger
	loadFunc  func() int
	heartbeat time.Duration
	ttl       time.Duration

	hosts        func(room string) bool
	onLost       func(room string, owner NodeInfo)
	releaseGrace time.Duration

	cancel context.CancelFunc
	done   chan struct{} // closed when the heartbeat goroutine has returned

	released, retaken, lost atomic.Int64 // see LeaseStats

	// pubMu serialises writes of this node's registration and its removal,
	// so a SetDraining racing Close cannot re-create the node hash.
	pubMu sync.Mutex

	unreachable atomic.Bool // the last heartbeat failed: Redis did not answer

	mu     sync.Mutex
	self   NodeInfo
	leases map[string]*lease // rooms whose lease this node holds
	peers  []NodeInfo        // the region's other live nodes as the last heartbeat read them
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// New connects to Redis, registers this node and starts the heartbeat that
// keeps the registration and this node's room leases alive until Close. ctx
// bounds the connection and registration only, not the Cluster's lifetime.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	n := cfg.Node
	switch {
	case n.ID == "":
		return nil, errors.New("cluster: Node.ID is empty")
	case n.Region == "":
		return nil, errors.New("cluster: Node.Region is empty")
	case n.URL == "":
		return nil, errors.New("cluster: Node.URL is empty")
	case n.Capacity <= 0:
		return nil, fmt.Errorf("cluster: Node.Capacity is %d, want > 0", n.Capacity)
	case len(cfg.Secret) == 0:
		return nil, errors.New("cluster: Secret is empty: registrations must be signed")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL <= cfg.Heartbeat {
		return nil, fmt.Errorf("cluster: TTL %v must exceed the heartbeat %v", cfg.TTL, cfg.Heartbeat)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ReleaseGrace <= 0 {
		cfg.ReleaseGrace = DefaultReleaseGrace
	}
	rdb, err := newRedis(cfg.RedisURL, redisTuning{})
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		rdb:          rdb,
		secret:       cfg.Secret,
		log:          cfg.Logger.With(zap.String("node", n.ID), zap.String("region", n.Region)),
		loadFunc:     cfg.LoadFunc,
		heartbeat:    cfg.Heartbeat,
		ttl:          cfg.TTL,
		hosts:        cfg.Hosts,
		onLost:       cfg.OnLost,
		releaseGrace: cfg.ReleaseGrace,
		self:         n,
		leases:       make(map[string]*lease),
		done:         make(chan struct{}),
	}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		c.rdb.Close()
		return nil, fmt.Errorf("cluster: connect to redis: %w", err)
	}
	// A live registration of the same id at another URL is another node
	// configured with our id: taking it over would merge two nodes' rooms.
	// The same URL is this node restarting, which may take it over.
	if prev, ok, err := c.readNode(ctx, n.ID); err != nil {
		c.rdb.Close()
		return nil, err
	} else if ok && prev.URL != n.URL {
		c.rdb.Close()
		return nil, fmt.Errorf("cluster: node id %q is already registered by the live node at %s", n.ID, prev.URL)
	}
	if err := c.publish(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	if err := c.refreshPeers(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	hbCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(hbCtx)
	c.log.Info("cluster: node registered", zap.String("url", n.URL), zap.Int("capacity", n.Capacity))
	return c, nil
}

// Self returns this node's information as last published.
func (c *Cluster) Self() NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self
}

// Peers returns the other live nodes of this node's region as the last heartbeat read them, least loaded
// first, draining ones last. It reads no Redis: it answers at once whatever Redis does, and is up to a heartbeat
// out of date.
func (c *Cluster) Peers() []NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]NodeInfo(nil), c.peers...)
}

// refreshPeers reads the region's live nodes into the snapshot Peers answers from.
func (c *Cluster) refreshPeers(ctx context.Context) error {
	self := c.Self()
	nodes, err := c.Nodes(ctx, self.Region)
	if err != nil {
		return err
	}
	peers := make([]NodeInfo, 0, len(nodes))
	for _, n := range nodes {
		if n.ID != self.ID {
			peers = append(peers, n)
		}
	}
	c.mu.Lock()
	c.peers = peers
	c.mu.Unlock()
	return nil
}

// Nodes returns the live nodes of region ("" = all regions), least loaded
// first (by Load/Capacity), draining ones last.
func (c *Cluster) Nodes(ctx context.Context, region string) ([]NodeInfo, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	ids, err := c.rdb.SMembers(ctx, nodesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, nodeKeyPrefix+id)
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("cluster: read nodes: %w", err)
		}
	}
	var nodes []NodeInfo
	var gone []any
	for i, cmd := range cmds {
		info, ok := c.parseNode(cmd.Val())
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		if region == "" || info.Region == region {
			nodes = append(nodes, info)
		}
	}
	if len(gone) > 0 {
		// Lazy clean-up of expired members. A node that re-registers in
		// between re-adds itself at its next heartbeat.
		if err := c.rdb.SRem(ctx, nodesKey, gone...).Err(); err != nil {
			c.log.Debug("cluster: remove expired nodes", zap.Error(err))
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if a.Draining != b.Draining {
			return !a.Draining
		}
		if !sameLoad(a, b) {
			return lessLoaded(a, b)
		}
		return a.ID < b.ID
	})
	return nodes, nil
}

// Owner returns the live node holding the room's lease, if any.
func (c *Cluster) Owner(ctx context.Context, room string) (NodeInfo, bool, error) {
	l, ok, err := c.liveOwner(ctx, room)
	return l.Owner, ok, err
}

// owner reads the room's lease. It returns the holder's id even when the holder is not live (holderID non-empty,
// ok false), so that a stale lease can be removed with compare-and-delete.
func (c *Cluster) owner(ctx context.Context, room string) (l Lease, holderID string, ok bool, err error) {
	vals, err := c.rdb.HMGet(ctx, roomKeyPrefix+room, leaseNode, leaseRegions, leaseLocked, leaseEnded).Result()
	if err != nil {
		return Lease{}, "", false, fmt.Errorf("cluster: read owner of room %q: %w", room, err)
	}
	holderID, _ = vals[0].(string)
	if holderID == "" {
		return Lease{}, "", false, nil
	}
	regions, _ := vals[1].(string)
	locked, _ := vals[2].(string)
	l.Regions, l.Locked = splitRegions(regions), locked == "1"
	if ended, _ := vals[3].(string); ended != "" {
		if ms, err := strconv.ParseInt(ended, 10, 64); err == nil {
			l.EndedAt = time.UnixMilli(ms)
		}
	}
	l.Owner, ok, err = c.readNode(ctx, holderID)
	if err != nil {
		return Lease{}, holderID, false, err
	}
	l.Mine = ok && l.Owner.ID == c.selfID()
	return l, holderID, ok, nil
}

// splitRegions decodes a stored policy; joinRegions encodes one.
func splitRegions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinRegions(regions []string) string { return strings.Join(regions, ",") }

// Place is PlaceRoom for callers that need only the owner.
func (c *Cluster) Place(ctx context.Context, room string, regions []string) (owner NodeInfo, mine bool, err error) {
	l, err := c.PlaceRoom(ctx, room, regions)
	return l.Owner, l.Mine, err
}

// PlaceRoom returns the room's lease, placing the room if nobody holds it: on the least-loaded non-draining live
// node of the allowed regions (nil or empty: any region), preferring this node's region when it is allowed, and
// nodes with spare capacity over full ones. Among equally loaded nodes this node is preferred. When the chosen
// node is this one, it takes the lease with regions as the room's policy (Mine); when another node is chosen,
// no lease is taken for it (it takes the lease itself when the client arrives). A held lease keeps the policy
// it was placed with, whatever regions says. A lease held by a node whose heartbeat has lapsed is treated as
// free. Of several nodes placing the same room at once exactly one ends as the owner, and all of them return it.
func (c *Cluster) PlaceRoom(ctx context.Context, room string, regions []string) (Lease, error) {
	if room == "" {
		return Lease{}, errors.New("cluster: empty room name")
	}
	for attempt := 0; attempt < placeAttempts; attempt++ {
		l, found, err := c.liveOwner(ctx, room)
		if err != nil {
			return Lease{}, err
		}
		if found {
			if !l.Mine {
				return l, nil
			}
			wait := c.confirm(room, l.Regions)
			if wait == nil {
				return l, nil
			}
			select { // the heartbeat is giving the lease back: place the room again once it has
			case <-wait:
				continue
			case <-ctx.Done():
				return Lease{}, fmt.Errorf("cluster: place room %q: %w", room, ctx.Err())
			}
		}
		nodes, err := c.Nodes(ctx, "")
		if err != nil {
			return Lease{}, err
		}
		chosen, ok := c.choose(nodes, regions)
		if !ok {
			return Lease{}, fmt.Errorf("%w: room %q, regions %q", ErrNoNode, room, regions)
		}
		if chosen.ID != c.selfID() {
			return Lease{Owner: chosen, Regions: regions}, nil
		}
		took, err := c.take(ctx, room, regions)
		if err != nil {
			return Lease{}, err
		}
		if took {
			c.log.Debug("cluster: room placed here", zap.String("room", room))
			return Lease{Owner: chosen, Mine: true, Regions: regions}, nil
		}
		// Another node took the lease first: re-read its owner.
	}
	return Lease{}, fmt.Errorf("cluster: place room %q: the lease kept changing hands", room)
}

// confirm notes that a join here found this node's lease on room (the grace before the heartbeat may give it back
// starts again), and learns a lease it did not know of (taken before a restart under the same id). It returns the
// channel to wait on instead when the heartbeat is giving the lease back.
func (c *Cluster) confirm(room string, regions []string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	l := c.leases[room]
	if l == nil {
		l = &lease{regions: regions}
		c.leases[room] = l
	}
	if l.releasing != nil {
		return l.releasing
	}
	l.confirmed = time.Now()
	return nil
}

// liveOwner returns the room's lease if a live node holds it; a lease left by a dead node is dropped.
func (c *Cluster) liveOwner(ctx context.Context, room string) (Lease, bool, error) {
	if c.isClosed() {
		return Lease{}, false, ErrClosed
	}
	l, holder, ok, err := c.owner(ctx, room)
	if err != nil || ok {
		return l, ok, err
	}
	if holder != "" {
		if err := c.dropStale(ctx, room, holder); err != nil {
			return Lease{}, false, err
		}
	}
	return Lease{}, false, nil
}

// Release drops this node's lease on the room, if it holds it.
func (c *Cluster) Release(ctx context.Context, room string) error {
	if c.isClosed() {
		return ErrClosed
	}
	c.mu.Lock()
	delete(c.leases, room)
	c.mu.Unlock()
	if err := releaseScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, c.selfID()).Err(); err != nil {
		return fmt.Errorf("cluster: release room %q: %w", room, err)
	}
	return nil
}

// SetLocked records that an administrator locked (or unlocked) the room, with its lease; a room nobody holds is
// left alone.
func (c *Cluster) SetLocked(ctx context.Context, room string, locked bool) error {
	v := "0"
	if locked {
		v = "1"
	}
	if err := setScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, leaseLocked, v).Err(); err != nil {
		return fmt.Errorf("cluster: lock room %q: %w", room, err)
	}
	return nil
}

// SetEnded records, with the room's lease, that an administrator ended the room now: a relay that was down then
// ends its node's part of the room too (relays.keep). A room nobody holds is left alone.
func (c *Cluster) SetEnded(ctx context.Context, room string) error {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := setScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, leaseEnded, now).Err(); err != nil {
		return fmt.Errorf("cluster: end room %q: %w", room, err)
	}
	return nil
}

// Leases counts this node's leases and what became of them.
func (c *Cluster) Leases() LeaseStats {
	c.mu.Lock()
	held := len(c.leases)
	c.mu.Unlock()
	return LeaseStats{Held: held, Released: c.released.Load(), Retaken: c.retaken.Load(), Lost: c.lost.Load()}
}

// ErrNotReady is why a node takes no new participants now (Ready).
var ErrNotReady = errors.New("not ready")

// Ready reports whether this node takes new rooms and participants: it has not left the cluster, is not draining,
// and its last heartbeat reached Redis.
func (c *Cluster) Ready() error {
	c.mu.Lock()
	closed, draining := c.closed, c.self.Draining
	c.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("%w: left the cluster", ErrNotReady)
	case draining:
		return fmt.Errorf("%w: draining", ErrNotReady)
	case c.unreachable.Load():
		return fmt.Errorf("%w: the cluster store (Redis) does not answer", ErrNotReady)
	}
	return nil
}

// SetDraining marks this node draining (or not) and publishes it at once.
// Place does not choose draining nodes for new rooms.
func (c *Cluster) SetDraining(ctx context.Context, draining bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.self.Draining = draining
	c.mu.Unlock()
	if err := c.publish(ctx); err != nil {
		return err
	}
	c.log.Info("cluster: draining changed", zap.Bool("draining", draining))
	return nil
}

// Close stops the heartbeat, releases this node's leases and deregisters it
// at once, so other nodes stop seeing it without waiting for the TTL.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.stop()
		ctx, cancel := context.WithTimeout(context.Background(), c.ttl)
		defer cancel()
		c.closeErr = c.deregister(ctx)
		if err := c.rdb.Close(); err != nil && c.closeErr == nil {
			c.closeErr = fmt.Errorf("cluster: close redis client: %w", err)
		}
		c.log.Info("cluster: node deregistered")
	})
	return c.closeErr
}

// KnownURL reports whether url has been a live node of region within the last maxAge: browsers' pages served
// by a node that has just drained or died may still open another node's socket.
func (c *Cluster) KnownURL(ctx context.Context, region, url string, maxAge time.Duration) (bool, error) {
	v, err := c.rdb.HGet(ctx, urlsKeyPrefix+region, url).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cluster: known url: %w", err)
	}
	when, sigHex, _ := strings.Cut(v, ".")
	sig, err := hex.DecodeString(sigHex)
	if err != nil || !hmac.Equal(sig, c.sign("url", region, url, when)) {
		return false, nil // not written by a node of the cluster
	}
	unix, err := strconv.ParseInt(when, 10, 64)
	return err == nil && time.Since(time.Unix(unix, 0)) <= maxAge, nil
}

// sign is the HMAC-SHA256 of fields (each ended by a newline, so that no two field lists sign alike) with the
// cluster secret.
func (c *Cluster) sign(fields ...string) []byte {
	m := hmac.New(sha256.New, c.secret)
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// Abandon stops heartbeating and disconnects without removing anything from Redis, as a crash would: the node
// and its leases vanish when their time-to-live runs out. Tests use it to kill a node.
func (c *Cluster) Abandon() {
	c.closeOnce.Do(func() {
		c.stop()
		_ = c.rdb.Close()
	})
}

// stop marks the Cluster closed and stops the heartbeat goroutine, leaving
// the Redis keys as they are.
func (c *Cluster) stop() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
}

func (c *Cluster) deregister(ctx context.Context) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	rooms := make([]string, 0, len(c.leases))
	for room := range c.leases {
		rooms = append(rooms, room)
	}
	c.leases = make(map[string]*lease)
	id := c.self.ID
	c.mu.Unlock()

	pipe := c.rdb.Pipeline()
	for _, room := range rooms {
		releaseScript.Eval(ctx, pipe, []string{roomKeyPrefix + room}, id)
	}
	pipe.Del(ctx, nodeKeyPrefix+id)
	pipe.SRem(ctx, nodesKey, id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: deregister node %q: %w", id, err)
	}
	return nil
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Cluster) selfID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.self.ID
}

// choose picks the node Place puts a new room on, from nodes as Nodes
// returns them.
func (c *Cluster) choose(nodes []NodeInfo, regions []string) (NodeInfo, bool) {
	self := c.Self()
	allowed := func(region string) bool {
		if len(regions) == 0 {
			return true
		}
		for _, r := range regions {
			if r == region {
				return true
			}
		}
		return false
	}
	preferSelfRegion := allowed(self.Region)
	var best NodeInfo
	found := false
	// rank: lower is better. Spare capacity first, then this node's region
	// (when allowed), then load, then this node, then id.
	better := func(a, b NodeInfo) bool {
		if a.full() != b.full() {
			return !a.full()
		}
		if preferSelfRegion {
			ah, bh := a.Region == self.Region, b.Region == self.Region
			if ah != bh {
				return ah
			}
		}
		if !sameLoad(a, b) {
			return lessLoaded(a, b)
		}
		if (a.ID == self.ID) != (b.ID == self.ID) {
			return a.ID == self.ID
		}
		return a.ID < b.ID
	}
	for _, n := range nodes {
		if n.Draining || !allowed(n.Region) {
			continue
		}
		if !found || better(n, best) {
			best, found = n, true
		}
	}
	return best, found
}

// take sets the room's lease to this node, with the room's policy (none: this node's region), if nobody holds it.
func (c *Cluster) take(ctx context.Context, room string, regions []string) (bool, error) {
	if len(regions) == 0 {
		regions = []string{c.Self().Region}
	}
	id := c.selfID()
	n, err := takeScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, id, joinRegions(regions), c.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: take lease of room %q: %w", room, err)
	}
	if n != 1 {
		return false, nil
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.leases[room] = &lease{regions: regions, confirmed: time.Now()}
	}
	c.mu.Unlock()
	if closed {
		// Close ran meanwhile and released the leases it knew of.
		_ = releaseScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, id).Err()
		return false, ErrClosed
	}
	return true, nil
}

// dropStale deletes a lease held by a node that is no longer live, if that
// node still holds it.
func (c *Cluster) dropStale(ctx context.Context, room, holder string) error {
	if err := releaseScript.Run(ctx, c.rdb, []string{roomKeyPrefix + room}, holder).Err(); err != nil {
		return fmt.Errorf("cluster: drop stale lease of room %q held by %q: %w", room, holder, err)
	}
	c.log.Info("cluster: dropped the lease of a lapsed node", zap.String("room", room), zap.String("holder", holder))
	return nil
}

// readNode reads a node's hash; ok is false when it has expired.
func (c *Cluster) readNode(ctx context.Context, id string) (NodeInfo, bool, error) {
	m, err := c.rdb.HGetAll(ctx, nodeKeyPrefix+id).Result()
	if err != nil {
		return NodeInfo{}, false, fmt.Errorf("cluster: read node %q: %w", id, err)
	}
	n, ok := c.parseNode(m)
	return n, ok, nil
}

// parseNode decodes a node hash. An empty, malformed or unsigned hash is not a live node.
func (c *Cluster) parseNode(m map[string]string) (NodeInfo, bool) {
	if len(m) == 0 || m[fieldID] == "" {
		return NodeInfo{}, false
	}
	sig, err := hex.DecodeString(m[fieldSig])
	if err != nil || !hmac.Equal(sig, c.sign(m[fieldID], m[fieldRegion], m[fieldURL], m[fieldCapacity], m[fieldLoad], m[fieldDraining])) {
		c.log.Debug("cluster: a node registration without a valid signature is ignored", zap.String("id", m[fieldID]))
		return NodeInfo{}, false
	}
	capacity, err := strconv.Atoi(m[fieldCapacity])
	if err != nil || capacity <= 0 {
		return NodeInfo{}, false
	}
	load, err := strconv.Atoi(m[fieldLoad])
	if err != nil {
		return NodeInfo{}, false
	}
	return NodeInfo{
		ID:       m[fieldID],
		Region:   m[fieldRegion],
		URL:      m[fieldURL],
		Capacity: capacity,
		Load:     load,
		Draining: m[fieldDraining] == "1",
	}, true
}

// publish writes this node's whole registration with a fresh TTL. The whole
// hash is written every time so that a write after the hash expired never
// leaves a partial record.
func (c *Cluster) publish(ctx context.Context) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	load := -1
	if c.loadFunc != nil {
		load = c.loadFunc()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if load >= 0 {
		c.self.Load = load
	}
	n := c.self
	c.mu.Unlock()

	draining := "0"
	if n.Draining {
		draining = "1"
	}
	key := nodeKeyPrefix + n.ID
	capacity, loadNow := strconv.Itoa(n.Capacity), strconv.Itoa(n.Load)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	pipe := c.rdb.TxPipeline()
	pipe.HSet(ctx, key,
		fieldID, n.ID,
		fieldRegion, n.Region,
		fieldURL, n.URL,
		fieldCapacity, capacity,
		fieldLoad, loadNow,
		fieldDraining, draining,
		fieldSig, hex.EncodeToString(c.sign(n.ID, n.Region, n.URL, capacity, loadNow, draining)),
	)
	pipe.PExpire(ctx, key, c.ttl)
	pipe.SAdd(ctx, nodesKey, n.ID)
	// When this URL was last a live node of the region.
	pipe.HSet(ctx, urlsKeyPrefix+n.Region, n.URL, now+"."+hex.EncodeToString(c.sign("url", n.Region, n.URL, now)))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: publish node %q: %w", n.ID, err)
	}
	return nil
}

// run is the heartbeat goroutine: it republishes this node, re-reads its
// region's nodes and renews its leases every heartbeat until ctx is
// cancelled.
func (c *Cluster) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.beat(ctx)
		if ctx.Err() != nil {
			return
		}
		c.unreachable.Store(err != nil)
		switch {
		case err != nil && !failing:
			failing = true
			c.log.Warn("cluster: heartbeat failed", zap.Error(err))
		case err == nil && failing:
			failing = false
			c.log.Info("cluster: heartbeat recovered")
		}
	}
}

// beat publishes this node, renews its leases and refreshes the snapshot of
// its region's nodes. A failed refresh keeps the last snapshot.
func (c *Cluster) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.heartbeat)
	defer cancel()
	if err := c.publish(ctx); err != nil {
		return err
	}
	return errors.Join(c.renew(ctx), c.refreshPeers(ctx))
}

// renew extends this node's leases in batches of renewBatch, first giving back those of rooms the node no longer
// hosts (see Config.Hosts), and forgets the leases it lost.
func (c *Cluster) renew(ctx context.Context) error {
	idle := c.releaseIdle(ctx)
	c.mu.Lock()
	rooms := make([]string, 0, len(c.leases))
	policies := make([]string, 0, len(c.leases))
	for room, l := range c.leases {
		if l.releasing == nil {
			rooms = append(rooms, room)
			policies = append(policies, joinRegions(l.regions))
		}
	}
	id := c.self.ID
	c.mu.Unlock()
	var errs []error
	for start := 0; start < len(rooms); start += renewBatch {
		end := min(start+renewBatch, len(rooms))
		errs = append(errs, c.renewBatch(ctx, id, rooms[start:end], policies[start:end]))
	}
	return errors.Join(append(errs, idle)...)
}

// renewBatch renews the leases of rooms (whose policies are policies) in one round trip.
func (c *Cluster) renewBatch(ctx context.Context, id string, rooms, policies []string) error {
	ttl := strconv.FormatInt(c.ttl.Milliseconds(), 10)
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(rooms))
	for i, room := range rooms {
		cmds[i] = renewScript.Eval(ctx, pipe, []string{roomKeyPrefix + room}, id, ttl, policies[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: renew leases: %w", err)
	}
	var lost []string
	defer func() { c.moveLost(ctx, lost) }()
	for i, cmd := range cmds {
		n, _ := cmd.Int64()
		if n == 1 {
			continue
		}
		c.mu.Lock()
		_, held := c.leases[rooms[i]] // false: Released meanwhile
		if n != 2 {
			delete(c.leases, rooms[i])
		}
		c.mu.Unlock()
		switch {
		case n == 2 && held:
			c.retaken.Add(1)
			c.log.Warn("cluster: took the lapsed lease of a room again", zap.String("room", rooms[i]))
		case n == 2: // Released after the rooms were read: give back what the script took
			if err := releaseScript.Run(ctx, c.rdb, []string{roomKeyPrefix + rooms[i]}, id).Err(); err != nil {
				return fmt.Errorf("cluster: release room %q: %w", rooms[i], err)
			}
		case held:
			c.lost.Add(1)
			c.log.Error("cluster: another node holds the lease of a room this node holds: the room moves there",
				zap.String("room", rooms[i]))
			lost = append(lost, rooms[i])
		}
	}
	return nil
}

// moveLost tells OnLost where each lost room now lives, if a live node holds it.
func (c *Cluster) moveLost(ctx context.Context, rooms []string) {
	if c.onLost == nil {
		return
	}
	for _, room := range rooms {
		if l, ok, err := c.liveOwner(ctx, room); err == nil && ok && !l.Mine {
			c.onLost(room, l.Owner)
		}
	}
}

// releaseIdle gives back the leases of the rooms this node no longer hosts and no join has confirmed for the
// release grace. Hosts is asked without c.mu held; a lease a join confirms meanwhile is kept, and a join that
// finds a lease being given back waits for it and places the room again (PlaceRoom).
func (c *Cluster) releaseIdle(ctx context.Context) error {
	if c.hosts == nil {
		return nil
	}
	type candidate struct {
		room      string
		confirmed time.Time
	}
	now := time.Now()
	var cands []candidate
	c.mu.Lock()
	for room, l := range c.leases {
		if l.releasing == nil && now.Sub(l.confirmed) >= c.releaseGrace {
			cands = append(cands, candidate{room, l.confirmed})
		}
	}
	c.mu.Unlock()
	var idle []string
	for _, cd := range cands {
		if !c.hosts(cd.room) {
			idle = append(idle, cd.room)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	releasing := make([]*lease, 0, len(idle))
	c.mu.Lock()
	rooms := idle[:0]
	for i, room := range idle {
		l := c.leases[room]
		if l == nil || l.releasing != nil || !l.confirmed.Equal(cands[i].confirmed) {
			continue // released, or confirmed by a join since it was read
		}
		l.releasing = make(chan struct{})
		rooms = append(rooms, room)
		releasing = append(releasing, l)
	}
	id := c.self.ID
	c.mu.Unlock()

	var err error
	for start := 0; start < len(rooms); start += renewBatch {
		end := min(start+renewBatch, len(rooms))
		pipe := c.rdb.Pipeline()
		for _, room := range rooms[start:end] {
			releaseScript.Eval(ctx, pipe, []string{roomKeyPrefix + room}, id)
		}
		if _, e := pipe.Exec(ctx); e != nil && err == nil {
			err = fmt.Errorf("cluster: give back the leases of closed rooms: %w", e) // they lapse after the TTL
		}
	}
	c.mu.Lock()
	for i, room := range rooms {
		if c.leases[room] == releasing[i] {
			delete(c.leases, room)
		}
		close(releasing[i].releasing)
	}
	c.mu.Unlock()
	c.released.Add(int64(len(rooms)))
	c.log.Debug("cluster: gave back the leases of closed rooms", zap.Int("rooms", len(rooms)))
	return err
}
