package signaling

import (
	"context"
	"errors"
	"strings"
)

// Placement says where rooms live when this node is one of several in its region (sfu/cluster's Placement);
// with none, this node hosts every room.
type Placement interface {
	// Region is this node's region.
	Region() string
	// Route decides where a participant of room goes: here, or to another node (Redirect, a base URL). Regions
	// is the room's residency policy (never empty). A room that may not live in this node's region gets an
	// error wrapping ErrResidency.
	Route(ctx context.Context, room string, regions []string) (Route, error)
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
}

// ErrResidency refuses a room on a node outside the regions its policy names.
var ErrResidency = errors.New("data residency: the room may not be hosted in this region")

// roomRegions is a room's residency policy: the token's regions claim, else this node's region.
func roomRegions(claims *Claims, nodeRegion string) []string {
	if len(claims.Regions) > 0 {
		return claims.Regions
	}
	return []string{nodeRegion}
}

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
