package sfu

import (
	"errors"
	"fmt"
)

// End-to-end encryption: in a room whose settings say e2ee, clients encrypt their media with keys the server
// never holds (the browser's encoded transform; signaling/web/e2ee.js). The server forwards what it cannot read:
// it sees RTP headers, the codec's payload header that clients leave in clear (enough to find keyframes and
// switch layers) and the audio level extension. Here the room keeps its members honest about it: only clients
// that announce E2EE join an E2EE room, and only such rooms take them; and it carries the clients' key
// messages (E2EE), whose content it cannot read either.

// ErrEncryption refuses a join that does not match the room's end-to-end encryption: a client that does not
// encrypt in an E2EE room (WHIP and WHEP included), or one that does in a room that is not.
var ErrEncryption = errors.New("end-to-end encryption")

// E2EEMessage is what one client of an E2EE room tells others about keys (Data, opaque to the server): to one
// participant (To, its id) or to everyone (To "").
type E2EEMessage struct {
	From, To, Data string
}

// admitEncryptionLocked checks p's announcement against the room's e2ee setting; rm.mu is held. Relays between
// nodes carry media and messages they cannot read either: they are admitted to both kinds of room.
func (rm *Room) admitEncryptionLocked(p *Participant) error {
	switch {
	case p.relay:
		return nil
	case rm.settings.E2EE && p.session != SessionWebSocket:
		return fmt.Errorf("the room is end-to-end encrypted: WHIP and WHEP clients cannot encrypt or decrypt its media: %w", ErrEncryption)
	case rm.settings.E2EE && p.info.E2EE == "":
		return fmt.Errorf("the room is end-to-end encrypted: join with a client that encrypts its media (the meeting page asks for the passphrase): %w", ErrEncryption)
	case !rm.settings.E2EE && p.info.E2EE != "":
		return fmt.Errorf("the room is not end-to-end encrypted: join it without a passphrase: %w", ErrEncryption)
	}
	return nil
}

// SendE2EE passes a key message of p's client on, unread: to the participant to (its id; the relay that shows it
// when another node hosts it), or to everyone else (to ""). Only an E2EE room carries them.
func (p *Participant) SendE2EE(to, data string) error {
	if p.relay {
		return fmt.Errorf("a relay carries others' key messages only (RelayE2EE): %w", ErrForbidden)
	}
	return p.room.e2eeMessage(p, E2EEMessage{From: p.info.ID, To: to, Data: data})
}

// RelayE2EE delivers here, for p, a relay between nodes, a key message that from, a participant of the other
// node, sent there: to everyone here but p, or to the participant to of this node.
func (p *Participant) RelayE2EE(from, to, data string) error {
	if !p.relay {
		return fmt.Errorf("only a relay between nodes may speak for another node's participant: %w", ErrForbidden)
	}
	if to != "" && p.room.participant(to) == nil {
		return fmt.Errorf("no participant %.40q on this node to send it to: %w", to, ErrBadRequest)
	}
	return p.room.e2eeMessage(p, E2EEMessage{From: from, To: to, Data: data})
}

// e2eeMessage delivers m, which came through sender (its author, or the relay that carried it).
func (rm *Room) e2eeMessage(sender *Participant, m E2EEMessage) error {
	if !rm.settings.E2EE {
		return fmt.Errorf("the room is not end-to-end encrypted: it carries no key messages: %w", ErrBadRequest)
	}
	ev := Event{Kind: EventE2EE, E2EE: m}
	if m.To == "" {
		rm.broadcast(sender, ev)
		return nil
	}
	target := rm.participant(m.To)
	if target == nil || target.relay {
		target = rm.remoteRelay(m.To)
	}
	if target == nil || target == sender {
		return fmt.Errorf("no participant %.40q in the room to send it to: %w", m.To, ErrBadRequest)
	}
	target.peer.SendEvent(ev)
	return nil
}
