package signaling

import (
	"errors"
	"net"
)

// leaveReason is why a WebSocket participant left, for the SFU's observer (the webhooks): the reason its session
// was ended with ("left", "kicked", "shutdown"...), else "timeout" when the client went quiet past the read
// deadline, else "disconnected".
func leaveReason(ended string, readErr error) string {
	var ne net.Error
	switch {
	case ended != "":
		return ended
	case errors.As(readErr, &ne) && ne.Timeout():
		return "timeout"
	}
	return "disconnected"
}
