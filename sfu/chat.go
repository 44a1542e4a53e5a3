package sfu

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxChatRunes bounds a chat message: longer text is refused.
const MaxChatRunes = 1000

// ChatMessage is one chat message, as the room delivers it.
type ChatMessage struct {
	From, FromName string // the sender's participant id and display name
	To             string // a participant's id: a private message to it; "": to everyone
	Text           string
	At             time.Time // when the node received it
}

// ChatListener is a RoomWorker that keeps the room's public chat (the captions worker puts it in the
// transcript). Chat is called with no lock held, on the sender's signaling goroutine: it must not block.
type ChatListener interface {
	Chat(m ChatMessage)
}

// Chat sends a chat message to everyone in the room (to "") or to one participant (to, its id) and the sender,
// who gets its message back with the node's time. The text loses its control characters (but line breaks);
// empty or longer than MaxChatRunes it is refused. Relays carry no chat: a participant of another node is not
// reached.
func (p *Participant) Chat(text, to string) error {
	if p.relay {
		return fmt.Errorf("a relay does not chat: %w", ErrForbidden)
	}
	text = cleanChat(text)
	if text == "" {
		return fmt.Errorf("a chat message needs text: %w", ErrBadRequest)
	}
	if utf8.RuneCountInString(text) > MaxChatRunes {
		return fmt.Errorf("a chat message is at most %d characters: %w", MaxChatRunes, ErrBadRequest)
	}
	rm := p.room
	info := p.rights()
	m := ChatMessage{From: info.ID, FromName: info.Name, To: to, Text: text, At: time.Now()}
	ev := Event{Kind: EventChat, Chat: m}
	if to != "" {
		target := rm.participant(to)
		if target == nil || target.relay {
			return fmt.Errorf("no participant %.40q in the room to send it to: %w", to, ErrBadRequest)
		}
		target.peer.SendEvent(ev)
		if target != p {
			p.peer.SendEvent(ev)
		}
		return nil
	}
	rm.broadcast(nil, ev)
	for _, w := range rm.workers {
		if l, ok := w.RoomWorker.(ChatListener); ok {
			l.Chat(m)
		}
	}
	return nil
}

// cleanChat drops control and format characters but line breaks and tabs, and trims the ends.
func cleanChat(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// RaiseHand raises or lowers the participant's hand. The room keeps raised hands in the order they were raised
// and tells everyone the queue at each change (EventHands); a hand goes down when its participant leaves.
func (p *Participant) RaiseHand(raised bool) error {
	if p.relay {
		return fmt.Errorf("a relay has no hand: %w", ErrForbidden)
	}
	p.room.setHand(p.info.ID, raised)
	return nil
}

// setHand puts id's hand up (at the end of the queue) or down, and tells everyone if that changed the queue.
func (rm *Room) setHand(id string, raised bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	i := slices.Index(rm.hands, id)
	switch {
	case raised && i < 0:
		if rm.participants[id] == nil {
			return // left meanwhile
		}
		rm.hands = append(rm.hands, id)
	case !raised && i >= 0:
		rm.hands = slices.Delete(rm.hands, i, i+1)
	default:
		return
	}
	rm.broadcastLocked(nil, Event{Kind: EventHands, Hands: slices.Clone(rm.hands)})
}

// setAdmin makes target an administrator of the room or takes the role away, tells everyone (its
// participant_updated) and tells target (its next token carries the role); by is the administrator's participant
// id ("": the server API).
func (rm *Room) setAdmin(target *Participant, admin bool, by string) string {
	rm.mu.Lock() // the room reads info under rm.mu (its events), the participant under its own mu
	target.mu.Lock()
	target.info.Admin = admin
	canPublish := target.info.CanPublish
	target.mu.Unlock()
	if !target.relay {
		rm.broadcastLocked(nil, Event{Kind: EventParticipantUpdated, Participant: target.Info()})
	}
	rm.mu.Unlock()
	target.peer.SendEvent(Event{Kind: EventModerated, Action: ActionSetRole, Publish: canPublish, Admin: admin, By: by})
	return fmt.Sprintf("%s is an administrator: %v", target.info.Identity, admin)
}
