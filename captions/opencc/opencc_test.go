package opencc

import (
	"context"
	"testing"
)

// TestOpenCC converts between the forms of Chinese that matter in Hong Kong and Taiwan.
func TestOpenCC(t *testing.T) {
	if !Available {
		t.Skip("this build has no cgo")
	}
	o := New()
	defer o.Close()
	for _, c := range []struct{ from, to, in, want string }{
		{"zh", "zh-Hant", "会议现在开始", "會議現在開始"},
		{"zh-Hans", "zh-TW", "软件和网络", "軟體和網路"}, // Taiwan's own words, not just characters
		{"zh-Hant", "zh-Hans", "會議現在開始", "会议现在开始"},
		{"zh", "zh-HK", "里面", "裏面"},
		{"yue", "zh-Hans", "我哋開會", "我哋开会"},
	} {
		if !o.Supports(c.from, c.to) {
			t.Fatalf("%s→%s not supported", c.from, c.to)
		}
		got, err := o.Translate(context.Background(), c.in, c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s→%s %q: got %q, want %q", c.from, c.to, c.in, got, c.want)
		}
	}
	if o.Supports("en", "zh-Hant") || o.Supports("zh", "zh-CN") {
		t.Error("OpenCC claims a pair it cannot convert")
	}
}
