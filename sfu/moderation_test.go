package sfu

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestModerationBlocks: what administrators decided about a participant decides, for any track id and kind,
// whether a track is forwarded, tracks it has not published yet included.
func TestModerationBlocks(t *testing.T) {
	const audio, video = webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo
	p := &Participant{info: ParticipantInfo{CanPublish: true}, pubState: newPublishState()}
	check := func(what string, id string, kind webrtc.RTPCodecType, want bool) {
		t.Helper()
		if got := p.blockedLocked(id, kind); got != want {
			t.Errorf("%s: %s track %q blocked %v, want %v", what, kind, id, got, want)
		}
	}
	check("no moderation", "mic", audio, false)

	p.mod.audioMuted = true
	check("all audio muted", "any-new-mic", audio, true)
	check("all audio muted", "cam", video, false)

	p.mod.tracks = map[string]trackMute{"mic": {kind: audio, muted: false}, "cam": {kind: video, muted: true}}
	check("all audio muted, this one unmuted", "mic", audio, false)
	check("all audio muted, another", "mic2", audio, true)
	check("a video muted", "cam", video, true)

	p.mod = moderation{}
	p.info.CanPublish = false
	check("may not publish", "any-new-mic", audio, true)
	check("may not publish", "any-new-cam", video, true)

	// A participant's own mute does not unmute what an administrator muted.
	p.info.CanPublish = true
	p.mod.audioMuted = true
	p.pubState.muteState["mic"] = false
	if !p.mutedLocked("mic", audio) {
		t.Error("a track muted by an administrator is shown unmuted after its publisher unmuted it")
	}
}
