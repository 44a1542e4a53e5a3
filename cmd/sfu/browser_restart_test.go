package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageICE is one connection's entry of window.sfu.ice.
type pageICE struct {
	State      string `json:"state"`
	Restarting bool   `json:"restarting"`
	Attempts   int    `json:"attempts"`
	Ufrag      string `json:"ufrag"`
}

// pageSession is the page's session as its test hooks and its banners show it.
type pageSession struct {
	State         string   `json:"state"`
	ParticipantID string   `json:"participantId"`
	Joins         int      `json:"joins"`
	ICERestarts   int      `json:"iceRestarts"`
	Publish       *pageICE `json:"publish"`
	Subscribe     *pageICE `json:"subscribe"`
	RoomLocked    bool     `json:"roomLocked"`
	Badge         bool     `json:"badge"`      // the "Room locked" badge is shown
	Moderation    string   `json:"moderation"` // window.sfu.moderation.action, "" if none came
	ByeReason     string   `json:"byeReason"`
	JoinError     string   `json:"joinError"`
	MicPressed    string   `json:"micPressed"` // the mic button's aria-pressed ("true": muted)
	Notices       string   `json:"notices"`    // the text of every banner, joined by " | "
	Ended         string   `json:"ended"`      // the "meeting ended" card's text when it is shown
}

func (s pageSession) String() string {
	ice := func(i *pageICE) string {
		if i == nil {
			return "none"
		}
		return fmt.Sprintf("%s(restarting=%v attempts=%d ufrag=%s)", i.State, i.Restarting, i.Attempts, i.Ufrag)
	}
	return fmt.Sprintf("state=%s id=%s joins=%d iceRestarts=%d publish=%s subscribe=%s locked=%v badge=%v moderation=%q bye=%q joinError=%q mic[aria-pressed=%s] ended=%q notices=%q",
		s.State, s.ParticipantID, s.Joins, s.ICERestarts, ice(s.Publish), ice(s.Subscribe), s.RoomLocked, s.Badge,
		s.Moderation, s.ByeReason, s.JoinError, s.MicPressed, s.Ended, s.Notices)
}

const pageSessionJS = `(() => {
	const s = window.sfu || {};
	const ice = s.ice || {};
	const badge = document.getElementById('room-locked');
	const mic = document.getElementById('btn-mic');
	const ended = document.getElementById('ended');
	return {
		state: s.state ? String(s.state) : 'no hook',
		participantId: String(s.participantId || ''),
		joins: Number(s.joins) || 0,
		iceRestarts: Number(s.iceRestarts) || 0,
		publish: ice.publish || null,
		subscribe: ice.subscribe || null,
		roomLocked: s.roomLocked === true,
		badge: !!badge && !badge.hidden,
		moderation: s.moderation ? String(s.moderation.action) : '',
		byeReason: String(s.byeReason || ''),
		joinError: String(s.joinError || ''),
		micPressed: mic ? String(mic.getAttribute('aria-pressed')) : 'no button',
		notices: Array.from(document.querySelectorAll('.banner .banner-text')).map((e) => e.textContent).join(' | '),
		ended: ended && !ended.hidden ? document.getElementById('ended-text').textContent : '',
	};
})()`

func readSession(t *testing.T, tab context.Context) pageSession {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Evaluate[pageSession](pageSessionJS))
	if err != nil {
		t.Fatalf("read the page's session: %v", err)
	}
	return s
}

