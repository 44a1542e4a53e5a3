package cluster

import (
	"context"
	"fmt"
	"slices"

	"github.com/edge-sfu/sfu/signaling"
)

// What the server API asks of the cluster (signaling.RoomDirectory): which node owns a room, where a room created
// ahead of time goes, and the other nodes to ask for their rooms.

var _ signaling.RoomDirectory = (*Placement)(nil)

// NodeID implements signaling.RoomDirectory.
func (p *Placement) NodeID() string { return p.c.Self().ID }

// URL implements signaling.RoomDirectory.
func (p *Placement) URL() string { return p.c.Self().URL }

// RoomOwner implements signaling.RoomDirectory: the base URL of the live node holding the room's lease.
func (p *Placement) RoomOwner(ctx context.Context, room string) (string, error) {
	owner, ok, err := p.c.Owner(ctx, room)
	if err != nil || !ok {
		return "", err
	}
	return owner.URL, nil
}

// PlaceRoom implements signaling.RoomDirectory: as a join places a room (Cluster.Place) or, for a call forwarded
// here, on this node unless another live node owns the room.
func (p *Placement) PlaceRoom(ctx context.Context, room string, regions []string, here bool) (string, error) {
	self := p.c.Self()
	if !here {
		owner, mine, err := p.c.Place(ctx, room, regions)
		if err != nil || mine {
			return "", err
		}
		return owner.URL, nil
	}
	if len(regions) > 0 && !slices.Contains(regions, self.Region) {
		return "", fmt.Errorf("room %q is kept in %v; this node is in %s: %w", room, regions, self.Region, signaling.ErrResidency)
	}
	for range placeAttempts {
		l, found, err := p.c.liveOwner(ctx, room)
		if err != nil {
			return "", err
		}
		if found {
			if l.Mine {
				p.c.confirm(room, l.Regions)
				return "", nil
			}
			return l.Owner.URL, nil
		}
		took, err := p.c.take(ctx, room, regions)
		if err != nil || took {
			return "", err
		}
	}
	return "", fmt.Errorf("cluster: place room %q: the lease kept changing hands", room)
}

// NodeURLs implements signaling.RoomDirectory: the other live nodes of every region, as Redis has them now.
func (p *Placement) NodeURLs(ctx context.Context) ([]string, error) {
	nodes, err := p.c.Nodes(ctx, "")
	if err != nil {
		return nil, err
	}
	self := p.c.Self().ID
	var urls []string
	for _, n := range nodes {
		if n.ID != self {
			urls = append(urls, n.URL)
		}
	}
	return urls, nil
}
