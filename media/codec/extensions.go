package codec

// PlayoutDelayURI names the RTP header extension that bounds a receiver's playout delay (the SFU puts it on video
// keyframes so that receivers keep their jitter buffers short).
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
