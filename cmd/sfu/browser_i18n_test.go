package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The meeting page in the languages it speaks: a host page (an admin token, so that the host controls and the
// host menu on the other's tile show) and a guest page (a dev token) in one room of a dev node.

const i18nRoom = "lingo"

// i18nNames are the names the test gives the participants; with the room's name they are the only Latin words
// a Chinese page may show besides the technical ones of technicalWord.
var i18nNames = []string{"Hana", "Gus", i18nRoom}

// technicalWord: words that stay as they are in every language (units, codecs, formats, the simulcast layers'
// names, sizes such as 1280x720).
var technicalWord = regexp.MustCompile(`^(SFU|VP8|VP9|H264|AV1|Opus|WebVTT|RTT|kbps|fps|ms|q|h|f|\d+x\d+|[\d.]+(ms|fps|kbps)?)$`)

// latinWord finds the words of a text that hold a Latin letter.
var latinWord = regexp.MustCompile(`[A-Za-z0-9_.]*[A-Za-z][A-Za-z0-9_.]*`)

// i18nSetup starts a dev node (with the test secret, so that an admin token works), a guest page in it and a
// browser for the host; hostURL is the host page's address with extra query (e.g. "lang=zh-HK").
func i18nSetup(t *testing.T, ctx context.Context) (host context.Context, hostURL func(query string) string, base string) {
	t.Helper()
	exe := chromiumPath(t)
	n := startTestNode(t, func(c *config) { c.Dev = true })
	openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=Gus&res=720&simulcast=0", n.baseURL(), i18nRoom))
	host = newBrowser(t, ctx, exe)
	tok := url.QueryEscape(adminToken(t, i18nRoom, "Hana"))
	hostURL = func(query string) string {
		u := fmt.Sprintf("%s/room/%s?name=Hana&res=720&simulcast=0&token=%s", n.baseURL(), i18nRoom, tok)
		if query != "" {
			u += "&" + query
		}
		return u
	}
	return host, hostURL, n.baseURL()
}

// navigate opens u in the tab and waits until the page joined with the guest's tile and the host controls.
func navigateJoined(t *testing.T, tab context.Context, u string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(skipPrejoin(u))); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	waitHostReady(t, tab)
}

func waitHostReady(t *testing.T, tab context.Context) {
	t.Helper()
	waitJS(t, tab, 30*time.Second, "the page joined, with the other's tile and the host controls",
		`window.sfu && window.sfu.state === 'joined' && window.sfu.isAdmin &&
		 Array.from(document.querySelectorAll('.tile:not(.local) .name')).some((e) => e.textContent === 'Gus')`)
}

// shownText is one piece of text a person can read (or hear from a screen reader) on the page.
type shownText struct {
	Where string `json:"where"`
	Text  string `json:"text"`
}

type pageWords struct {
	Lang  string      `json:"lang"`
	Title string      `json:"title"`
	Items []shownText `json:"items"`
}

// walkJS collects every visible text node of the page, the options of visible selects and the title,
// aria-label, placeholder and alt of every visible element. Text marked as another language (lang="en" on the
// language picker's "English") or as not to be translated (translate="no": a device's name as the system gives
// it) is left out: it is not untranslated.
const walkJS = `(() => {
	const shown = (el) => !!el && el.checkVisibility({ visibilityProperty: true });
	const root = document.documentElement;
	const foreign = (el) => { const l = el.closest('[lang]');
		return !!l && l !== root && l.lang !== root.lang || !!el.closest('[translate="no"]'); };
	const where = (el) => el.id ? '#' + el.id : el.tagName.toLowerCase() +
		(typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).join('.') : '');
	const items = [];
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const text = n.textContent.trim();
		const el = n.parentElement;
		if (!text || !el || el.closest('script, style, template')) continue;
		const holder = el.tagName === 'OPTION' ? el.closest('select') : el;
		if (!shown(holder) || foreign(el)) continue;
		items.push({ where: where(el), text });
	}
	for (const el of document.body.querySelectorAll('*')) {
		if (!shown(el) || foreign(el)) continue;
		for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
			const v = el.getAttribute(a);
			if (v && v.trim()) items.push({ where: where(el) + '@' + a, text: v.trim() });
		}
	}
	return { lang: root.lang, title: document.title, items };
})()`

