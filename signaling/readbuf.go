package signaling

import (
	"errors"
	"io"
	"slices"
)

// preJoinBuffer is the most message buffer a socket keeps before it joins: a join message (a token) fits. A
// larger message is read into a buffer that is dropped afterwards; a joined socket keeps the largest it has
// needed (up to the message limit), so that only sockets that joined hold big buffers.
const preJoinBuffer = 4 << 10

// readMessage reads one message from r into buf (reusing its capacity, growing it as needed) and returns it,
// with the message's full size. A message over limit is cut to limit+1 bytes and the rest discarded: size tells
// the caller it was too large.
func readMessage(r io.Reader, buf []byte, limit int) (msg []byte, size int64, err error) {
	buf = buf[:0]
	for len(buf) <= limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 512), limit+1-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, int64(len(buf)), nil
		}
		if err != nil {
			return buf, int64(len(buf)), err
		}
	}
	rest, err := io.Copy(io.Discard, r)
	return buf, int64(len(buf)) + rest, err
}
