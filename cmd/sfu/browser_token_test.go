package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserTokenLeavesAddressBar: a page opened with ?token= takes the token out of its address as soon as it
// has read it (so it stays out of the history), joins with it, and joins again with it after a reload.
func TestBrowserTokenLeavesAddressBar(t *testing.T) {
	exe := chromiumPath(t)
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tok := token(t, "addr", "viewer", false, true)
	tab := newBrowser(t, ctx, exe)
	csp := watchCSP(t, tab)
	if err := chromedp.Do(tab, chromedp.Navigate(fmt.Sprintf("%s/room/addr?name=viewer&publish=0&token=%s", n.baseURL(), url.QueryEscape(tok)))); err != nil {
		t.Fatal(err)
	}
	joined := func(what string) {
		t.Helper()
		eventually(t, 20*time.Second, what, func() bool {
			state, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.sfu ? String(window.sfu.state) : ''`))
			return err == nil && state == "joined"
		})
		addr, err := chromedp.Run(tab, chromedp.Evaluate[string](`location.href`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(addr, "token") || strings.Contains(addr, tok) {
			t.Errorf("%s: the address still holds the token: %s", what, addr)
		}
		if !strings.Contains(addr, "name=viewer") {
			t.Errorf("%s: the address lost its other parameters: %s", what, addr)
		}
	}
	joined("the page joins with its token")
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	joined("the page joins again after a reload, with the token it kept")
	if st := n.sfu.Stats(); st.Participants != 1 {
		t.Errorf("server sees %d participants, want 1", st.Participants)
	}
	// The transcript goes with the kept token in the Authorization header (this room has none: 404, not 401).
	got, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.sfu.transcript('').then(() => 'ok', (e) => String(e.message))`,
		chromedp.EvalAwaitPromise))
	if err != nil || strings.HasPrefix(got, "401") || strings.HasPrefix(got, "403") {
		t.Errorf("the page's transcript request: %q %v", got, err)
	}
	if v := csp(); len(v) > 0 {
		t.Errorf("the page broke its Content-Security-Policy: %q", v)
	}
}

// watchCSP collects the page's Content-Security-Policy violations from its console until the test ends; the
// returned function gives those so far.
func watchCSP(t *testing.T, tab context.Context) func() []string {
	ctx, cancel := context.WithCancel(tab)
	msgs := chromedp.Console(ctx) // subscribed from now: before the page loads
	var (
		mu         sync.Mutex
		violations []string
		done       = make(chan struct{})
	)
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				violations = append(violations, m.Text)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(violations)
	}
}
