// Package codec holds small helpers that look inside RTP payloads without decoding them.
package codec

import "strings"

// KeyframeFunc reports whether an RTP payload starts or carries a keyframe.
type KeyframeFunc func(payload []byte) bool

// KeyframeDetector returns the detector for a codec MIME type such as "video/VP8", or nil when the codec has no
// keyframes (audio) or is unknown.
func KeyframeDetector(mimeType string) KeyframeFunc {
	switch strings.ToLower(mimeType) {
	case "video/vp8":
		return IsVP8Keyframe
	case "video/h264":
		return IsH264Keyframe
	}
	return nil
}

// IsVP8Keyframe reports whether payload is the first packet of a VP8 key frame (RFC 7741 section 4).
func IsVP8Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	desc := payload[0]
	// S (start of partition) must be set and PID (partition index) zero.
	if desc&0x10 == 0 || desc&0x07 != 0 {
		return false
	}
	i := 1
	if desc&0x80 != 0 { // X: extended control bits follow
		if len(payload) < 2 {
			return false
		}
		x := payload[1]
		i = 2
		if x&0x80 != 0 { // I: picture id
			if len(payload) <= i {
				return false
			}
			if payload[i]&0x80 != 0 { // M: 15-bit picture id
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	if len(payload) <= i {
		return false
	}
	// VP8 payload header: the P bit (bit 0 of the first byte) is 0 on a key frame.
	return payload[i]&0x01 == 0
}

// IsH264Keyframe reports whether payload carries an IDR slice or a sequence parameter set (RFC 6184).
func IsH264Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	switch nal := payload[0] & 0x1f; nal {
	case 5, 7: // IDR slice, SPS
		return true
	case 24: // STAP-A: walk the aggregated units
		for i := 1; i+2 < len(payload); {
			size := int(payload[i])<<8 | int(payload[i+1])
			i += 2
			if i >= len(payload) {
				return false
			}
			if t := payload[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: the start fragment names the unit's type
		if len(payload) < 2 {
			return false
		}
		return payload[1]&0x80 != 0 && payload[1]&0x1f == 5
	}
	return false
}
