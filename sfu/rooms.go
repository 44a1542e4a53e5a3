package sfu

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// The server's view of its rooms, for the server API (signaling/api.go): what is open on this node, and the
// administrator's kick and end carried out without an administrator in the room.

// RoomInfo describes an open room.
type RoomInfo struct {
	Name         string
	Participants int
	CreatedAt    time.Time
	Metadata     string
	Settings     RoomSettings
	E2EE         bool // end-to-end encrypted: its settings say so, or its first participant encrypted (Room.E2EE)
	// Regions is the residency the room was created with (CreateRoom); nil for a room opened by a join.
	Regions []string
	// EmptyTimeout is how long the room stays open while empty: 0 for a room opened by a join, which closes when
	// its last participant leaves.
	EmptyTimeout time.Duration
}

// ErrExists refuses to create a room that is open already.
var ErrExists = errors.New("already exists")

// DefaultEmptyTimeout is how long a room created through the API stays open while nobody is in it: after its
// creation, and after its last participant leaves.
const DefaultEmptyTimeout = 5 * time.Minute

// MaxMetadata bounds the metadata of a room or a participant, in bytes.
const MaxMetadata = 4096

// SettingsChecker is a Worker that can tell whether room settings can run on this node (CreateRoom asks it).
type SettingsChecker interface {
	CheckSettings(RoomSettings) error
}