// walkPage reads the page as it is, then opens each closed panel or menu it finds ([aria-expanded=false],
// [data-panel] toggles) and the stats overlay, reading it again after each.
func walkPage(t *testing.T, tab context.Context) pageWords {
	t.Helper()
	all := evalJS[pageWords](t, tab, "", walkJS)
	toggles := evalJS[int](t, tab, "", `document.querySelectorAll('[aria-expanded="false"], button[data-panel]').length`)
	for i := 0; i < toggles; i++ {
		opened := evalJS[bool](t, tab, "", fmt.Sprintf(`(() => {
			const el = document.querySelectorAll('[aria-expanded="false"], button[data-panel]')[%d];
			if (!el || el.disabled || !el.checkVisibility()) return false;
			el.click();
			return true;
		})()`, i))
		if opened {
			time.Sleep(300 * time.Millisecond)
			all.Items = append(all.Items, evalJS[pageWords](t, tab, "", walkJS).Items...)
		}
	}
	// The stats overlay: on, and read once it shows figures.
	evalJS[bool](t, tab, "", `(() => { const b = document.getElementById('btn-stats');
		if (b && b.getAttribute('aria-pressed') !== 'true') b.click(); return true; })()`)
	waitJS(t, tab, 15*time.Second, "the stats overlay on the other's tile",
		`Array.from(document.querySelectorAll('.tile:not(.local) .stats-overlay')).some((e) => e.textContent.trim() !== '')`)
	all.Items = append(all.Items, evalJS[pageWords](t, tab, "", walkJS).Items...)
	return all
}

// untranslated lists the texts of w that hold a Latin word other than the names the test chose and the
// technical words.
func untranslated(w pageWords) []string {
	var bad []string
	seen := map[string]bool{}
	for _, it := range append(w.Items, shownText{Where: "document.title", Text: w.Title}) {
		rest := it.Text
		for _, name := range i18nNames {
			rest = strings.ReplaceAll(rest, name, " ")
		}
		for _, word := range latinWord.FindAllString(rest, -1) {
			if technicalWord.MatchString(strings.Trim(word, ".")) {
				continue
			}
			line := fmt.Sprintf("%s: %q (%q)", it.Where, it.Text, word)
			if !seen[line] {
				seen[line] = true
				bad = append(bad, line)
			}
			break
		}
	}
	return bad
}

