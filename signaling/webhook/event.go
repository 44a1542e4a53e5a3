// Package webhook tells an application's backend what happens on a node: it POSTs each event (a room started,
// a participant joined or left, a track was published, a transcript is ready, a limit was hit) as JSON to every
// configured URL, signed with a shared secret (Sign, Verify).
//
// # Delivery
//
// Send never blocks: it puts the event on a bounded queue per URL and returns. When a URL's queue is full the
// new event is dropped for that URL and counted (sfu_webhook_dropped_total{reason="queue_full"}). Events of one
// room reach a URL in the order they happened: one request per room and URL is in flight at a time, and the next
// event of the room waits for it; different rooms proceed in parallel (Config.Concurrency requests per URL). A
// request that fails (no answer within Config.Timeout, a redirect, or a status other than 2xx) is tried again
// after an exponential backoff with jitter, up to Config.Attempts times in all, with the same event id (the
// X-SFU-Delivery header and the body's "id"): a receiver that gets an id twice has seen that event (its answer
// was lost). A 4xx answer other than 408, 425 and 429 is the receiver refusing the event: it is not tried again.
//
// The package knows nothing of rooms: the node (cmd/sfu) turns what the SFU and its workers report into
// Events.
package webhook

import "time"

// Event names, the body's "event".
const (
	RoomStarted        = "room_started"
	RoomFinished       = "room_finished"
	ParticipantJoined  = "participant_joined"
	ParticipantLeft    = "participant_left"
	TrackPublished     = "track_published"
	TrackUnpublished   = "track_unpublished"
	TranscriptReady    = "transcript_ready"
	LimitReached       = "limit_reached"
	contentTypeJSON    = "application/json"
	maxResponseDrained = 64 << 10 // of a receiver's answer, read so that the connection can be reused
)

// Event is one webhook's JSON body. Send fills ID, CreatedAt (when zero) and Node.
type Event struct {
	// ID identifies the event; retries carry the same id (also in the X-SFU-Delivery header).
	ID string `json:"id"`
	// Event is what happened: one of the constants above.
	Event string `json:"event"`
	// CreatedAt is when it happened on the node.
	CreatedAt time.Time `json:"created_at"`
	// Room is the room it happened in (every event but a limit reached outside any room).
	Room *Room `json:"room,omitempty"`
	// Participant is who joined or left, whose track it is, or whom a limit refused.
	Participant *Participant `json:"participant,omitempty"`
	// Track is the track published or unpublished.
	Track *Track `json:"track,omitempty"`
	// Reason says why a participant left: see the Left* constants.
	Reason string `json:"reason,omitempty"`
	// Limit is the limit reached (limit_reached).
	Limit *Limit `json:"limit,omitempty"`
	// Transcript is the room's transcript (transcript_ready).
	Transcript *Transcript `json:"transcript,omitempty"`
	// Node is the node that sent the event.
	Node Node `json:"node"`
}

// Why a participant left (participant_left's reason).
const (
	LeftClient       = "left"         // the client said leave (WebSocket), or sent DELETE (WHIP, WHEP)
	LeftDisconnected = "disconnected" // its WebSocket closed without a leave
	LeftTimeout      = "timeout"      // its WebSocket went quiet (no message or pong within the read timeout)
	LeftKicked       = "kicked"       // an administrator or the server API removed it
	LeftRoomEnded    = "room_ended"   // an administrator or the server API ended the room
	LeftReplaced     = "replaced"     // the same identity joined again with the same kind of session
	LeftFailed       = "failed"       // its media connection failed
	LeftShutdown     = "shutdown"     // the node is stopping
)

// Room identifies a room.
type Room struct {
	Name string `json:"name"`
	// SID tells apart two rooms of one name, one after the other: it is new each time the room starts on a node.
	SID       string    `json:"sid"`
	CreatedAt time.Time `json:"created_at"`
}

// Participant describes a participant.
type Participant struct {
	SID      string `json:"sid"` // its id in the room for this session (the protocol's participant id)
	Identity string `json:"identity"`
	Name     string `json:"name,omitempty"`
	// Session is how it connects: "websocket", "whip" or "whep".
	Session      string    `json:"session"`
	CanPublish   bool      `json:"can_publish"`
	CanSubscribe bool      `json:"can_subscribe"`
	Admin        bool      `json:"admin,omitempty"`
	JoinedAt     time.Time `json:"joined_at"`
}

// Track describes a published track.
type Track struct {
	SID    string `json:"sid"`    // the track's id in the room
	Kind   string `json:"kind"`   // "audio" or "video"
	Source string `json:"source"` // "camera", "microphone", "screen", "screen_audio" or "" when unknown
	Muted  bool   `json:"muted"`
}

// Limit is a limit of the node or of a room that refused something.
type Limit struct {
	// Name is which limit: "room_full" (max_participants), "join_busy" (-max-concurrent-joins) or
	// "worker_streams" (-max-worker-streams).
	Name string `json:"name"`
	// Detail is the refusal's message.
	Detail string `json:"detail"`
}

// Transcript is a room's final captions, sent once the room has finished (the node then forgets them).
type Transcript struct {
	Format string `json:"format"` // "text/vtt"
	Cues   int    `json:"cues"`
	// Text is the transcript in Format, in the languages spoken.
	Text string `json:"text"`
}

// Node is the node that sends the events.
type Node struct {
	ID     string `json:"id"`
	Region string `json:"region"`
}