// waitSession polls the page's session until ok holds, and says how long that took.
func waitSession(t *testing.T, tab context.Context, name string, timeout time.Duration, what string, ok func(pageSession) bool) (pageSession, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		s := readSession(t, tab)
		if ok(s) {
			return s, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s after %v: want %s, have %s", name, timeout, what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holdSession checks for d that the page's session keeps satisfying ok.
func holdSession(t *testing.T, tab context.Context, name string, d time.Duration, what string, ok func(pageSession) bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if s := readSession(t, tab); !ok(s) {
			t.Fatalf("%s: want %s throughout %v, have %s", name, what, d, s)
		}
	}
}

func iceUp(i *pageICE) bool {
	return i != nil && !i.Restarting && (i.State == "connected" || i.State == "completed")
}

// framesDecoded: every video frame the page decoded so far.
func framesDecoded(t *testing.T, tab context.Context, name string) int {
	t.Helper()
	st, _, err := getStats(tab)
	if err != nil {
		t.Fatalf("%s: stats: %v", name, err)
	}
	n := 0
	for _, v := range st.Video {
		n += v.FramesDecoded
	}
	return n
}

// TestBrowserICERestart: two pages see each other; one restarts ICE on both its connections (as after a network
// change). It gets new ICE credentials from the server on both, without a new session (same participant, no
// second joined), and both pages keep decoding each other's video.
func TestBrowserICERestart(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	room := "browser-restart"
	names := []string{"Ann", "Ben"}
	tabs := map[string]context.Context{}
	for _, name := range names {
		tabs[name] = openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=%s&res=720&simulcast=0", n.baseURL(), room, url.QueryEscape(name)))
	}
	for _, name := range names {
		st, took := waitStats(t, tabs[name], name, 90*time.Second, "the other's video and audio", func(st pageStats) bool {
			return st.maxVideo().FramesDecoded > 0 && st.audioPackets() > 0
		})
		t.Logf("%s sees and hears the other after %v: %s", name, took.Round(time.Millisecond), st)
	}
	ann, ben := tabs["Ann"], tabs["Ben"]
	before, _ := waitSession(t, ann, "Ann", 20*time.Second, "both connections connected", func(s pageSession) bool {
		return s.State == "joined" && iceUp(s.Publish) && iceUp(s.Subscribe) && s.Publish.Ufrag != "" && s.Subscribe.Ufrag != ""
	})
	t.Logf("Ann before the restart: %s", before)

	started, err := chromedp.Run(ann, chromedp.Evaluate[bool](`window.sfu.restartIce()`))
	if err != nil || !started {
		t.Fatalf("window.sfu.restartIce(): %v, %v", started, err)
	}
	after, took := waitSession(t, ann, "Ann", 30*time.Second, "both connections restarted with new credentials and connected",
		func(s pageSession) bool {
			return s.ICERestarts >= before.ICERestarts+2 && iceUp(s.Publish) && iceUp(s.Subscribe) &&
				s.Publish.Ufrag != before.Publish.Ufrag && s.Subscribe.Ufrag != before.Subscribe.Ufrag
		})
	t.Logf("Ann after the restart (%v): %s", took.Round(time.Millisecond), after)

	// The same session: no reconnect, no second join.
	if after.State != "joined" || after.ParticipantID != before.ParticipantID || after.Joins != before.Joins || after.Joins != 1 {
		t.Fatalf("the restart replaced the session: before %s, after %s", before, after)
	}
	if after.Publish.Attempts != 0 || after.Subscribe.Attempts != 0 {
		t.Errorf("failed restart attempts: %s", after)
	}

	// The media plays on both ways: after the restart (the decoders may wait for a keyframe) each page decodes
	// new frames in every second, three seconds running.
	prev := map[string]int{}
	for _, name := range names {
		prev[name] = framesDecoded(t, tabs[name], name)
	}
	start := time.Now()
	for running := 0; running < 3; {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30 s, the video has not played three seconds running since the restart (frames: %v)", prev)
		}
		time.Sleep(time.Second)
		grew := true
		for _, name := range names {
			f := framesDecoded(t, tabs[name], name)
			if f <= prev[name] {
				grew = false
				t.Logf("%s decoded no video in a second, %v after the restart (%d frames)", name, time.Since(start).Round(time.Millisecond), f)
			}
			prev[name] = f
		}
		if grew {
			running++
		} else {
			running = 0
		}
	}
	t.Logf("both pages decoded video in each of 3 s running, %v after the restart (frames: Ann %d, Ben %d)",
		time.Since(start).Round(time.Millisecond), prev["Ann"], prev["Ben"])

	final := readSession(t, ann)
	if final.State != "joined" || final.ParticipantID != before.ParticipantID || final.Joins != 1 {
		t.Fatalf("Ann's session changed while the media played: %s", final)
	}
	if b := readSession(t, ben); b.State != "joined" || b.Joins != 1 {
		t.Fatalf("Ben's session changed: %s", b)
	}
	if st := n.sfu.Stats(); st.Participants != 2 || st.Tracks != 4 {
		t.Errorf("server sees %d participants and %d tracks, want 2 and 4", st.Participants, st.Tracks)
	}
}

