package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// TestBans: a ban in Redis holds for its room and identity until it ends, on every node that reads it; names
// with ':' do not collide; a shorter ban does not shorten a longer one; the key expires with the ban.
func TestBans(t *testing.T) {
	url := clustertest.StartRedis(t)
	a, err := NewBans(url, DefaultBanTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewBans(url, DefaultBanTimeout) // another node's
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := a.Ban(ctx, "r:x", "y", until); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.Banned(ctx, "r:x", "y")
	if err != nil || !ok || !got.Equal(until) {
		t.Fatalf("Banned(r:x, y) = %v, %v, %v; want %v", got, ok, err, until)
	}
	// The same characters split differently are other rooms and identities.
	for _, c := range []struct{ room, identity string }{{"r", "x:y"}, {"r:x:y", ""}, {"r:x", "Y"}, {"r:x", "y:"}, {"", "r:x:y"}} {
		if _, ok, err := b.Banned(ctx, c.room, c.identity); err != nil || ok {
			t.Errorf("Banned(%q, %q) = %v, %v; want not banned", c.room, c.identity, ok, err)
		}
	}

	// A shorter ban of the same identity keeps the longer one.
	if err := b.Ban(ctx, "r:x", "y", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Banned(ctx, "r:x", "y"); err != nil || !ok || !got.Equal(until) {
		t.Fatalf("after a shorter ban: %v, %v, %v; want %v", got, ok, err, until)
	}

	// A ban ends, and its key goes, when it ends.
	short := time.Now().Add(300 * time.Millisecond)
	if err := a.Ban(ctx, "r", "short", short); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Banned(ctx, "r", "short"); err != nil || !ok {
		t.Fatalf("the short ban before its end: %v, %v", ok, err)
	}
	time.Sleep(time.Until(short) + 100*time.Millisecond)
	if _, ok, err := b.Banned(ctx, "r", "short"); err != nil || ok {
		t.Fatalf("the short ban after its end: %v, %v", ok, err)
	}
	if n, err := a.rdb.Exists(ctx, banKey("r", "short")).Result(); err != nil || n != 0 {
		t.Fatalf("the ended ban's key: exists %d, %v", n, err)
	}
	// A ban that has already ended is not written.
	if err := a.Ban(ctx, "r", "past", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Banned(ctx, "r", "past"); err != nil || ok {
		t.Fatalf("an ended ban: %v, %v", ok, err)
	}
	if ttl, err := a.rdb.PTTL(ctx, banKey("r:x", "y")).Result(); err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("the hour's ban's key expires in %v (%v)", ttl, err)
	}
}

// TestBansUnanswered: with a Redis that does not answer, or is not there, every call fails within its timeout.
func TestBansUnanswered(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // takes connections and never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close()

	const timeout = 200 * time.Millisecond
	for name, addr := range map[string]string{"silent": silent.Addr().String(), "gone": goneAddr} {
		s, err := NewBans("redis://"+addr+"/0", timeout)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := s.Ban(context.Background(), "r", "mallory", time.Now().Add(time.Hour)); err == nil {
			t.Errorf("%s: Ban succeeded", name)
		}
		if _, _, err := s.Banned(context.Background(), "r", "mallory"); err == nil {
			t.Errorf("%s: Banned succeeded", name)
		}
		if took := time.Since(start); took > 4*timeout+500*time.Millisecond {
			t.Errorf("%s: two calls took %v, want each within about %v", name, took, timeout)
		}
		s.Close()
	}
}
