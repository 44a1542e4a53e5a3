package codec

import "errors"

// VP8Descriptor is the parsed VP8 RTP payload descriptor (RFC 7741 section 4.2): what an SFU needs to switch
// layers and drop temporal layers, and where in the payload each field sits so that it can be rewritten.
type VP8Descriptor struct {
	Start      bool   // S=1 and PID=0: the first packet of a frame
	Keyframe   bool   // the frame is a key frame (valid when Start)
	PictureID  uint16 // valid when PicIDBytes > 0
	PicIDBytes int    // 0, 1 (7-bit) or 2 (15-bit)
	PicIDAt    int    // offset of the picture id
	TL0PICIDX  uint8  // valid when HasTL0
	HasTL0     bool
	TL0At      int
	TID        uint8 // temporal layer; valid when HasTID
	HasTID     bool
	LayerSync  bool // Y bit: this frame depends only on the base temporal layer
	Size       int  // descriptor length in bytes
}

// ErrShortVP8 is returned for a payload too short for its descriptor.
var ErrShortVP8 = errors.New("vp8 payload shorter than its descriptor")

// ParseVP8 reads the descriptor at the start of a VP8 RTP payload.
func ParseVP8(p []byte) (VP8Descriptor, error) {
	var d VP8Descriptor
	if len(p) < 1 {
		return d, ErrShortVP8
	}
	d.Start = p[0]&0x10 != 0 && p[0]&0x07 == 0
	i := 1
	if p[0]&0x80 != 0 { // X
		if len(p) < 2 {
			return d, ErrShortVP8
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I
			if len(p) <= i {
				return d, ErrShortVP8
			}
			d.PicIDAt = i
			if p[i]&0x80 != 0 {
				if len(p) <= i+1 {
					return d, ErrShortVP8
				}
				d.PictureID = uint16(p[i]&0x7f)<<8 | uint16(p[i+1])
				d.PicIDBytes = 2
				i += 2
			} else {
				d.PictureID = uint16(p[i])
				d.PicIDBytes = 1
				i++
			}
		}
		if x&0x40 != 0 { // L
			if len(p) <= i {
				return d, ErrShortVP8
			}
			d.TL0At, d.TL0PICIDX, d.HasTL0 = i, p[i], true
			i++
		}
		if x&0x30 != 0 { // T or K
			if len(p) <= i {
				return d, ErrShortVP8
			}
			if x&0x20 != 0 {
				d.TID, d.HasTID = p[i]>>6, true
				d.LayerSync = p[i]&0x20 != 0
			}
			i++
		}
	}
	d.Size = i
	if d.Start {
		if len(p) <= i {
			return d, ErrShortVP8
		}
		d.Keyframe = p[i]&0x01 == 0
	}
	return d, nil
}

// RewriteVP8 writes a new picture id and TL0PICIDX into a copy of a payload's descriptor, keeping each field's
// width (a 7-bit picture id wraps at 128, a 15-bit one at 32768). p must be a private copy.
func RewriteVP8(p []byte, d *VP8Descriptor, pictureID uint16, tl0 uint8) {
	switch d.PicIDBytes {
	case 1:
		p[d.PicIDAt] = byte(pictureID & 0x7f)
	case 2:
		p[d.PicIDAt] = 0x80 | byte(pictureID>>8&0x7f)
		p[d.PicIDAt+1] = byte(pictureID)
	}
	if d.HasTL0 {
		p[d.TL0At] = tl0
	}
}

// PictureIDMask is the range of a picture id of n bytes.
func PictureIDMask(n int) uint16 {
	if n == 1 {
		return 0x7f
	}
	return 0x7fff
}
