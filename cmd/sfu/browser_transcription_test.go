package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edge-sfu/sfu/media/opus"
)

// pageTranscription is who a page shows as transcribed: the tiles whose transcription badge is displayed, by
// participant id (the page's own tile under its own id), with the badge's text and label, and what the last
// transcription message said (window.sfu.transcribed).
type pageTranscription struct {
	State  string   `json:"state"`
	Self   string   `json:"self"`   // the page's participant id
	Said   []string `json:"said"`   // window.sfu.transcribed
	Mics   []string `json:"mics"`   // remote tiles whose microphone is on
	Badged []string `json:"badged"` // tiles with a displayed badge
	Badges []struct {
		Participant string `json:"participant"`
		Text        string `json:"text"`
		Title       string `json:"title"`
		Label       string `json:"label"`
	} `json:"badges"`
}

func (p pageTranscription) String() string {
	return fmt.Sprintf("state=%s self=%s transcribed=%q remote mics on=%q badged=%q badges=%+v", p.State, p.Self, p.Said, p.Mics, p.Badged, p.Badges)
}

func (p pageTranscription) badge(id string) (text, title, label string) {
	for _, b := range p.Badges {
		if b.Participant == id {
			return b.Text, b.Title, b.Label
		}
	}
	return "", "", ""
}

const pageTranscriptionJS = `(() => {
	const self = (window.sfu && window.sfu.participantId) || '';
	const idOf = (tile) => tile.classList.contains('local') ? self : String(tile.dataset.participantId || '');
	const shown = (el) => !!el && !el.hidden && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
	const badges = [];
	for (const tile of document.querySelectorAll('.tile')) {
		const b = tile.querySelector('.transcribed-badge');
		if (shown(b)) badges.push({participant: idOf(tile), text: b.textContent, title: b.title || '', label: b.getAttribute('aria-label') || ''});
	}
	return {
		state: window.sfu ? String(window.sfu.state) : 'no hook',
		self,
		said: window.sfu && Array.isArray(window.sfu.transcribed) ? window.sfu.transcribed.map(String) : [],
		mics: Array.from(document.querySelectorAll('.tile:not(.local):not(.screen)'))
			.filter((t) => t.dataset.mic === 'on').map(idOf),
		badged: badges.map((b) => b.participant),
		badges,
	};
})()`

// waitTranscription polls what the page shows as transcribed until ok holds.
func waitTranscription(t *testing.T, tab context.Context, name string, timeout time.Duration, what string, ok func(pageTranscription) bool) pageTranscription {
	t.Helper()
	start := time.Now()
	for {
		p, err := chromedp.Run(tab, chromedp.Evaluate[pageTranscription](pageTranscriptionJS))
		if err != nil {
			t.Fatalf("%s: read the page: %v", name, err)
		}
		if ok(p) {
			t.Logf("%s after %v: %s", name, time.Since(start).Round(time.Millisecond), p)
			return p
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s after %v: want %s, have %s", name, timeout, what, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserShowsWhoIsTranscribed (security finding 7: the page shows who is being transcribed): a page
// publishes its microphone, in Traditional Chinese (?lang=zh-HK); a viewer page (English, publishing nothing)
// turns captions on. On the viewer's page the publisher's tile gets a "Transcribed" badge and the viewer's own
// tile none; on the publisher's page its own tile gets "正在轉錄". Captions off: the server says nobody is
// transcribed, and both badges go.
func TestBrowserShowsWhoIsTranscribed(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo: no Opus decoder for the captions engine")
	}
	exe := chromiumPath(t)
	n := startTestNode(t, func(c *config) {
		c.Captions, c.CaptionsGrammar = "pocketsphinx", "../../captions/pocketsphinx/testdata/meeting.jsgf"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	room := "browser-transcription"
	pub := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=pub&res=720&simulcast=0&lang=zh-HK&token=%s",
		n.baseURL(), room, url.QueryEscape(token(t, room, "pub", true, true))))
	viewer := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=viewer&publish=0&lang=en&token=%s",
		n.baseURL(), room, url.QueryEscape(token(t, room, "viewer", false, true))))

	// Before captions: the viewer sees the publisher's microphone, and nobody is badged.
	v := waitTranscription(t, viewer, "viewer", 90*time.Second, "the publisher's microphone on its tile", func(p pageTranscription) bool {
		return p.State == "joined" && p.Self != "" && len(p.Mics) == 1
	})
	pubID, viewerID := v.Mics[0], v.Self
	if len(v.Badged) != 0 {
		t.Fatalf("a badge before anyone reads captions: %s", v)
	}
	p := waitTranscription(t, pub, "publisher", 30*time.Second, "joined as "+pubID, func(p pageTranscription) bool {
		return p.State == "joined" && p.Self == pubID
	})
	if len(p.Badged) != 0 {
		t.Fatalf("a badge on the publisher's page before anyone reads captions: %s", p)
	}

	// Captions on: the publisher's microphone is transcribed, and both pages say so.
	if sent, err := chromedp.Run(viewer, chromedp.Evaluate[bool](`window.sfu.setCaptions('en')`)); err != nil || !sent {
		t.Fatalf("setCaptions('en'): sent %v, %v", sent, err)
	}
	v = waitTranscription(t, viewer, "viewer", 30*time.Second, "a badge on the publisher's tile only", func(p pageTranscription) bool {
		return slices.Equal(p.Badged, []string{pubID})
	})
	if !slices.Equal(v.Said, []string{pubID}) {
		t.Errorf("viewer: window.sfu.transcribed %q, want [%s]", v.Said, pubID)
	}
	if text, title, label := v.badge(pubID); text != "Transcribed" || title != "Transcribed" || label != "Transcribed" {
		t.Errorf("viewer: the badge says %q (title %q, aria-label %q), want \"Transcribed\"", text, title, label)
	}
	if slices.Contains(v.Badged, viewerID) {
		t.Errorf("viewer: its own tile is badged, but it publishes no microphone: %s", v)
	}
	p = waitTranscription(t, pub, "publisher", 30*time.Second, "a badge on its own tile", func(p pageTranscription) bool {
		return slices.Equal(p.Badged, []string{pubID})
	})
	if text, title, label := p.badge(pubID); text != "正在轉錄" || title != "正在轉錄" || label != "正在轉錄" {
		t.Errorf("publisher (zh-HK): its badge says %q (title %q, aria-label %q), want \"正在轉錄\"", text, title, label)
	}

	// SFU_SCREENSHOT_DIR=dir keeps a picture of each page with its badge, to look at it as a person would.
	if dir := os.Getenv("SFU_SCREENSHOT_DIR"); dir != "" {
		for name, tab := range map[string]context.Context{"viewer": viewer, "publisher": pub} {
			png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "transcribed-"+name+".png"), png, 0o644)
			}
			if err != nil {
				t.Errorf("screenshot of %s: %v", name, err)
			}
		}
	}

	// Captions off: nobody is transcribed, and the badges go.
	if sent, err := chromedp.Run(viewer, chromedp.Evaluate[bool](`window.sfu.setCaptions('')`)); err != nil || !sent {
		t.Fatalf("setCaptions(''): sent %v, %v", sent, err)
	}
	none := func(p pageTranscription) bool { return len(p.Badged) == 0 && len(p.Said) == 0 }
	waitTranscription(t, viewer, "viewer", 15*time.Second, "no badge once captions are off", none)
	waitTranscription(t, pub, "publisher", 15*time.Second, "no badge once captions are off", none)
}
