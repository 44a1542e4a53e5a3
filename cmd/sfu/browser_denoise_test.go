package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edge-sfu/sfu/media/opus"
)

// pageDenoise is the page's noise suppression state: window.sfu.denoise, the button and the notice.
type pageDenoise struct {
	Enabled    bool     `json:"enabled"`
	Processors []string `json:"processors"`
	Error      string   `json:"error"`
	Pending    bool     `json:"pending"`
	Pressed    string   `json:"pressed"` // the button's aria-pressed
	Disabled   bool     `json:"disabled"`
	Notice     string   `json:"notice"` // the text of the denoise banner, "" if none is shown
	State      string   `json:"state"`
}

func (d pageDenoise) String() string {
	return fmt.Sprintf("state=%s processors=%q enabled=%v pending=%v error=%q button[aria-pressed=%s disabled=%v] notice=%q",
		d.State, d.Processors, d.Enabled, d.Pending, d.Error, d.Pressed, d.Disabled, d.Notice)
}

const pageDenoiseJS = `(() => {
	const d = (window.sfu && window.sfu.denoise) || {};
	const b = document.getElementById('btn-denoise');
	const n = document.querySelector('.banner[data-key="denoise"] .banner-text');
	return {
		enabled: !!d.enabled,
		processors: Array.isArray(d.processors) ? d.processors : [],
		error: String(d.error || ''),
		pending: !!d.pending,
		pressed: b ? String(b.getAttribute('aria-pressed')) : 'no button',
		disabled: b ? b.disabled : true,
		notice: n ? n.textContent : '',
		state: window.sfu ? String(window.sfu.state) : 'no hook',
	};
})()`

// waitDenoise polls the page's noise suppression state until ok holds, and says how long that took.
func waitDenoise(t *testing.T, tab context.Context, timeout time.Duration, what string, ok func(pageDenoise) bool) (pageDenoise, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		d, err := chromedp.Run(tab, chromedp.Evaluate[pageDenoise](pageDenoiseJS))
		if err != nil {
			t.Fatalf("read window.sfu.denoise: %v", err)
		}
		if ok(d) {
			return d, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %v: want %s, have %s", timeout, what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// denoisedWith: the server confirmed exactly these processors, and the button shows noise suppression on.
func denoisedWith(procs ...string) func(pageDenoise) bool {
	return func(d pageDenoise) bool {
		return slices.Equal(d.Processors, procs) && d.Enabled && !d.Pending && d.Error == "" && d.Pressed == "true"
	}
}

// TestBrowserDenoise: a page opened with ?denoise=rnnoise asks the server to denoise its (fake) microphone
// right after joining, and shows what the server confirms; setDenoise(false) turns it off, the button turns it
// back on with the same engine, and a reload without the parameter asks again from the stored choice.
func TestBrowserDenoise(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo: no Opus encoder, so no denoise")
	}
	exe := chromiumPath(t)
	n := startTestNode(t, rnnoiseOption(t))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	room := "browser-denoise"
	base := fmt.Sprintf("%s/room/%s?name=x&token=%s", n.baseURL(), room, url.QueryEscape(token(t, room, "x", true, true)))
	tab := openPage(t, ctx, exe, base+"&denoise=rnnoise")

	d, took := waitDenoise(t, tab, 60*time.Second, `processors ["rnnoise"] on the microphone`, denoisedWith("rnnoise"))
	t.Logf("denoise on after %v: %s", took.Round(time.Millisecond), d)
	// The server runs RNNoise over the browser's real Opus audio.
	eventually(t, 10*time.Second, "the server processes audio packets", func() bool {
		return metricValue(scrape(t, n), "sfu_audio_processing_seconds_count") > 0
	})

	sent, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.sfu.setDenoise(false)`))
	if err != nil || !sent {
		t.Fatalf("setDenoise(false): sent %v, %v", sent, err)
	}
	d, took = waitDenoise(t, tab, 15*time.Second, "processors [] once turned off", func(d pageDenoise) bool {
		return len(d.Processors) == 0 && !d.Enabled && !d.Pending && d.Error == "" && d.Pressed == "false"
	})
	t.Logf("denoise off after %v: %s", took.Round(time.Millisecond), d)
	if d.Disabled {
		t.Errorf("the noise suppression button is disabled with a microphone published: %s", d)
	}

	// The button turns it on again, with the engine chosen last.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("btn-denoise"))); err != nil {
		t.Fatalf("click the noise suppression button: %v", err)
	}
	d, took = waitDenoise(t, tab, 15*time.Second, `processors ["rnnoise"] after a click`, denoisedWith("rnnoise"))
	t.Logf("denoise on again after a click, %v: %s", took.Round(time.Millisecond), d)

	// The choice outlives the page: a reload without ?denoise= asks for it again after joined.
	stored, err := chromedp.Run(tab, chromedp.Evaluate[string](`String(localStorage.getItem('sfu.denoise'))`))
	if err != nil || !strings.Contains(stored, `"enabled":true`) || !strings.Contains(stored, `"engine":"rnnoise"`) {
		t.Fatalf("stored choice %q, %v; want enabled with rnnoise", stored, err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(skipPrejoin(base))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	d, took = waitDenoise(t, tab, 60*time.Second, `processors ["rnnoise"] after a reload`, denoisedWith("rnnoise"))
	t.Logf("denoise on after a reload, %v: %s", took.Round(time.Millisecond), d)
}

// TestBrowserDenoiseE2EE: in an end-to-end encrypted room the server refuses to denoise; the page says why in a
// notice and in window.sfu.denoise.error, and keeps the button off.
func TestBrowserDenoiseE2EE(t *testing.T) {
	exe := chromiumPath(t)
	room := "browser-e2ee"
	rc := filepath.Join(t.TempDir(), "rooms.json")
	if err := os.WriteFile(rc, []byte(`{"rooms": {"`+room+`": {"e2ee": true}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, rnnoiseOption(t), func(c *config) { c.RoomConfig = rc })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	u := fmt.Sprintf("%s/room/%s?name=x&token=%s&denoise=rnnoise#e2ee=passphrase", n.baseURL(), room, url.QueryEscape(token(t, room, "x", true, true)))
	tab := openPage(t, ctx, exe, u)
	d, took := waitDenoise(t, tab, 60*time.Second, "an error about encryption", func(d pageDenoise) bool {
		return d.Error != ""
	})
	t.Logf("refused after %v: %s", took.Round(time.Millisecond), d)
	if !strings.Contains(strings.ToLower(d.Error), "encrypt") {
		t.Errorf("window.sfu.denoise.error %q does not mention encryption", d.Error)
	}
	if !strings.Contains(strings.ToLower(d.Notice), "encrypt") {
		t.Errorf("the notice %q does not mention encryption", d.Notice)
	}
	if d.Enabled || len(d.Processors) != 0 || d.Pressed != "false" {
		t.Errorf("noise suppression shows as on in an encrypted room: %s", d)
	}
	// The error stays once the camera and microphone are published: nothing runs on them.
	eventually(t, 30*time.Second, "the page publishes its camera and microphone", func() bool { return n.sfu.Stats().Tracks >= 2 })
	time.Sleep(2 * time.Second)
	d, err := chromedp.Run(tab, chromedp.Evaluate[pageDenoise](pageDenoiseJS))
	if err != nil {
		t.Fatal(err)
	}
	if d.Error == "" || d.Enabled || d.State != "joined" {
		t.Errorf("two seconds later: %s; want the error kept and noise suppression off", d)
	}
}
