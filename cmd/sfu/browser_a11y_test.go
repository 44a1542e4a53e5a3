package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// a11yControl is one control of the page as the accessibility test sees it.
type a11yControl struct {
	ID       int     `json:"id"`
	Where    string  `json:"where"`
	Name     string  `json:"name"`
	TabIndex int     `json:"tabIndex"`
	Disabled bool    `json:"disabled"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	W        float64 `json:"w"`
	H        float64 `json:"h"`
}

func (c a11yControl) String() string {
	return fmt.Sprintf("%s %q (%.0fx%.0f at %.0f,%.0f)", c.Where, c.Name, c.W, c.H, c.X, c.Y)
}

type a11yPage struct {
	Width    float64       `json:"width"`
	Height   float64       `json:"height"`
	Controls []a11yControl `json:"controls"`
}

// controlsJS numbers every visible control of the page (data-a11y) and says its accessible name (aria-label,
// aria-labelledby, its text, or its <label>), tab index and box.
const controlsJS = `(() => {
	const where = (el) => el.id ? '#' + el.id : el.tagName.toLowerCase() +
		(typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).join('.') : '');
	const nameOf = (el) => {
		const label = el.getAttribute('aria-label');
		if (label && label.trim()) return label.trim();
		const by = el.getAttribute('aria-labelledby');
		if (by) {
			const text = by.split(/\s+/).map((id) => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
			if (text) return text;
		}
		if (el.tagName !== 'SELECT' && el.tagName !== 'INPUT' && el.textContent.trim()) return el.textContent.trim();
		for (const l of el.labels || []) {
			if (l.textContent.trim()) return l.textContent.trim();
		}
		return '';
	};
	const controls = [];
	let id = 0;
	for (const el of document.querySelectorAll('button, select, input, textarea, a[href], [tabindex], [role="button"]')) {
		if (!el.checkVisibility({ visibilityProperty: true })) continue;
		el.dataset.a11y = String(++id);
		const r = el.getBoundingClientRect();
		controls.push({ id, where: where(el), name: nameOf(el), tabIndex: el.tabIndex, disabled: !!el.disabled,
			x: r.x, y: r.y, w: r.width, h: r.height });
	}
	return { width: window.innerWidth, height: window.innerHeight, controls };
})()`

// focusedJS says which control has the focus after a Tab, and whether it shows that it has it (an outline or a
// box shadow drawn for :focus-visible).
const focusedJS = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return { id: 0, visible: false };
	const cs = getComputedStyle(el);
	const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
	return { id: Number(el.dataset.a11y || -1), where: el.id || el.tagName, visible: el.matches(':focus-visible') && (outline || cs.boxShadow !== 'none') };
})()`

type focused struct {
	ID      int    `json:"id"`
	Where   string `json:"where"`
	Visible bool   `json:"visible"`
}

// TestBrowserAccessibility: on a host's meeting page (every control shown), each control has an accessible
// name, the Tab key reaches each one and the focused one shows a focus ring; captions stay inside the window at
// 200 % zoom; at 480 px wide every control is inside the window, at least 32x32 px, and none covers another.
func TestBrowserAccessibility(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	host, hostURL, _ := i18nSetup(t, ctx)
	navigateJoined(t, host, hostURL("lang=en"))

	// Names and keyboard.
	page := evalJS[a11yPage](t, host, "", controlsJS)
	if len(page.Controls) < 10 {
		t.Fatalf("only %d controls on a host's page: %v", len(page.Controls), page.Controls)
	}
	want := map[int]a11yControl{}
	for _, c := range page.Controls {
		if c.Name == "" {
			t.Errorf("no accessible name: %s", c)
		}
		if c.Disabled {
			continue
		}
		if c.TabIndex < 0 {
			t.Errorf("not reachable with Tab (tabIndex %d): %s", c.TabIndex, c)
		}
		want[c.ID] = c
	}
	evalJS[bool](t, host, "", `(() => { document.activeElement && document.activeElement.blur(); return true; })()`)
	reached := map[int]bool{}
	reachedWanted := 0 // Tab also stops on controls that came after the list was taken
	var order []string
	for i := 0; i < 2*len(page.Controls)+10 && reachedWanted < len(want); i++ {
		if err := chromedp.Do(host, chromedp.KeyEvent("\t")); err != nil {
			t.Fatalf("Tab: %v", err)
		}
		f := evalJS[focused](t, host, "", focusedJS)
		order = append(order, fmt.Sprintf("%d:%s", f.ID, f.Where))
		if f.ID <= 0 {
			continue
		}
		if _, ok := want[f.ID]; ok && !reached[f.ID] {
			reachedWanted++
		}
		reached[f.ID] = true
		if !f.Visible {
			t.Errorf("the focused control shows no focus ring: %s", want[f.ID])
		}
	}
	for id, c := range want {
		if !reached[id] {
			t.Errorf("Tab never reaches %s (Tab went %s)", c, strings.Join(order, " "))
		}
	}

	// 200 % zoom: the window is half as wide and tall in CSS pixels, each drawn with two device pixels. A long
	// caption over the other's tile (scrolled into view) and one of ours in the strip stay inside the window.
	if err := chromedp.Do(host, chromedp.EmulateViewport(640, 400, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("the quarterly numbers look better than last year ", 4)
	type captionBox struct {
		Where   string  `json:"where"`
		Left    float64 `json:"left"`
		Top     float64 `json:"top"`
		Right   float64 `json:"right"`
		Bottom  float64 `json:"bottom"`
		FontPx  float64 `json:"fontPx"`
		Clipped bool    `json:"clipped"`
	}
	type zoomResult struct {
		Width  float64      `json:"width"`
		Height float64      `json:"height"`
		Boxes  []captionBox `json:"boxes"`
	}
	z := evalJS[zoomResult](t, host, "", fmt.Sprintf(`(async () => {
		const captions = await import('/static/captions.js');
		const tile = document.querySelector('.tile:not(.local)');
		captions.showCaption(tile.dataset.participantId, %[1]q, true);
		captions.showCaption(window.sfu.participantId, %[1]q, true);
		await new Promise((r) => setTimeout(r, 300));
		tile.scrollIntoView({ block: 'center' });
		await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
		const boxes = [];
		for (const el of [tile.querySelector('.caption'), document.querySelector('#caption-strip .caption')]) {
			if (!el) { boxes.push({ where: 'missing' }); continue; }
			const r = el.getBoundingClientRect();
			const text = el.querySelector('.caption-text');
			boxes.push({ where: el.parentElement.id || el.parentElement.className, left: r.left, top: r.top, right: r.right,
				bottom: r.bottom, fontPx: parseFloat(getComputedStyle(text).fontSize),
				clipped: el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1 });
		}
		return { width: window.innerWidth, height: window.innerHeight, boxes };
	})()`, long))
	if z.Width > 660 {
		t.Errorf("200 %% zoom: the window is %.0f CSS pixels wide, want 640", z.Width)
	}
	for _, b := range z.Boxes {
		if b.Where == "missing" {
			t.Errorf("200 %% zoom: a caption is missing")
			continue
		}
		if b.Left < 0 || b.Top < 0 || b.Right > z.Width+0.5 || b.Bottom > z.Height+0.5 || b.Clipped || b.FontPx < 12 {
			t.Errorf("200 %% zoom: caption in %s at (%.0f,%.0f)-(%.0f,%.0f), %.1f px, clipped %v; window %.0fx%.0f",
				b.Where, b.Left, b.Top, b.Right, b.Bottom, b.FontPx, b.Clipped, z.Width, z.Height)
		}
	}

	// A phone: 480 px wide.
	if err := chromedp.Do(host, chromedp.EmulateViewport(480, 800)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	page = evalJS[a11yPage](t, host, "", controlsJS)
	if page.Width != 480 {
		t.Fatalf("the window is %.0f px wide, want 480", page.Width)
	}
	for i, c := range page.Controls {
		if c.X < -0.5 || c.Y < -0.5 || c.X+c.W > page.Width+0.5 || c.Y+c.H > page.Height+0.5 {
			t.Errorf("480 px: outside the window: %s", c)
		}
		if c.W < 32 || c.H < 32 {
			t.Errorf("480 px: smaller than 32x32: %s", c)
		}
		for _, o := range page.Controls[i+1:] {
			if c.X < o.X+o.W-0.5 && o.X < c.X+c.W-0.5 && c.Y < o.Y+o.H-0.5 && o.Y < c.Y+c.H-0.5 {
				t.Errorf("480 px: %s overlaps %s", c, o)
			}
		}
	}
	if shots := os.Getenv("SFU_SHOTS"); shots != "" {
		writeShot(t, host, filepath.Join(shots, "meeting-480.png"))
	}
}