func allText(w pageWords) string {
	var b strings.Builder
	for _, it := range w.Items {
		b.WriteString(it.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// captionsOptions: the captions picker's languages in order, and the language captions are read in now.
type captionsOptions struct {
	Options []string `json:"options"`
	Lang    string   `json:"lang"`
}

const captionsOptionsJS = `({ options: Array.from(document.getElementById('captions-lang').options).map((o) => o.value),
	lang: window.sfu.captions.lang })`

// TestBrowserLanguages: the meeting page in 繁體中文（香港）, 简体中文 and English. In each Chinese page no word
// in Latin letters is left (but the names, the room and units), the page says its language (<html lang>),
// and Traditional and Simplified characters are where they belong; the English page reads in English. The
// captions picker offers the interface's language first without turning captions on. The picker switches the
// language, and the choice outlives a reload without ?lang=.
func TestBrowserLanguages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	host, hostURL, base := i18nSetup(t, ctx)
	shots := os.Getenv("SFU_SHOTS") // SFU_SHOTS=dir keeps a picture of each language's meeting page

	wantCaptions := map[string]string{"zh-HK": "zh-HK", "zh-CN": "zh-Hans", "en": "en"}
	for _, lang := range []string{"zh-HK", "zh-CN", "en"} {
		navigateJoined(t, host, hostURL("lang="+lang))
		if shots != "" {
			saveShot(t, host, filepath.Join(shots, "meeting-"+lang+".png"))
		}
		c := evalJS[captionsOptions](t, host, "", captionsOptionsJS)
		if len(c.Options) < 2 || c.Options[0] != "" || c.Options[1] != wantCaptions[lang] || c.Lang != "" {
			t.Errorf("%s: captions picker %v reading %q; want Off, then %s first, captions still off", lang, c.Options, c.Lang, wantCaptions[lang])
		}
		w := walkPage(t, host)
		if w.Lang != lang {
			t.Errorf("%s: <html lang=%q>", lang, w.Lang)
		}
		text := allText(w)
		switch lang {
		case "en":
			for _, want := range []string{"Connected", "2 participants", "Mute", "Stop video", "Share screen", "Leave",
				"Lock room", "End meeting", "Kick", "Captions language", "Noise suppression", "You (Hana)", "layer"} {
				if !strings.Contains(text, want) {
					t.Errorf("en: the page does not say %q", want)
				}
			}
		case "zh-HK":
			if !strings.ContainsAny(text, "參視聲會離") || strings.ContainsAny(text, "参视声会离") {
				t.Errorf("zh-HK: want Traditional characters (參 視 會 離), not Simplified (参 视 会 离):\n%s", text)
			}
		case "zh-CN":
			if !strings.ContainsAny(text, "参视声会离") || strings.ContainsAny(text, "參視聲會離") {
				t.Errorf("zh-CN: want Simplified characters (参 视 会 离), not Traditional (參 視 會 離):\n%s", text)
			}
		}
		if lang != "en" {
			if bad := untranslated(w); len(bad) > 0 {
				t.Errorf("%s: %d texts left in Latin letters:\n  %s", lang, len(bad), strings.Join(bad, "\n  "))
			}
		}
	}

	// The pre-join screen too (the camera's preview, the devices' names as the system gives them).
	for _, lang := range []string{"zh-HK", "zh-CN"} {
		if err := chromedp.Do(host, chromedp.Navigate(hostURL("prejoin=1&lang="+lang))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, host, 15*time.Second, "the pre-join screen in "+lang+" with its devices listed",
			`window.sfu.prejoin.shown && document.getElementById('prejoin-camera').options.length > 0 && document.documentElement.lang === '`+lang+`'`)
		w := evalJS[pageWords](t, host, "", walkJS)
		if bad := untranslated(w); len(bad) > 0 || len(w.Items) < 8 {
			t.Errorf("pre-join screen in %s: %d texts, %d left in Latin letters:\n  %s", lang, len(w.Items), len(bad), strings.Join(bad, "\n  "))
		}
	}

	// The landing page too.
	for _, lang := range []string{"zh-HK", "zh-CN"} {
		if err := chromedp.Do(host, chromedp.Navigate(base+"/?lang="+lang)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, host, 10*time.Second, "the landing page in "+lang, `document.documentElement.lang === '`+lang+`'`)
		if shots != "" {
			writeShot(t, host, filepath.Join(shots, "landing-"+lang+".png"))
		}
		w := evalJS[pageWords](t, host, "", walkJS)
		if bad := untranslated(w); len(bad) > 0 || len(w.Items) < 5 {
			t.Errorf("landing page in %s: %d texts, %d left in Latin letters:\n  %s", lang, len(w.Items), len(bad), strings.Join(bad, "\n  "))
		}
	}

	// ?captions=auto reads captions in the interface's language from the start.
	navigateJoined(t, host, hostURL("lang=zh-CN&captions=auto"))
	if c := evalJS[captionsOptions](t, host, "", captionsOptionsJS); c.Lang != "zh-Hans" {
		t.Errorf("?captions=auto in zh-CN reads captions in %q, want zh-Hans", c.Lang)
	}

	// The picker: no ?lang= and nothing chosen before: the browser's language (English here). Choosing 简体中文
	// rewords the page, and a reload without ?lang= keeps it.
	evalJS[bool](t, host, "", `window.sfu.setCaptions('off')`)
	navigateJoined(t, host, hostURL(""))
	if lang := evalJS[string](t, host, "", `document.documentElement.lang`); lang != "en" {
		t.Fatalf("without ?lang= nor a choice the page is in %q, want en (the browser's)", lang)
	}
	evalJS[bool](t, host, "", `(() => { const s = document.getElementById('ui-lang'); s.value = 'zh-CN';
		s.dispatchEvent(new Event('change')); return true; })()`)
	const saysZhCN = `document.documentElement.lang === 'zh-CN' && document.querySelector('#btn-leave .control-label').textContent === '离开会议' &&
		document.getElementById('status-text').textContent === '已连接' && document.getElementById('ui-lang').value === 'zh-CN'`
	waitJS(t, host, 30*time.Second, "the page in 简体中文 after picking it", saysZhCN)
	waitHostReady(t, host)
	navigateJoined(t, host, hostURL(""))
	waitJS(t, host, 10*time.Second, "简体中文 again after a reload without ?lang=", saysZhCN)
}

// saveShot saves a PNG of the page once the other's video plays.
func saveShot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	waitJS(t, tab, 20*time.Second, "the other's video playing",
		`Array.from(document.querySelectorAll('.tile:not(.local) video')).some((v) => v.videoWidth > 0 && !v.paused)`)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("viewport 1280x800: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	writeShot(t, tab, path)
}

// writeShot saves a PNG of the page as it is.
func writeShot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", path, err)
	}
}