// TestBrowserModeration: a page joins with an ordinary token; a host (a Pion client with an admin token) locks
// the room: the page shows the badge, and a newcomer's page is refused with a banner and does not retry. The
// host mutes the page: it says so and shows its microphone muted. The host kicks it: the page ends with "You
// were removed from the room" and does not reconnect.
func TestBrowserModeration(t *testing.T) {
	exe := chromiumPath(t)
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	room := "browser-moderation"
	pageURL := func(identity string) string {
		return fmt.Sprintf("%s/room/%s?name=%s&res=720&simulcast=0&token=%s", n.baseURL(), room, identity,
			url.QueryEscape(token(t, room, identity, true, true)))
	}
	tab := openPage(t, ctx, exe, pageURL("guest"))
	s, took := waitSession(t, tab, "guest", 60*time.Second, "joined", func(s pageSession) bool {
		return s.State == "joined" && s.ParticipantID != ""
	})
	t.Logf("guest joined after %v: %s", took.Round(time.Millisecond), s)
	eventually(t, 30*time.Second, "the page publishes its camera and microphone", func() bool { return n.sfu.Stats().Tracks >= 2 })
	guestID := s.ParticipantID

	host := joinClientToken(t, ctx, n, adminToken(t, room, "host"))
	admin := func(v map[string]any) {
		t.Helper()
		v["type"] = "admin"
		if err := host.Send(v); err != nil {
			t.Fatal(err)
		}
	}

	// Lock.
	admin(map[string]any{"action": "lock"})
	s, took = waitSession(t, tab, "guest", 10*time.Second, "the room shown locked", func(s pageSession) bool {
		return s.RoomLocked && s.Badge
	})
	t.Logf("locked after %v: %s", took.Round(time.Millisecond), s)

	// A newcomer is refused, says why, and does not knock again.
	late := openPage(t, ctx, exe, pageURL("late"))
	l, took := waitSession(t, late, "late", 30*time.Second, "join refused as room_locked", func(s pageSession) bool {
		return s.JoinError == "room_locked"
	})
	t.Logf("newcomer refused after %v: %s", took.Round(time.Millisecond), l)
	if l.State != "error" || l.Joins != 0 || !strings.Contains(strings.ToLower(l.Notices), "locked") {
		t.Errorf("the refused newcomer's page: %s", l)
	}
	holdSession(t, late, "late", 3*time.Second, "no retry", func(s pageSession) bool {
		return s.State == "error" && s.Joins == 0 && s.JoinError == "room_locked"
	})
	if st := n.sfu.Stats(); st.Participants != 2 {
		t.Errorf("server has %d participants with the room locked, want 2 (guest and host)", st.Participants)
	}

	// Mute.
	admin(map[string]any{"action": "mute", "participant": guestID})
	s, took = waitSession(t, tab, "guest", 10*time.Second, `moderation "mute" and the microphone shown muted`, func(s pageSession) bool {
		return s.Moderation == "mute" && s.MicPressed == "true"
	})
	t.Logf("muted after %v: %s", took.Round(time.Millisecond), s)
	if !strings.Contains(s.Notices, "Muted by the room's host") {
		t.Errorf("no notice of the mute: %s", s)
	}

	// Kick: the page ends and stays ended.
	admin(map[string]any{"action": "kick", "participant": guestID})
	s, took = waitSession(t, tab, "guest", 10*time.Second, `bye "kicked" and the page ended`, func(s pageSession) bool {
		return s.ByeReason == "kicked" && s.State == "left"
	})
	t.Logf("kicked after %v: %s", took.Round(time.Millisecond), s)
	if s.Ended != "You were removed from the room" {
		t.Errorf("the ended card says %q", s.Ended)
	}
	holdSession(t, tab, "guest", 3*time.Second, "no reconnect", func(s pageSession) bool {
		return s.State == "left" && s.Joins == 1 && s.ByeReason == "kicked"
	})
	if st := n.sfu.Stats(); st.Participants != 1 {
		t.Errorf("server has %d participants after the kick, want 1 (the host)", st.Participants)
	}
}
