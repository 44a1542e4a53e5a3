package main

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/webhook"
	"go.uber.org/zap"
)

// urlList is a flag given several times (or once with commas, as its environment variable is): -webhook-url.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

// webhookDrain bounds the time a stopping node spends delivering the webhook events still queued.
const webhookDrain = 5 * time.Second

// limitInterval spaces the limit_reached events of one limit in one room: a full room refusing a crowd, or a
// busy node, sends one event per interval, not one per refusal.
const limitInterval = 10 * time.Second

// webhooks turns what the SFU and the captions worker report into webhook events (signaling/webhook). It is
// the SFU's Observer: Observe runs under the SFU's locks, so it only builds the event and queues it.
type webhooks struct {
	sender *webhook.Sender

	mu         sync.Mutex
	lastLimits map[string]time.Time // limit and room → when its last event went
}

// startWebhooks starts the webhook sender when -webhook-url is given; nil otherwise. Events are signed with
// -webhook-secret, else the token secret.
func startWebhooks(cfg config, tokenSecret []byte, log *zap.Logger) (*webhooks, error) {
	if len(cfg.WebhookURLs) == 0 {
		return nil, nil
	}
	secret := tokenSecret
	if cfg.WebhookSecret != "" {
		secret = []byte(cfg.WebhookSecret)
	} else if cfg.Secret == "" {
		log.Warn("webhooks are signed with this dev node's random token secret, which no receiver knows: give -webhook-secret")
	}
	id := cfg.NodeID
	if id == "" {
		id, _ = os.Hostname()
	}
	s, err := webhook.New(webhook.Config{URLs: cfg.WebhookURLs, Secret: secret, Node: webhook.Node{ID: id, Region: cfg.Region},
		Backoff: cfg.webhookBackoff, Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("webhooks", zap.Int("urls", len(cfg.WebhookURLs)), zap.Bool("own_secret", cfg.WebhookSecret != ""))
	return &webhooks{sender: s, lastLimits: map[string]time.Time{}}, nil
}

// Observe implements sfu.Observer.
func (w *webhooks) Observe(n sfu.Notice) {
	ev := webhook.Event{}
	if n.Room.Name != "" {
		ev.Room = &webhook.Room{Name: n.Room.Name, SID: n.Room.ID, CreatedAt: n.Room.CreatedAt}
	}
	if n.Participant.ID != "" {
		pi := n.Participant
		ev.Participant = &webhook.Participant{SID: pi.ID, Identity: pi.Identity, Name: pi.Name, Session: n.Session.String(),
			CanPublish: pi.CanPublish, CanSubscribe: pi.CanSubscribe, Admin: pi.Admin, JoinedAt: pi.JoinedAt}
	}
	switch n.Kind {
	case sfu.NoticeRoomStarted:
		ev.Event = webhook.RoomStarted
	case sfu.NoticeRoomFinished:
		ev.Event = webhook.RoomFinished
	case sfu.NoticeParticipantJoined:
		ev.Event = webhook.ParticipantJoined
	case sfu.NoticeParticipantLeft:
		ev.Event, ev.Reason = webhook.ParticipantLeft, n.Reason
	case sfu.NoticeTrackPublished, sfu.NoticeTrackUnpublished:
		ev.Event = webhook.TrackPublished
		if n.Kind == sfu.NoticeTrackUnpublished {
			ev.Event = webhook.TrackUnpublished
		}
		ev.Track = &webhook.Track{SID: n.Track.ID, Kind: n.Track.Kind, Source: n.Track.Source, Muted: n.Track.Muted}
	case sfu.NoticeLimit:
		if !w.limitDue(n.Limit, n.Room.Name, time.Now()) {
			return
		}
		ev.Event, ev.Limit = webhook.LimitReached, &webhook.Limit{Name: n.Limit, Detail: n.Detail}
	default:
		return
	}
	w.sender.Send(ev)
}

// limitDue reports whether a limit_reached event of this limit in this room may go now (one per limitInterval).
func (w *webhooks) limitDue(limit, room string, now time.Time) bool {
	key := limit + "\x00" + room
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, ok := w.lastLimits[key]; ok && now.Sub(last) < limitInterval {
		return false
	}
	if len(w.lastLimits) >= 1024 { // bounded: forget the old ones
		for k, t := range w.lastLimits {
			if now.Sub(t) >= limitInterval {
				delete(w.lastLimits, k)
			}
		}
		if len(w.lastLimits) >= 1024 {
			return false
		}
	}
	w.lastLimits[key] = now
	return true
}

// transcript is the captions worker's OnTranscript: a room's transcript, once it has closed.
func (w *webhooks) transcript(room sfu.RoomRef, vtt []byte, cues int) {
	w.sender.Send(webhook.Event{Event: webhook.TranscriptReady,
		Room:       &webhook.Room{Name: room.Name, SID: room.ID, CreatedAt: room.CreatedAt},
		Transcript: &webhook.Transcript{Format: "text/vtt", Cues: cues, Text: string(vtt)}})
}
