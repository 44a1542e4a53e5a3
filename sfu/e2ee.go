package sfu

import (
	"errors"
	"fmt"
)

// End-to-end encryption: in an E2EE room, clients encrypt their media with keys the server never holds (the
// browser's encoded transform; signaling/web/e2ee.js). The server forwards what it cannot read: it sees RTP
// headers, the codec's payload header that clients leave in clear (enough to find keyframes and switch layers) and
// the audio level extension. Here the room keeps its members honest about it: an E2EE room takes only clients that
// announce E2EE, and other rooms only clients that do not; and it carries the clients' key messages (E2EE), whose
// content it cannot read either.
//
// A room is E2EE when its settings say so (the room file, the server API). A room whose settings do not is
// decided by its first participant that is not a relay: one that announces E2EE (a meeting page opened with
// #e2ee=, DESIGN.md) makes it E2EE for as long as it lives, one that does not makes it plain. Nobody is ever
// moved from one to the other: whoever does not match is refused, with a reason.

// ErrEncryption refuses a join that does not match the room's end-to-end encryption: a client that does not
// encrypt in an E2EE room (WHIP and WHEP included), or one that does in a room that is not.
var ErrEncryption = errors.New("end-to-end encryption")

// E2EEMessage is what one client of an E2EE room tells others about keys (Data, opaque to the server): to one
// participant (To, its id) or to everyone (To "").
type E2EEMessage struct {
	From, To, Data string
}

// A room's encryption (Room.encryption).
const (
	encryptionUndecided int32 = iota // no participant but relays yet, and the settings say nothing
	encryptionPlain
	encryptionE2EE
)

// E2EE reports whether the room is end-to-end encrypted: its settings say so, or its first participant
// announced E2EE. Workers refuse to process its media (ErrE2EE). Safe from any goroutine.
func (rm *Room) E2EE() bool { return rm.encryption.Load() == encryptionE2EE }

// encryptionFor is the room's encryption once p is in: the current one, or the one p decides; an error when p does
// not match it. Relays between nodes carry media and messages they cannot read either: they fit any room and decide
// none. rm.mu is held.
func (rm *Room) encryptionFor(p *Participant) (int32, error) {
	mode := rm.encryption.Load()
	if p.relay {
		return mode, nil
	}
	if mode == encryptionUndecided {
		mode = encryptionPlain
		if p.info.E2EE != "" {
			mode = encryptionE2EE
		}
	}
	switch {
	case mode == encryptionE2EE && p.session != SessionWebSocket:
		return mode, fmt.Errorf("the room is end-to-end encrypted: WHIP and WHEP clients cannot encrypt or decrypt its media: %w", ErrEncryption)
	case mode == encryptionE2EE && p.info.E2EE == "":
		return mode, fmt.Errorf("the room is end-to-end encrypted: join with a client that encrypts its media (the meeting page asks for the passphrase): %w", ErrEncryption)
	case mode == encryptionPlain && p.info.E2EE != "":
		return mode, fmt.Errorf("the room is not end-to-end encrypted: join it without a passphrase: %w", ErrEncryption)
	}
	return mode, nil
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
	if !rm.E2EE() {
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
