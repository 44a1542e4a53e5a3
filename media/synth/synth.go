// Package synth makes stand-in media frames that are cheap to produce and carry a stamp (a sequence number and
// the time they were made), so a receiver can measure loss and latency without decoding anything.
package synth

import (
	"encoding/binary"
	"time"
)

// stampMagic marks a stamped frame.
const stampMagic = 0x53465553 // "SFUS"

// StampSize is the bytes a stamp takes.
const StampSize = 16

// Stamp is what a synthetic frame carries.
type Stamp struct {
	Seq  uint32
	Sent time.Time
}

func putStamp(b []byte, s Stamp) {
	binary.BigEndian.PutUint32(b[0:], stampMagic)
	binary.BigEndian.PutUint32(b[4:], s.Seq)
	binary.BigEndian.PutUint64(b[8:], uint64(s.Sent.UnixNano()))
}

// vp8HeaderSize is the VP8 frame tag plus, for key frames, the start code and dimensions (RFC 6386 9.1).
const vp8HeaderSize = 10

// VP8Frame makes a VP8 frame of size bytes (at least vp8HeaderSize+StampSize) whose frame tag marks it a key or
// inter frame, so that keyframe detection on its RTP packets behaves as with a real encoder. The picture is not
// decodable.
func VP8Frame(buf []byte, size int, key bool, width, height int, s Stamp) []byte {
	if size < vp8HeaderSize+StampSize {
		size = vp8HeaderSize + StampSize
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	b := buf[:size]
	// Frame tag: bit 0 is P (0 = key frame), bits 1-3 version, bit 4 show_frame, bits 5-23 first partition size.
	tag := uint32(1<<4) | uint32(size-vp8HeaderSize)<<5
	if !key {
		tag |= 1
	}
	b[0], b[1], b[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	b[3], b[4], b[5] = 0x9d, 0x01, 0x2a
	binary.LittleEndian.PutUint16(b[6:], uint16(width))
	binary.LittleEndian.PutUint16(b[8:], uint16(height))
	putStamp(b[vp8HeaderSize:], s)
	for i := vp8HeaderSize + StampSize; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// OpusFrame makes a 20 ms Opus packet (CELT-only, fullband, one frame) of size bytes carrying the stamp.
func OpusFrame(buf []byte, size int, s Stamp) []byte {
	if size < 1+StampSize {
		size = 1 + StampSize
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	b := buf[:size]
	b[0] = 0xf8 // TOC: config 31 (CELT FB 20 ms), mono, code 0
	putStamp(b[1:], s)
	for i := 1 + StampSize; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// FindStamp finds the stamp in a frame made here, or in the first RTP payload of one (whose VP8 payload
// descriptor precedes the frame). It reports false when there is none.
func FindStamp(b []byte) (Stamp, bool) {
	limit := len(b) - StampSize
	if limit > 32 {
		limit = 32
	}
	for i := 0; i <= limit; i++ {
		if binary.BigEndian.Uint32(b[i:]) == stampMagic {
			return Stamp{Seq: binary.BigEndian.Uint32(b[i+4:]),
				Sent: time.Unix(0, int64(binary.BigEndian.Uint64(b[i+8:])))}, true
		}
	}
	return Stamp{}, false
}
