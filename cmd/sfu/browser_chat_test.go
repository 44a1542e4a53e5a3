package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// pageChat is what a page's chat and people panel show (DOM) and its test hook says.
type pageChat struct {
	State     string `json:"state"`
	ID        string `json:"id"`
	IsAdmin   bool   `json:"isAdmin"`
	HostShown bool   `json:"hostShown"` // the End meeting button is shown
	Unread    int    `json:"unread"`
	Badge     string `json:"badge"` // the unread badge's text, "" when hidden
	Open      bool   `json:"open"`
	Error     string `json:"error"`
	Messages  []struct {
		Name    string `json:"name"`
		Meta    string `json:"meta"`
		Time    string `json:"time"`
		Text    string `json:"text"`
		Own     bool   `json:"own"`
		Private bool   `json:"private"`
	} `json:"messages"`
	Imgs      int      `json:"imgs"`      // img elements inside the chat list
	Pwned     bool     `json:"pwned"`     // the injected onerror ran
	Hands     []string `json:"hands"`     // the hook's queue
	Queue     []string `json:"queue"`     // the people panel's queue (participant ids, in order)
	TileHands []string `json:"tileHands"` // participant ids whose tile shows the hand badge
	HandPress string   `json:"handPressed"`
	Hosts     []string `json:"hosts"` // participant ids with the host badge in the people panel
	People    []struct {
		ID   string `json:"id"`
		Mic  string `json:"mic"`
		Hand int    `json:"hand"`
	} `json:"people"`
	Moderation string `json:"moderation"`
	MicPressed string `json:"micPressed"`
	Bye        string `json:"bye"`
	Notices    string `json:"notices"`
}

func (c pageChat) String() string {
	var msgs []string
	for _, m := range c.Messages {
		msgs = append(msgs, fmt.Sprintf("[%s|%s|%s own=%v private=%v] %q", m.Name, m.Meta, m.Time, m.Own, m.Private, m.Text))
	}
	return fmt.Sprintf("state=%s id=%s admin=%v hostShown=%v unread=%d badge=%q open=%v error=%q imgs=%d pwned=%v hands=%v queue=%v tileHands=%v handPressed=%s hosts=%v people=%+v moderation=%q mic=%s bye=%q notices=%q messages=%v",
		c.State, c.ID, c.IsAdmin, c.HostShown, c.Unread, c.Badge, c.Open, c.Error, c.Imgs, c.Pwned, c.Hands, c.Queue,
		c.TileHands, c.HandPress, c.Hosts, c.People, c.Moderation, c.MicPressed, c.Bye, c.Notices, msgs)
}

func (c pageChat) texts() (out []string) {
	for _, m := range c.Messages {
		out = append(out, m.Text)
	}
	return out
}

func (c pageChat) has(text string) bool {
	for _, m := range c.Messages {
		if m.Text == text {
			return true
		}
	}
	return false
}

const pageChatJS = `(() => {
	const s = window.sfu || {};
	const chat = s.chat || {};
	const q = (sel) => Array.from(document.querySelectorAll(sel));
	const badge = document.getElementById('chat-unread');
	const end = document.getElementById('btn-end');
	const hand = document.getElementById('btn-hand');
	const mic = document.getElementById('btn-mic');
	return {
		state: String(s.state || ''),
		id: String(s.participantId || ''),
		isAdmin: s.isAdmin === true,
		hostShown: !!end && !end.hidden,
		unread: Number(chat.unread) || 0,
		badge: badge && !badge.hidden ? badge.textContent : '',
		open: chat.open === true,
		error: String(chat.error || ''),
		messages: q('#chat-list .chat-msg').map((li) => ({
			name: li.querySelector('.chat-name')?.textContent || '',
			meta: li.querySelector('.chat-meta')?.textContent || '',
			time: li.querySelector('.chat-time')?.textContent || '',
			text: li.querySelector('.chat-text')?.textContent || '',
			own: li.classList.contains('own'),
			private: li.classList.contains('private'),
		})),
		imgs: q('#chat-list img').length,
		pwned: window.__pwned === 1,
		hands: Array.isArray(s.hands) ? s.hands.slice() : [],
		queue: q('#hands-queue .hands-item').map((li) => li.dataset.participantId),
		tileHands: q('.tile .hand-badge:not([hidden])').map((b) => b.closest('.tile').dataset.participantId),
		handPressed: hand ? String(hand.getAttribute('aria-pressed')) : 'no button',
		hosts: q('#people-list .person').filter((li) => li.querySelector('.person-host')).map((li) => li.dataset.participantId),
		people: (s.people || []).map((p) => ({ id: p.id, mic: p.mic, hand: p.hand })),
		moderation: s.moderation ? String(s.moderation.action) : '',
		micPressed: mic ? String(mic.getAttribute('aria-pressed')) : '',
		bye: String(s.byeReason || ''),
		notices: q('.banner .banner-text').map((e) => e.textContent).join(' | '),
	};
})()`

