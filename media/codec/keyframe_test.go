package codec

import "testing"

func TestVP8Keyframe(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"key, no extension", []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"delta, no extension", []byte{0x10, 0x01}, false},
		{"key with 15-bit picture id", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"delta with picture id, TL0PICIDX and TID", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x01}, false},
		{"key with picture id, TL0PICIDX and TID", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x00}, true},
		{"continuation packet", []byte{0x00, 0x00}, false},
		{"second partition", []byte{0x11, 0x00}, false},
		{"truncated", []byte{0x90, 0x80}, false},
		{"empty", nil, false},
	}
	for _, c := range cases {
		if got := IsVP8Keyframe(c.payload); got != c.want {
			t.Errorf("%s: IsVP8Keyframe = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestH264Keyframe(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"IDR", []byte{0x65, 0x88}, true},
		{"non-IDR slice", []byte{0x41, 0x9a}, false},
		{"STAP-A with SPS", []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"STAP-A without SPS", []byte{0x18, 0x00, 0x02, 0x06, 0x05}, false},
		{"FU-A start of IDR", []byte{0x7c, 0x85, 0x00}, true},
		{"FU-A middle of IDR", []byte{0x7c, 0x05, 0x00}, false},
		{"STAP-A truncated", []byte{0x18, 0x00}, false},
	}
	for _, c := range cases {
		if got := IsH264Keyframe(c.payload); got != c.want {
			t.Errorf("%s: IsH264Keyframe = %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzKeyframe(f *testing.F) {
	f.Add([]byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x00})
	f.Add([]byte{0x18, 0x00, 0x02, 0x67, 0x42})
	f.Fuzz(func(t *testing.T, b []byte) {
		IsVP8Keyframe(b)
		IsH264Keyframe(b)
	})
}
