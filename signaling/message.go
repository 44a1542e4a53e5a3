package signaling

import (
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/pion/webrtc/v4"
)

// The messages themselves are declared in package protocol; this file maps the SFU's room events to them.

// sfuPC is the SFU's name for a peer connection Decode has checked.
func sfuPC(pc string) sfu.PC {
	if pc == protocol.PCSubscribe {
		return sfu.SubscribePC
	}
	return sfu.PublishPC
}

func toParticipant(p sfu.ParticipantInfo) protocol.Participant {
	tracks := make([]protocol.Track, 0, len(p.Tracks))
	for _, t := range p.Tracks {
		tracks = append(tracks, toTrack(t))
	}
	return protocol.Participant{ID: p.ID, Identity: p.Identity, Name: p.Name, Publish: p.CanPublish, Subscribe: p.CanSubscribe, Admin: p.Admin,
		Tracks: tracks, Metadata: p.Metadata, E2EE: p.E2EE}
}

func toTrack(t sfu.TrackInfo) protocol.Track {
	return protocol.Track{ID: t.ID, Kind: t.Kind, Muted: t.Muted, Source: t.Source}
}

// eventMessage turns a room event into its protocol message.
func eventMessage(ev sfu.Event, iceServers []webrtc.ICEServer) any {
	switch ev.Kind {
	case sfu.EventJoined:
		ps := make([]protocol.Participant, 0, len(ev.Participants))
		for _, p := range ev.Participants {
			ps = append(ps, toParticipant(p))
		}
		if iceServers == nil {
			iceServers = []webrtc.ICEServer{}
		}
		return protocol.Joined{Type: protocol.TypeJoined, Room: ev.Room, Metadata: ev.Metadata, You: toParticipant(ev.Participant),
			Participants: ps, ICEServers: iceServers, Hands: ev.Hands}
	case sfu.EventParticipantJoined:
		return protocol.ParticipantEvent{Type: protocol.TypeParticipantJoined, Participant: toParticipant(ev.Participant)}
	case sfu.EventParticipantUpdated:
		return protocol.ParticipantEvent{Type: protocol.TypeParticipantUpdate, Participant: toParticipant(ev.Participant)}
	case sfu.EventChat:
		c := ev.Chat
		return protocol.Chat{Type: protocol.TypeChat, From: c.From, Name: c.FromName, To: c.To, Text: c.Text, Time: c.At.UnixMilli()}
	case sfu.EventE2EE:
		return protocol.E2EE{Type: protocol.TypeE2EE, From: ev.E2EE.From, To: ev.E2EE.To, Data: ev.E2EE.Data}
	case sfu.EventHands:
		hands := ev.Hands
		if hands == nil {
			hands = []string{}
		}
		return protocol.Hands{Type: protocol.TypeHands, Hands: hands}
	case sfu.EventParticipantLeft:
		return protocol.ParticipantEvent{Type: protocol.TypeParticipantLeft, Participant: toParticipant(ev.Participant)}
	case sfu.EventTrackPublished:
		return protocol.TrackEvent{Type: protocol.TypeTrackPublished, ParticipantID: ev.ParticipantID, Track: toTrack(ev.Track)}
	case sfu.EventTrackUnpublished:
		return protocol.TrackEvent{Type: protocol.TypeTrackUnpublished, ParticipantID: ev.ParticipantID, Track: toTrack(ev.Track)}
	case sfu.EventTrackMuted:
		return protocol.TrackEvent{Type: protocol.TypeTrackMuted, ParticipantID: ev.ParticipantID, Track: toTrack(ev.Track)}
	case sfu.EventActiveSpeakers:
		sp := make([]protocol.Speaker, 0, len(ev.Speakers))
		for _, x := range ev.Speakers {
			sp = append(sp, protocol.Speaker{ParticipantID: x.ParticipantID, Level: x.Level})
		}
		return protocol.ActiveSpeakers{Type: protocol.TypeActiveSpeakers, Speakers: sp}
	case sfu.EventLayers:
		rids, paused := ev.Layers, ev.Paused
		if rids == nil {
			rids = []string{}
		}
		if paused == nil {
			paused = []string{}
		}
		return protocol.Layers{Type: protocol.TypeLayers, TrackID: ev.Track.ID, RIDs: rids, Paused: paused}
	case sfu.EventWorker:
		return ev.Message // a worker's message is a protocol message already
	case sfu.EventRoomState:
		return protocol.RoomState{Type: protocol.TypeRoomState, Locked: ev.Locked}
	case sfu.EventModerated:
		return protocol.Moderation{Type: protocol.TypeModeration, Action: ev.Action, TrackID: ev.Track.ID, Publish: ev.Publish, Admin: ev.Admin, By: ev.By}
	case sfu.EventMetadata:
		return protocol.Metadata{Type: protocol.TypeMetadata, ParticipantID: ev.ParticipantID, Metadata: ev.Metadata}
	case sfu.EventLimit:
		return protocol.Error{Type: protocol.TypeError, Code: protocol.CodeLimit, Message: ev.Error}
	case sfu.EventRelayAdmin:
		return protocol.RelayAdmin{Type: protocol.TypeRelayAdmin, Action: ev.Action, ParticipantID: ev.ParticipantID,
			TrackID: ev.Track.ID, Publish: ev.Publish}
	case sfu.EventMoved:
		return protocol.Redirect{Type: protocol.TypeRedirect, URL: wsURL(ev.URL), Reason: "room_moved"}
	}
	return nil
}
