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
// empty or longer than MaxChatRunes it is refused. A room spread over nodes chats as one: the relays get what is
// said here (a private message to another node's participant goes to the relay that shows it) and carry it
// there (RelayChat).
func (p *Participant) Chat(text, to string) error {
	if p.relay {
		return fmt.Errorf("a relay chats for others only (RelayChat): %w", ErrForbidden)
	}
	info := p.rights()
	return p.room.chat(p, ChatMessage{From: info.ID, FromName: info.Name, To: to, Text: text})
}

// RelayChat delivers here, for p, a relay between nodes, a chat message that from, a participant of the other
// node, sent there: to everyone here but p (which carried it), or to the participant to of this node.
func (p *Participant) RelayChat(from RemotePublisher, text, to string) error {
	if !p.relay {
		return fmt.Errorf("only a relay between nodes may speak for another node's participant: %w", ErrForbidden)
	}
	if to != "" && p.room.participant(to) == nil {
		return fmt.Errorf("no participant %.40q on this node to send it to: %w", to, ErrBadRequest)
	}
	return p.room.chat(p, ChatMessage{From: from.ID, FromName: from.Name, To: to, Text: text})
}

// chat delivers m, which came through sender (its author, or the relay that carried it): a private message to
// its recipient (or the relay that shows it) and its author, a public one to everyone but a relay that carried
// it, and to the workers.
func (rm *Room) chat(sender *Participant, m ChatMessage) error {
	m.Text = cleanChat(m.Text)
	if m.Text == "" {
		return fmt.Errorf("a chat message needs text: %w", ErrBadRequest)
	}
	if utf8.RuneCountInString(m.Text) > MaxChatRunes {
		return fmt.Errorf("a chat message is at most %d characters: %w", MaxChatRunes, ErrBadRequest)
	}
	m.At = time.Now()
	ev := Event{Kind: EventChat, Chat: m}
	if m.To != "" {
		target := rm.participant(m.To)
		if target == nil || target.relay {
			target = rm.remoteRelay(m.To) // another node's participant: its relay carries it there
		}
		if target == nil {
			return fmt.Errorf("no participant %.40q in the room to send it to: %w", m.To, ErrBadRequest)
		}
		target.peer.SendEvent(ev)
		if target != sender && !sender.relay {
			sender.peer.SendEvent(ev)
		}
		return nil
	}
	if sender.relay {
		rm.broadcast(sender, ev)
	} else {
		rm.broadcast(nil, ev)
	}
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
