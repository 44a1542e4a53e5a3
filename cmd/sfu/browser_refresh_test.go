package main

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edge-sfu/sfu/signaling"
)

// TestBrowserReconnectsWithRefreshedToken: a page opened with a token that lives 4 s stays in the room past
// that token's end, and when its socket drops after it, reconnects with the fresh token the server sent.
func TestBrowserReconnectsWithRefreshedToken(t *testing.T) {
	exe := chromiumPath(t)
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tab := newBrowser(t, ctx, exe)
	const life = 4 * time.Second
	tok := tokenFor(t, "brefresh", "viewer", "", life)
	claims, err := signaling.VerifyToken([]byte(testSecret), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(fmt.Sprintf("%s/room/brefresh?name=viewer&publish=0&token=%s", n.baseURL(), url.QueryEscape(tok)))); err != nil {
		t.Fatal(err)
	}
	state := func() (joins, refreshes int, st string) {
		type page struct {
			Joins, Refreshes int
			State            string
		}
		v, err := chromedp.Run(tab, chromedp.Evaluate[page](`({Joins: window.sfu.joins, Refreshes: window.sfu.tokenRefreshes, State: String(window.sfu.state)})`))
		if err != nil {
			return 0, 0, err.Error()
		}
		return v.Joins, v.Refreshes, v.State
	}
	eventually(t, 20*time.Second, "the page joins and gets a fresh token", func() bool {
		joins, refreshes, st := state()
		return joins == 1 && refreshes > 0 && st == "joined"
	})
	select { // past the page's token's end (its exp plus the leeway)
	case <-time.After(time.Until(claims.ExpiresAt.Add(signaling.Leeway + 500*time.Millisecond))):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.sfu.dropSocket()`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the page joins again after the drop", func() bool {
		joins, _, st := state()
		return joins >= 2 && st == "joined"
	})
	if st := n.sfu.Stats(); st.Participants != 1 {
		t.Errorf("server sees %d participants, want 1", st.Participants)
	}
}
