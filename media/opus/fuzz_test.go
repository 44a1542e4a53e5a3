package opus

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/audio"
)

// maxPacketSamples is the longest an Opus packet can decode to: 120 ms at 48 kHz.
const maxPacketSamples = 5760

// decodeLimit is far longer than any packet takes (well under a millisecond each, even instrumented for
// fuzzing); a decode still running then is stuck, and would stall the track's pipeline for good.
const decodeLimit = 5 * time.Second

// FuzzDecode: a publisher can send any bytes as an Opus payload, and the server decodes them when a processor
// is on. Whatever the bytes, Decode must return, never panic, never hang (the track's pipeline would be stuck
// on it) and never report more samples than the buffer holds. Each input is decoded by a fresh decoder (so a
// crasher reproduces on its own), then again, and then a valid packet follows, so that state a hostile packet
// left behind is exercised too.
func FuzzDecode(f *testing.F) {
	good := realPackets(f)
	for _, p := range good {
		f.Add(p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Add([]byte{0xff})
	// Every configuration (32) and stereo flag with each frame-count code (0: one frame, 1: two equal, 2: two
	// sized, 3: a count byte follows): the TOC alone, and followed by random bytes.
	for config := range 32 {
		for _, stereo := range []byte{0, 1} {
			for code := range byte(4) {
				toc := byte(config)<<3 | stereo<<2 | code
				f.Add([]byte{toc})
				body := random(40)
				if code == 3 {
					// Count byte: v (VBR) and p (padding) flags over frame counts 1..48, and beyond the limit.
					for _, c := range []byte{0x01, 0x02, 0x30, 0x31, 0x3f, 0x82, 0x43, 0xc3} {
						f.Add(append([]byte{toc, c}, body...))
					}
					continue
				}
				if code == 2 {
					f.Add(append([]byte{toc, 252, 255}, body...)) // a two-byte first-frame length, too long
					f.Add(append([]byte{toc, 10}, body...))
				}
				f.Add(append([]byte{toc}, body...))
			}
		}
	}
	f.Add(random(1275))
	f.Add(append([]byte{0xfc}, random(1274)...)) // CELT FB 20 ms, one frame of the largest size
	f.Add(append([]byte{0x7b, 0x03}, random(1273)...))

	var valid []byte
	if len(good) > 0 {
		valid = good[len(good)/2]
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, maxPacketSamples)
		// A hang is a crash too: panic where the fuzzer sees it, with every goroutine's stack to show where.
		stuck := time.AfterFunc(decodeLimit, func() {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			panic(fmt.Sprintf("Decode of %d bytes %x has not returned after %v\n%s", len(payload), payload, decodeLimit, buf))
		})
		defer stuck.Stop()
		for _, p := range [][]byte{payload, payload, valid} {
			if p == nil {
				continue
			}
			n, err := d.Decode(p, pcm)
			if n < 0 || n > len(pcm) {
				t.Fatalf("Decode of %d bytes reported %d samples into a buffer of %d (err %v)", len(p), n, len(pcm), err)
			}
			if err != nil && n != 0 {
				t.Fatalf("Decode failed (%v) yet reported %d samples", err, n)
			}
		}
	})
}

// realPackets encodes a second of a sine sweep and another of noise with libopus, as a publisher would: real
// SILK, hybrid and CELT packets for the corpus. A build without cgo has none.
func realPackets(f *testing.F) [][]byte {
	if !EncoderAvailable {
		return nil
	}
	var out [1275]byte
	var packets [][]byte
	rng := rand.New(rand.NewPCG(3, 4))
	const frame = 2 * audio.FrameSamples
	for _, kind := range []string{"sine", "noise"} {
		enc, err := NewEncoder()
		if err != nil {
			f.Fatal(err)
		}
		pcm := make([]int16, frame)
		for i := range 50 {
			for j := range pcm {
				t := float64(i*frame+j) / audio.SampleRate
				if kind == "sine" {
					pcm[j] = int16(8000 * math.Sin(2*math.Pi*(200+400*t)*t))
				} else {
					pcm[j] = int16(rng.NormFloat64() * 3000)
				}
			}
			n, err := enc.Encode(pcm, out[:])
			if err != nil {
				f.Fatal(err)
			}
			if i%10 == 5 { // a few from each: the corpus wants variety, not a second of the same
				packets = append(packets, append([]byte(nil), out[:n]...))
			}
		}
	}
	return packets
}
