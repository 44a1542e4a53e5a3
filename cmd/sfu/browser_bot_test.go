package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserBotExample: the example bot (signaling/web/examples, built on protocol.js alone) joins a room and
// publishes an animated canvas; a person's meeting page shows the bot's tile and decodes its video, frame after
// frame (a still canvas would send next to none).
func TestBrowserBotExample(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	room := "bot-example"
	bot := openPage(t, ctx, exe, fmt.Sprintf("%s/static/examples/bot.html?room=%s&name=Robo", n.baseURL(), room))
	viewer := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=Viewer&publish=0&simulcast=0", n.baseURL(), room))

	st, took := waitStats(t, viewer, "Viewer", 90*time.Second, "the bot's 640x360 canvas, 60 frames decoded", func(st pageStats) bool {
		v := st.maxVideo()
		return v.FrameWidth == 640 && v.FrameHeight == 360 && v.FramesDecoded >= 60
	})
	t.Logf("Viewer after %v: %s", took.Round(time.Millisecond), st)

	names, err := chromedp.Run(viewer, chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll('.tile:not(.local) .name')).map((e) => e.textContent).join(',')`))
	if err != nil || !strings.Contains(names, "Robo") {
		t.Errorf("the viewer's remote tiles are named %q (%v), want the bot's name Robo among them", names, err)
	}
	state, err := chromedp.Run(bot, chromedp.Evaluate[botState](`window.bot`))
	if err != nil || state.State != "joined" || !strings.Contains(strings.Join(state.Peers, ","), "Viewer") {
		t.Errorf("the bot says %+v (%v), want joined with Viewer among its peers", state, err)
	}
}

// botState is what the example bot's page keeps in window.bot.
type botState struct {
	State string   `json:"state"`
	Peers []string `json:"peers"`
}
