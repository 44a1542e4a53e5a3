package signaling

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"go.uber.org/zap"
)

// Placement says where rooms live when this node is one of several in its region (sfu/cluster's Placement);
// with none, this node hosts every room.
type Placement interface {
	// Region is this node's region.
	Region() string
	// Route decides where a participant of room goes: here, or to another node (Redirect, a base URL). Claim is
	// the token's regions (nil: none). A new room takes the claim as its residency policy (none: this node's
	// region); a placed room keeps its own, which a claim may narrow and never widen. A participant this node's
	// region may not host gets an error wrapping ErrResidency.
	Route(ctx context.Context, room string, claim []string) (Route, error)
	// Admit decides whether a relay's participant (a relay token, whose claim is the room's policy) may join here:
	// the room must be open on a node of the cluster (else ErrNotPlaced: a relay never recreates an ended room),
	// and this node's region allowed (else ErrResidency).
	Admit(ctx context.Context, room string, claim []string) error
	// SetLocked stores an administrator's lock or unlock of the room with its placement, so that a node that
	// hosts part of the room later refuses newcomers too (Route.Locked).
	SetLocked(ctx context.Context, room string, locked bool) error
	// SetEnded stores that an administrator ended the room, so that a node whose relay was down then ends its part
	// of the room too.
	SetEnded(ctx context.Context, room string) error
	// Fallbacks are the base URLs of the region's other live nodes that take rooms, for a client whose node goes
	// away. It is asked on every join, before the SFU's join: it should answer from memory (a snapshot), not
	// look anything up over the network.
	Fallbacks() []string
	// IsPeer reports whether a base URL (an Origin) is, or recently was, a node of the region: pages it serves
	// may open this node's socket.
	IsPeer(base string) bool
}

// Route is where a joining participant goes.
type Route struct {
	Redirect string // another node's base URL; "" means here
	// Release, when set, is called when the participant hosted here leaves: a room hosted here while its owner
	// is another node (a full one) is relayed to and from the owner while it has participants here.
	Release func()
	// Locked: an administrator locked the room (on any node); the join is refused unless it is an admin's.
	Locked bool
	// Regions is the room's residency policy (sfu.JoinRequest.Regions), for a participant hosted here.
	Regions []string
}

// storeModeration stores an administrator's lock, unlock or end of the room with its placement, so that the other
// nodes hosting part of it (now or later) follow it; other actions need nothing stored. Network I/O, bounded.
func (srv *Server) storeModeration(room, action string) {
	pl := srv.placement
	if pl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	switch action {
	case sfu.ActionLock, sfu.ActionUnlock:
		err = pl.SetLocked(ctx, room, action == sfu.ActionLock)
	case sfu.ActionEnd:
		err = pl.SetEnded(ctx, room)
	}
	if err != nil {
		srv.log.Warn("the cluster does not know of the room's moderation: other nodes may not follow it",
			zap.String("room", room), zap.String("action", action), zap.Error(err))
	}
}

var (
	// ErrResidency refuses a room on a node outside the regions its policy names.
	ErrResidency = errors.New("data residency: the room may not be hosted in this region")
	// ErrNotPlaced refuses a relay into a room that no node of the cluster has open.
	ErrNotPlaced = errors.New("the room is not open in the cluster")
)

// wsURL turns a node's base URL into its signaling WebSocket URL.
func wsURL(base string) string {
	base = strings.TrimSuffix(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + "/ws"
}
