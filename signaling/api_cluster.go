package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/signaling/protocol"
)

// The server API across a cluster: any node answers. A call about a room that another live node owns (holds its
// lease) is forwarded to that node, with the same method, path, body and bearer token, and answered with what it
// answers; a forwarded call carries ForwardedHeader and is never forwarded again (one hop at most). The list of
// rooms asks every other live node for its own and merges them. A node that does not own a room answers for it
// itself (404 if it does not host it).

// ForwardedHeader marks an API call one node forwarded to another.
const ForwardedHeader = "X-Sfu-Api-Forwarded"

// forwardTimeout bounds a forwarded call, and each node's answer to the list of rooms.
const forwardTimeout = 5 * time.Second

// maxForwardedAnswer bounds the body read back from another node.
const maxForwardedAnswer = 4 << 20

// RoomDirectory is what the server API asks of a Placement that knows the cluster's rooms and nodes (sfu/cluster's
// Placement implements it); without one, the node answers for its own rooms only.
type RoomDirectory interface {
	// NodeID is this node's id, URL its base URL.
	NodeID() string
	URL() string
	// RoomOwner is the base URL of the live node that owns the room; "" if none does.
	RoomOwner(ctx context.Context, room string) (string, error)
	// PlaceRoom places a room about to be created (regions: its residency) as a join would: "" when it is placed
	// here (this node took its lease), else the base URL of the node to create it on. here: the call was forwarded
	// already, so the room is taken here if no other node owns it.
	PlaceRoom(ctx context.Context, room string, regions []string, here bool) (string, error)
	// NodeURLs are the base URLs of the cluster's other live nodes.
	NodeURLs(ctx context.Context) ([]string, error)
}

// directory is the placement's RoomDirectory, or nil.
func (srv *Server) directory() RoomDirectory {
	d, _ := srv.placement.(RoomDirectory)
	return d
}

// apiRegion is this node's region: its placement's, else the configured one.
func (srv *Server) apiRegion() string {
	if srv.placement != nil {
		return srv.placement.Region()
	}
	return srv.region
}

// apiNodeID is this node's id: its cluster id, else the configured one, else the host name.
func (srv *Server) apiNodeID() string {
	if d := srv.directory(); d != nil {
		return d.NodeID()
	}
	if srv.nodeID != "" {
		return srv.nodeID
	}
	host, _ := os.Hostname()
	return host
}

// forwarded reports whether another node forwarded this call.
func forwarded(r *http.Request) bool { return r.Header.Get(ForwardedHeader) != "" }

// owned runs h for a room this node hosts, or that no other live node owns; a call about a room another node
// owns is forwarded there.
func (srv *Server) owned(h apiHandler) apiHandler {
	return func(r *http.Request, c *Claims) (apiResult, error) {
		d := srv.directory()
		room := r.PathValue("room")
		if d == nil || forwarded(r) || !validRoom(room) {
			return h(r, c)
		}
		if _, err := srv.sfu.Room(room); err == nil {
			return h(r, c)
		}
		ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
		owner, err := d.RoomOwner(ctx, room)
		cancel()
		if err != nil {
			return apiResult{}, protocol.Errorf(protocol.CodeUnavailable, "", "cannot find the room's node: %v", err)
		}
		if owner == "" || owner == d.URL() {
			return h(r, c)
		}
		body, err := readBody(r)
		if err != nil {
			return apiResult{}, err
		}
		return srv.forward(r, owner, body)
	}
}

// placeCreated places a room to be created; ok when the call went to another node (res is its answer).
func (srv *Server) placeCreated(r *http.Request, room string, regions []string, body []byte) (apiResult, bool, error) {
	d := srv.directory()
	if d == nil {
		return apiResult{}, false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	node, err := d.PlaceRoom(ctx, room, regions, forwarded(r))
	cancel()
	switch {
	case errors.Is(err, ErrResidency):
		return apiResult{}, false, protocol.Errorf(protocol.CodeResidency, "", "%v", err)
	case err != nil:
		return apiResult{}, false, protocol.Errorf(protocol.CodeUnavailable, "", "cannot place the room: %v", err)
	case node == "" || node == d.URL():
		return apiResult{}, false, nil
	case forwarded(r): // another node took it meanwhile
		return apiResult{}, false, protocol.Errorf(protocol.CodeExists, "", "room %.40q is owned by the node at %s", room, node)
	}
	res, err := srv.forward(r, node, body)
	return res, true, err
}

// forward sends the call to the node at base and returns its answer.
func (srv *Server) forward(r *http.Request, base string, body []byte) (apiResult, error) {
	ans, status, err := srv.callNode(r.Context(), r.Method, base, r.URL.RequestURI(), r.Header.Get("Authorization"), body)
	if err != nil {
		return apiResult{}, protocol.Errorf(protocol.CodeUnavailable, "", "the room's node %s: %v", base, err)
	}
	res := apiResult{status: status, raw: ans, detail: map[string]any{"forwarded_to": base}}
	if status == http.StatusNoContent || len(ans) == 0 {
		res.raw = nil
	}
	return res, nil
}

// callNode makes one call to another node, marked as forwarded, and reads its answer.
func (srv *Server) callNode(ctx context.Context, method, base, uri, auth string, body []byte) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+uri, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set(ForwardedHeader, srv.apiNodeID())
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedAnswer))
	if err != nil {
		return nil, 0, err
	}
	return ans, resp.StatusCode, nil
}

// clusterRooms asks every other live node of the cluster for its rooms, at once; it returns them and the nodes
// that did not answer. Nothing for a call that was forwarded, or without a cluster.
func (srv *Server) clusterRooms(r *http.Request) ([]apiRoom, []string) {
	d := srv.directory()
	if d == nil || forwarded(r) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	urls, err := d.NodeURLs(ctx)
	if err != nil {
		srv.log.Warn("api: list the cluster's nodes", zap.Error(err))
		return nil, []string{"cluster store: " + err.Error()}
	}
	var (
		mu          sync.Mutex
		rooms       []apiRoom
		unreachable []string
		wg          sync.WaitGroup
	)
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans struct {
				Rooms []apiRoom `json:"rooms"`
			}
			b, status, err := srv.callNode(ctx, http.MethodGet, u, r.URL.RequestURI(), r.Header.Get("Authorization"), nil)
			if err == nil && status == http.StatusOK {
				err = json.Unmarshal(b, &ans)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil || status != http.StatusOK {
				srv.log.Info("api: a node did not list its rooms", zap.String("node", u), zap.Int("status", status), zap.Error(err))
				unreachable = append(unreachable, u)
				return
			}
			rooms = append(rooms, ans.Rooms...)
		}()
	}
	wg.Wait()
	return rooms, unreachable
}