// waitPageChat polls a page's chat and people panel until ok holds.
func waitPageChat(t *testing.T, tab context.Context, name string, timeout time.Duration, what string, ok func(pageChat) bool) pageChat {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := chromedp.Run(tab, chromedp.Evaluate[pageChat](pageChatJS))
		if err != nil {
			t.Fatalf("%s: read the page: %v", name, err)
		}
		if ok(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after %v: want %s, have %s", name, timeout, what, c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// evalTrue runs js on the page; it must return true.
func evalTrue(t *testing.T, tab context.Context, name, js string) {
	t.Helper()
	ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](js))
	if err != nil || !ok {
		t.Fatalf("%s: %s: got %v, %v", name, js, ok, err)
	}
}

// clickJS clicks the element that sel selects (through the DOM, as a keyboard's Enter on a button would).
func clickJS(t *testing.T, tab context.Context, name, sel string) {
	t.Helper()
	evalTrue(t, tab, name, fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true; })()`, sel))
}

var hhmmRe = regexp.MustCompile(`^\d\d:\d\d$`)

// TestBrowserChatAndPeople: three pages in one room, one of them a host. Chat to everyone shows on every page
// with the sender's name and time, counts as unread until the panel opens, and shows markup as text; a private
// message reaches its recipient and not the third page; public chat is in the transcript. A raised hand shows
// first in the host's queue and on the tile; the host lowers it, makes another page a host (its host controls
// show), mutes a participant (its page shows it muted) and removes it (its meeting ends).
func TestBrowserChatAndPeople(t *testing.T) {
	exe := chromiumPath(t)
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	room := "browser-chat"
	pageURL := func(identity, tok, extra string) string {
		return fmt.Sprintf("%s/room/%s?name=%s&lang=en%s&token=%s", n.baseURL(), room, identity, extra, url.QueryEscape(tok))
	}
	host := openPage(t, ctx, exe, pageURL("host", adminToken(t, room, "host"), "&publish=0"))
	alice := openPage(t, ctx, exe, pageURL("alice", token(t, room, "alice", true, true), "&res=720&simulcast=0"))
	bob := openPage(t, ctx, exe, pageURL("bob", token(t, room, "bob", true, true), "&publish=0"))
	joined := func(c pageChat) bool { return c.State == "joined" && c.ID != "" && len(c.People) == 3 }
	h := waitPageChat(t, host, "host", 60*time.Second, "joined with everyone there", joined)
	a := waitPageChat(t, alice, "alice", 60*time.Second, "joined with everyone there", joined)
	b := waitPageChat(t, bob, "bob", 60*time.Second, "joined with everyone there", joined)
	if !h.IsAdmin || a.IsAdmin || b.IsAdmin || !h.HostShown || a.HostShown {
		t.Fatalf("roles at join: host %s; alice %s", h, a)
	}
	hostID, aliceID, bobID := h.ID, a.ID, b.ID
	if len(h.Hosts) != 1 || h.Hosts[0] != hostID {
		t.Errorf("the host's people panel marks %v as hosts, want only itself (%s)", h.Hosts, hostID)
	}

	// Alice types a message and presses Enter in the open chat panel.
	if err := chromedp.Do(alice, chromedp.Click(chromedp.ID("btn-chat")),
		chromedp.SendKeys(chromedp.ID("chat-input"), "hello everyone\r")); err != nil {
		t.Fatalf("alice types in the chat: %v", err)
	}
	for _, p := range []struct {
		name string
		tab  context.Context
	}{{"host", host}, {"bob", bob}} {
		c := waitPageChat(t, p.tab, p.name, 10*time.Second, "alice's message, unread", func(c pageChat) bool {
			return len(c.Messages) == 1 && c.Badge == "1"
		})
		m := c.Messages[0]
		if m.Name != "Name of alice" || m.Text != "hello everyone" || !hhmmRe.MatchString(m.Time) || m.Own || m.Private || c.Unread != 1 {
			t.Errorf("%s shows %s", p.name, c)
		}
	}
	a = waitPageChat(t, alice, "alice", 10*time.Second, "its own message, marked", func(c pageChat) bool { return len(c.Messages) == 1 })
	if m := a.Messages[0]; !m.Own || m.Name != "Name of alice" || a.Badge != "" || a.Unread != 0 {
		t.Errorf("alice's own message: %s", a)
	}

	// Markup is text.
	const evil = `<img src=x onerror="window.__pwned=1">`
	evalTrue(t, alice, "alice", fmt.Sprintf(`window.sfu.sendChat(%q)`, evil))
	h = waitPageChat(t, host, "host", 10*time.Second, "the markup as text, 2 unread", func(c pageChat) bool {
		return c.has(evil) && c.Badge == "2"
	})
	if h.Imgs != 0 || h.Pwned {
		t.Errorf("the host's page made markup of a message: %s", h)
	}
	// Opening the panel clears the count.
	clickJS(t, host, "host", "#btn-chat")
	waitPageChat(t, host, "host", 5*time.Second, "the panel open, nothing unread", func(c pageChat) bool {
		return c.Open && c.Unread == 0 && c.Badge == ""
	})

	// A private message to Bob: Bob sees it, the host does not.
	evalTrue(t, alice, "alice", fmt.Sprintf(`window.sfu.sendChat('psst bob', %q)`, bobID))
	evalTrue(t, alice, "alice", `window.sfu.sendChat('after the secret')`)
	b = waitPageChat(t, bob, "bob", 10*time.Second, "the private message and the next one", func(c pageChat) bool {
		return c.has("psst bob") && c.has("after the secret")
	})
	for _, m := range b.Messages {
		if m.Text == "psst bob" && (!m.Private || !strings.Contains(m.Meta, "private, from Name of alice")) {
			t.Errorf("bob's private message is not shown private: %s", b)
		}
	}
	h = waitPageChat(t, host, "host", 10*time.Second, "the public message after the secret", func(c pageChat) bool { return c.has("after the secret") })
	if h.has("psst bob") {
		t.Errorf("the host got the private message: %s", h)
	}
	a = waitPageChat(t, alice, "alice", 10*time.Second, "its private message", func(c pageChat) bool { return c.has("psst bob") })
	for _, m := range a.Messages {
		if m.Text == "psst bob" && (!m.Private || !strings.Contains(m.Meta, "private, to Name of bob")) {
			t.Errorf("alice's private message is not shown private to bob: %s", a)
		}
	}
	// Escape in the message box closes the panel.
	if err := chromedp.Do(alice, chromedp.SendKeys(chromedp.ID("chat-input"), kb.Escape)); err != nil {
		t.Fatalf("alice presses Escape: %v", err)
	}
	waitPageChat(t, alice, "alice", 5*time.Second, "the chat panel closed", func(c pageChat) bool { return !c.Open })

	// The transcript download has the public chat and not the private message.
	vtt, err := chromedp.Run(host, chromedp.Evaluate[string](`window.sfu.transcript('')`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	if !strings.Contains(vtt, "<v.chat Name of alice>hello everyone") || strings.Contains(vtt, "psst") {
		t.Errorf("transcript:\n%s", vtt)
	}

	// Alice raises her hand: first in the host's queue, on her tile, and a notice.
	clickJS(t, alice, "alice", "#btn-hand")
	clickJS(t, host, "host", "#btn-people")
	h = waitPageChat(t, host, "host", 10*time.Second, "alice's hand first in the queue and on her tile", func(c pageChat) bool {
		return len(c.Queue) == 1 && c.Queue[0] == aliceID && len(c.TileHands) == 1 && c.TileHands[0] == aliceID
	})
	if len(h.Hands) != 1 || h.Hands[0] != aliceID || !strings.Contains(h.Notices, "Name of alice raised a hand") {
		t.Errorf("the host after alice raised her hand: %s", h)
	}
	waitPageChat(t, alice, "alice", 10*time.Second, "the hand button pressed", func(c pageChat) bool { return c.HandPress == "true" })
	// Bob raises his too (with the shortcut's event): second.
	evalTrue(t, bob, "bob", `window.dispatchEvent(new CustomEvent('sfu:hand-toggle')) || true`)
	waitPageChat(t, host, "host", 10*time.Second, "alice then bob in the queue", func(c pageChat) bool {
		return strings.Join(c.Queue, ",") == aliceID+","+bobID
	})
	// The host lowers Alice's hand: Bob is first.
	clickJS(t, host, "host", fmt.Sprintf(`#hands-queue [data-action="lower_hand"][data-participant-id="%s"]`, aliceID))
	waitPageChat(t, alice, "alice", 10*time.Second, "its hand down", func(c pageChat) bool {
		return c.HandPress == "false" && len(c.Hands) == 1 && c.Hands[0] == bobID
	})
	waitPageChat(t, host, "host", 10*time.Second, "bob alone in the queue", func(c pageChat) bool {
		return strings.Join(c.Queue, ",") == bobID && strings.Join(c.TileHands, ",") == bobID
	})

	// The host makes Bob a host: Bob's page shows the host controls, everyone's panel the badge.
	clickJS(t, host, "host", fmt.Sprintf(`#people-list [data-action="make_host"][data-participant-id="%s"]`, bobID))
	waitPageChat(t, bob, "bob", 10*time.Second, "host controls and a notice", func(c pageChat) bool {
		return c.IsAdmin && c.HostShown && strings.Contains(c.Notices, "You are now a host")
	})
	waitPageChat(t, host, "host", 10*time.Second, "bob's host badge", func(c pageChat) bool { return strings.Contains(strings.Join(c.Hosts, ","), bobID) })
	waitPageChat(t, alice, "alice", 10*time.Second, "the host's and bob's host badges", func(c pageChat) bool {
		return strings.Join(c.Hosts, ",") == hostID+","+bobID
	})

	// The host mutes Alice: her page shows it, and so does the host's panel.
	clickJS(t, host, "host", fmt.Sprintf(`#people-list [data-action="mute"][data-participant-id="%s"]`, aliceID))
	waitPageChat(t, alice, "alice", 10*time.Second, "muted by the host", func(c pageChat) bool {
		return c.Moderation == "mute" && c.MicPressed == "true"
	})
	waitPageChat(t, host, "host", 10*time.Second, "alice's microphone muted in the panel", func(c pageChat) bool {
		for _, p := range c.People {
			if p.ID == aliceID {
				return p.Mic == "off"
			}
		}
		return false
	})

	// The host removes Alice (after a confirmation): her meeting ends.
	evalTrue(t, host, "host", `(() => { window.confirm = () => true; return true; })()`)
	clickJS(t, host, "host", fmt.Sprintf(`#people-list [data-action="kick"][data-participant-id="%s"]`, aliceID))
	waitPageChat(t, alice, "alice", 10*time.Second, "removed", func(c pageChat) bool { return c.Bye == "kicked" && c.State == "left" })
	h = waitPageChat(t, host, "host", 10*time.Second, "alice gone from the panel", func(c pageChat) bool { return len(c.People) == 2 })
	t.Logf("host at the end: %s", h)

	// Too long, then too fast: the panel says why (the shortcut's event opens it).
	evalTrue(t, bob, "bob", `window.dispatchEvent(new CustomEvent('sfu:chat-toggle')) || true`)
	evalTrue(t, bob, "bob", `window.sfu.sendChat('x'.repeat(1001)) === false`)
	waitPageChat(t, bob, "bob", 5*time.Second, "the panel open, saying the message is too long", func(c pageChat) bool {
		return c.Open && strings.Contains(c.Error, "at most 1000 characters")
	})
	evalTrue(t, bob, "bob", `(() => { for (let i = 0; i < 20; i++) window.sfu.sendChat('flood ' + i); return true; })()`)
	waitPageChat(t, bob, "bob", 10*time.Second, "the rate limit in the panel", func(c pageChat) bool {
		return strings.Contains(c.Error, "Too many messages") && c.has("flood 0")
	})
}