// Rooms describes the rooms open on this node, by name.
func (s *SFU) Rooms() []RoomInfo {
	rooms := s.openRooms()
	out := make([]RoomInfo, 0, len(rooms))
	for _, rm := range rooms {
		out = append(out, rm.info())
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Room describes one open room; ErrNotFound if this node does not host it.
func (s *SFU) Room(name string) (RoomInfo, error) {
	rm, err := s.openRoom(name)
	if err != nil {
		return RoomInfo{}, err
	}
	return rm.info(), nil
}

func (rm *Room) info() RoomInfo {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	members := len(rm.remotes)
	for _, p := range rm.participants {
		if !p.relay {
			members++
		}
	}
	return RoomInfo{Name: rm.name, Participants: members, CreatedAt: rm.created, Metadata: rm.metadata,
		Settings: rm.settings, E2EE: rm.E2EE(), Regions: slices.Clone(rm.regions), EmptyTimeout: rm.keepEmpty}
}

// RoomOptions are what a room is created with (CreateRoom).
type RoomOptions struct {
	// Settings is a JSON object of room settings (RoomSettings: the room layer's keys and the workers'); its keys
	// replace those of the node's configuration for the room. nil: the node's.
	Settings json.RawMessage
	Metadata string
	Regions  []string
	// EmptyTimeout is how long the room stays open while nobody is in it; 0: DefaultEmptyTimeout.
	EmptyTimeout time.Duration
}

// settingsFor is the node's configured settings of a room.
func (s *SFU) settingsFor(name string) RoomSettings {
	if s.roomSettings == nil {
		return RoomSettings{}
	}
	return s.roomSettings(name)
}

// CreateRoom opens an empty room ahead of its participants, with its own settings and metadata. It stays open
// while empty for its EmptyTimeout (after its creation and after its last participant leaves) and until it is
// ended. ErrExists if the room is open already; ErrBadRequest for settings or metadata that cannot be taken.
func (s *SFU) CreateRoom(name string, o RoomOptions) (RoomInfo, error) {
	if err := checkMetadata(o.Metadata); err != nil {
		return RoomInfo{}, err
	}
	if o.EmptyTimeout <= 0 {
		o.EmptyTimeout = DefaultEmptyTimeout
	}
	settings, err := mergeSettings(s.settingsFor(name), o.Settings)
	if err != nil {
		return RoomInfo{}, err
	}
	for _, w := range s.workers {
		if c, ok := w.(SettingsChecker); ok {
			if err := c.CheckSettings(settings); err != nil {
				return RoomInfo{}, fmt.Errorf("room settings: %w: %w", err, ErrBadRequest)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return RoomInfo{}, ErrShutdown
	case s.rooms[name] != nil:
		return RoomInfo{}, fmt.Errorf("room %.40q is open on this node: %w", name, ErrExists)
	}
	rm := newRoomWith(name, s, settings)
	rm.metadata, rm.regions, rm.keepEmpty = o.Metadata, slices.Clone(o.Regions), o.EmptyTimeout
	s.rooms[name] = rm
	s.log.Info("room created", zap.String("room", name), zap.Duration("empty_timeout", o.EmptyTimeout))
	return rm.info(), nil
}

// mergeSettings lays the keys of the JSON object over into base's.
func mergeSettings(base RoomSettings, over json.RawMessage) (RoomSettings, error) {
	if len(over) == 0 {
		return base, nil
	}
	keys := map[string]json.RawMessage{}
	if err := json.Unmarshal(base.JSON(), &keys); err != nil {
		return RoomSettings{}, fmt.Errorf("room settings: %w", err)
	}
	var more map[string]json.RawMessage
	if err := json.Unmarshal(over, &more); err != nil {
		return RoomSettings{}, fmt.Errorf("room settings: %w: %w", err, ErrBadRequest)
	}
	maps.Copy(keys, more)
	b, err := json.Marshal(keys)
	if err != nil {
		return RoomSettings{}, fmt.Errorf("room settings: %w", err)
	}
	var merged RoomSettings
	if err := json.Unmarshal(b, &merged); err != nil {
		return RoomSettings{}, fmt.Errorf("%w: %w", err, ErrBadRequest)
	}
	return merged, nil
}

// checkMetadata refuses metadata over MaxMetadata bytes or not UTF-8.
func checkMetadata(md string) error {
	if len(md) > MaxMetadata || !utf8.ValidString(md) {
		return fmt.Errorf("metadata is %d bytes; at most %d of UTF-8 are taken: %w", len(md), MaxMetadata, ErrBadRequest)
	}
	return nil
}

// closeIdleRooms closes the created rooms that have been empty longer than they wait for participants.
func (s *SFU) closeIdleRooms(rooms []*Room) {
	for _, rm := range rooms {
		rm.mu.Lock()
		idle := rm.keepEmpty > 0 && len(rm.participants) == 0 && time.Since(rm.emptySince) >= rm.keepEmpty
		rm.mu.Unlock()
		if idle {
			s.removeRoom(rm)
		}
	}
}

// SetRoomMetadata sets the room's metadata and tells everyone in it; ErrNotFound if this node does not host it.
func (s *SFU) SetRoomMetadata(room, md string) (RoomInfo, error) {
	if err := checkMetadata(md); err != nil {
		return RoomInfo{}, err
	}
	rm, err := s.openRoom(room)
	if err != nil {
		return RoomInfo{}, err
	}
	rm.mu.Lock()
	rm.metadata = md
	rm.broadcastLocked(nil, Event{Kind: EventMetadata, Metadata: md})
	rm.mu.Unlock()
	return rm.info(), nil
}

// relayToRemote asks the relays that show identity's participants here (they are hosted on another node) to carry
// an administrator's request there; ErrNotFound if there are none.
func (s *SFU) relayToRemote(room, identity string, req AdminRequest) (string, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return "", err
	}
	var done []string
	for id, relay := range rm.remoteRelays(identity) {
		req.Participant = id
		relay.relayAdmin(req)
		done = append(done, fmt.Sprintf("asked the node hosting %s (%s) to %s", identity, id, req.Action))
	}
	if len(done) == 0 {
		return "", fmt.Errorf("no participant %.40q in room %.40q: %w", identity, room, ErrNotFound)
	}
	return strings.Join(done, "; "), nil
}

// sessions finds every session of an identity in a room (WebSocket, WHIP and WHEP ones coexist); ErrNotFound if
// the room or the identity is not here.
func (s *SFU) sessions(room, identity string) (*Room, []*Participant, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return nil, nil, err
	}
	rm.mu.Lock()
	var ps []*Participant
	for _, q := range rm.participants {
		if q.info.Identity == identity {
			ps = append(ps, q)
		}
	}
	rm.mu.Unlock()
	if len(ps) == 0 {
		return nil, nil, fmt.Errorf("no participant %.40q in room %.40q: %w", identity, room, ErrNotFound)
	}
	slices.SortFunc(ps, func(a, b *Participant) int { return cmp.Compare(a.info.ID, b.info.ID) })
	return rm, ps, nil
}

// MuteParticipant mutes or unmutes, as an administrator's mute does, one track of the participant with this
// identity (trackID) or all its audio (trackID ""), audio it publishes later included. It describes what it did;
// ErrNotFound if the room or the participant is not here, ErrBadRequest if it publishes no such track.
func (s *SFU) MuteParticipant(room, identity, trackID string, muted bool) (string, error) {
	rm, ps, err := s.sessions(room, identity)
	if errors.Is(err, ErrNotFound) {
		action := ActionUnmute
		if muted {
			action = ActionMute
		}
		return s.relayToRemote(room, identity, AdminRequest{Action: action, Track: trackID})
	}
	if err != nil {
		return "", err
	}
	var done []string
	var errs []error
	for _, q := range ps {
		if trackID != "" && q.track(trackID) == nil {
			continue // another session of the identity publishes it, or none does
		}
		did, err := rm.adminMute(q, trackID, muted, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, did)
	}
	if len(done) == 0 {
		if len(errs) > 0 {
			return "", errors.Join(errs...)
		}
		return "", fmt.Errorf("%.40s publishes no track %.64q: %w", identity, trackID, ErrBadRequest)
	}
	return strings.Join(done, "; "), nil
}

// ParticipantUpdate is what the server API changes of a participant: its rights and its metadata; nil fields
// stay as they are.
type ParticipantUpdate struct {
	Publish, Subscribe, Admin *bool
	Metadata                  *string
}

// UpdateParticipant changes the rights and metadata of every session of the participant with this identity:
// publish as an administrator's set_role does (the participant is told), subscribe (its subscriptions to the
// others' tracks start or end), admin, and its metadata (everyone in the room is told). It returns the
// participant as it is then; ErrNotFound if the room or the participant is not here.
func (s *SFU) UpdateParticipant(room, identity string, u ParticipantUpdate) (ParticipantInfo, error) {
	if u.Metadata != nil {
		if err := checkMetadata(*u.Metadata); err != nil {
			return ParticipantInfo{}, err
		}
	}
	rm, ps, err := s.sessions(room, identity)
	if err != nil {
		return ParticipantInfo{}, err
	}
	for _, q := range ps {
		if u.Publish != nil {
			rm.setRole(q, *u.Publish, "")
		}
		if u.Admin != nil {
			rm.setAdmin(q, *u.Admin, "")
		}
		if u.Subscribe != nil {
			rm.setCanSubscribe(q, *u.Subscribe)
		}
		if u.Metadata != nil {
			rm.mu.Lock()
			q.mu.Lock()
			q.info.Metadata = *u.Metadata
			q.mu.Unlock()
			rm.broadcastLocked(nil, Event{Kind: EventMetadata, ParticipantID: q.info.ID, Metadata: *u.Metadata})
			rm.mu.Unlock()
		}
	}
	return ps[0].Info(), nil
}

// setCanSubscribe grants or takes away q's right to receive the others' tracks, and subscribes it to them or
// ends its subscriptions.
func (rm *Room) setCanSubscribe(q *Participant, can bool) {
	rm.mu.Lock()
	q.mu.Lock()
	changed := q.info.CanSubscribe != can
	q.info.CanSubscribe = can // Room.publish reads it under rm.mu
	q.mu.Unlock()
	var tracks []*Track
	if changed && can {
		for _, o := range rm.participants {
			if o != q {
				tracks = append(tracks, o.Tracks()...)
			}
		}
	}
	rm.mu.Unlock()
	if !changed {
		return
	}
	if can {
		for _, t := range tracks {
			q.subscribe(t) // a track Room.publish subscribed q to meanwhile is skipped
		}
		return
	}
	for _, sub := range q.subscriptions() {
		q.unsubscribe(sub.track)
	}
}

// Participants describes the participants of a room and their tracks, in the order they joined; ErrNotFound if
// this node does not host the room.
func (s *SFU) Participants(room string) ([]ParticipantInfo, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return nil, err
	}
	out := rm.members()
	slices.SortFunc(out, func(a, b ParticipantInfo) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RemoveParticipant removes the participant with this identity from the room as an administrator's kick does:
// each of its sessions ends with "kicked" and the identity is banned from the room until its token expires. It describes
// what it did; ErrNotFound if the room or the participant is not here.
func (s *SFU) RemoveParticipant(room, identity string) (string, error) {
	rm, targets, err := s.sessions(room, identity)
	if errors.Is(err, ErrNotFound) {
		return s.relayToRemote(room, identity, AdminRequest{Action: ActionKick})
	}
	if err != nil {
		return "", err
	}
	done := make([]string, 0, len(targets))
	for _, q := range targets {
		done = append(done, rm.kick(q, nil))
	}
	return strings.Join(done, "; "), nil
}

// EndRoom ends the room for everyone as an administrator's end does: each session ends with "room_ended". It
// returns how many participants there were; ErrNotFound if this node does not host the room.
func (s *SFU) EndRoom(room string) (int, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return 0, err
	}
	n := rm.end(nil)
	s.removeRoom(rm) // a created room that was empty: end closes it too
	return n, nil
}

// Hosts reports whether this node has the room open (someone is in it): the cluster gives back the lease of a
// room that is not.
func (s *SFU) Hosts(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[room] != nil
}

// MoveRoom sends everyone in the room to the node at url (a base URL), which now owns it, and closes the room
// here: each participant is told (EventMoved) and its session ends. It returns how many there were; ErrNotFound
// if this node does not host the room.
func (s *SFU) MoveRoom(room, url string) (int, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return 0, err
	}
	ps := rm.snapshot()
	for _, q := range ps {
		q.peer.SendEvent(Event{Kind: EventMoved, URL: url})
		q.peer.End("")
	}
	for _, q := range ps {
		q.Close()
	}
	return len(ps), nil
}

// openRoom finds an open room by name.
func (s *SFU) openRoom(name string) (*Room, error) {
	s.mu.Lock()
	rm := s.rooms[name]
	s.mu.Unlock()
	if rm == nil {
		return nil, fmt.Errorf("no room %.40q on this node: %w", name, ErrNotFound)
	}
	return rm, nil
}
