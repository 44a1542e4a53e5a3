package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ReadWAV reads a 16-bit PCM WAV file and returns its samples mixed down to mono, and its rate.
func ReadWAV(r io.Reader) (pcm []int16, rate int, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("wav header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF WAVE file")
	}
	channels := 0
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, fmt.Errorf("wav chunk: %w", err)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 || size > 1<<10 {
				return nil, 0, fmt.Errorf("wav fmt chunk of %d bytes", size)
			}
			f := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, f); err != nil {
				return nil, 0, fmt.Errorf("wav fmt: %w", err)
			}
			if format, bits := binary.LittleEndian.Uint16(f[0:]), binary.LittleEndian.Uint16(f[14:]); format != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("wav format %d with %d bits: only 16-bit PCM is read", format, bits)
			}
			channels = int(binary.LittleEndian.Uint16(f[2:]))
			rate = int(binary.LittleEndian.Uint32(f[4:]))
		case "data":
			if channels < 1 || rate < 1 {
				return nil, 0, errors.New("wav data before its format")
			}
			// Writers streaming to a pipe put a placeholder size here: read to the end, whatever it says.
			b, err := io.ReadAll(io.LimitReader(r, min(size, 1<<30)))
			if err != nil {
				return nil, 0, fmt.Errorf("wav data: %w", err)
			}
			frames := len(b) / 2 / channels
			pcm = make([]int16, frames)
			for i := range pcm {
				sum := 0
				for c := 0; c < channels; c++ {
					sum += int(int16(binary.LittleEndian.Uint16(b[(i*channels+c)*2:])))
				}
				pcm[i] = int16(sum / channels)
			}
			return pcm, rate, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, 0, fmt.Errorf("wav chunk %q: %w", ch[0:4], err)
			}
		}
	}
}

// WriteWAV writes mono 16-bit PCM as a WAV file.
func WriteWAV(w io.Writer, pcm []int16, rate int) error {
	b := make([]byte, 44+2*len(pcm))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	_, err := w.Write(b)
	return err
}
