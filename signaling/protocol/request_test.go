package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// documentedCodes are the error codes listed in PROTOCOL.md.
var documentedCodes = map[string]bool{
	CodeBadMessage: true, CodeTooLarge: true, CodeUnknownType: true, CodeNotJoined: true,
	CodeAlreadyJoined: true, CodeUnauthorized: true, CodeTokenExpired: true, CodeForbidden: true,
	CodeBadRequest: true, CodeBadSDP: true, CodeOutOfOrder: true, CodeInternal: true,
}

func TestDocumentedCodesMatchProtocol(t *testing.T) {
	want := []string{"bad_message", "too_large", "unknown_type", "not_joined", "already_joined", "unauthorized",
		"token_expired", "forbidden", "bad_request", "bad_sdp", "out_of_order", "internal"}
	if len(documentedCodes) != len(want) {
		t.Fatalf("%d codes, want %d", len(documentedCodes), len(want))
	}
	for _, c := range want {
		if !documentedCodes[c] {
			t.Errorf("code %q is not defined", c)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		code     string
		ref      string
	}{
		{"not json", `hello`, CodeBadMessage, ""},
		{"empty", ``, CodeBadMessage, ""},
		{"truncated", `{"type":"ping"`, CodeBadMessage, ""},
		{"array", `[{"type":"ping"}]`, CodeBadMessage, ""},
		{"string", `"ping"`, CodeBadMessage, ""},
		{"type not a string", `{"type":7}`, CodeBadMessage, ""},
		{"sdp not a string", `{"type":"offer","pc":"publish","sdp":{}}`, CodeBadMessage, ""},
		{"muted not a bool", `{"type":"mute","track":"t","muted":"yes"}`, CodeBadMessage, ""},
		{"id negative", `{"type":"ping","id":-1}`, CodeBadMessage, ""},
		{"id fractional", `{"type":"ping","id":1.5}`, CodeBadMessage, ""},
		{"id too big", `{"type":"ping","id":18446744073709551616}`, CodeBadMessage, ""},
		{"id huge exponent", `{"type":"ping","id":1e400}`, CodeBadMessage, ""},
		{"candidate not an object", `{"type":"candidate","pc":"publish","candidate":"candidate:1"}`, CodeBadMessage, ""},
		{"sdpMLineIndex out of range", `{"type":"candidate","pc":"publish","candidate":{"candidate":"c","sdpMLineIndex":70000}}`, CodeBadMessage, ""},
		{"deep nesting", `{"type":"ping","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, CodeBadMessage, ""},
		{"one byte over the limit", `{"type":"ping","pad":"` + strings.Repeat("x", MaxMessageSize-23) + `"}`, CodeTooLarge, ""},
		{"too large even if garbage", strings.Repeat("\xff", MaxMessageSize+1), CodeTooLarge, ""},
		{"no type", `{}`, CodeUnknownType, ""},
		{"empty type", `{"type":""}`, CodeUnknownType, ""},
		{"null type", `{"type":null}`, CodeUnknownType, ""},
		{"unknown type", `{"type":"subscribe"}`, CodeUnknownType, ""},
		{"server type", `{"type":"pong"}`, CodeUnknownType, ""},
		{"type in other case", `{"type":"PING"}`, CodeUnknownType, ""},
		{"join without token", `{"type":"join"}`, CodeUnauthorized, "join"},
		{"join empty token", `{"type":"join","token":""}`, CodeUnauthorized, "join"},
		{"offer without pc", `{"type":"offer","sdp":"v=0"}`, CodeBadRequest, "offer"},
		{"offer bogus pc", `{"type":"offer","pc":"bogus","sdp":"v=0"}`, CodeBadRequest, "offer"},
		{"offer without sdp", `{"type":"offer","pc":"publish"}`, CodeBadRequest, "offer"},
		{"offer for subscribe", `{"type":"offer","pc":"subscribe","sdp":"v=0"}`, CodeBadRequest, "offer"},
		{"answer for publish", `{"type":"answer","pc":"publish","sdp":"v=0"}`, CodeBadRequest, "answer"},
		{"answer without sdp", `{"type":"answer","pc":"subscribe"}`, CodeBadRequest, "answer"},
		{"candidate bogus pc", `{"type":"candidate","pc":"bogus","candidate":{"candidate":"c"}}`, CodeBadRequest, "candidate"},
		{"candidate without candidate", `{"type":"candidate","pc":"publish"}`, CodeBadRequest, "candidate"},
		{"candidate null", `{"type":"candidate","pc":"publish","candidate":null}`, CodeBadRequest, "candidate"},
		{"mute without track", `{"type":"mute","muted":true}`, CodeBadRequest, "mute"},
		{"mute without muted", `{"type":"mute","track":"t"}`, CodeBadRequest, "mute"},
		{"mute muted null", `{"type":"mute","track":"t","muted":null}`, CodeBadRequest, "mute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded with %+v, want %s", req, tt.code)
			}
			pe, ok := err.(*ProtocolError)
			if !ok {
				t.Fatalf("error %T %v is not a *ProtocolError", err, err)
			}
			if pe.Code != tt.code {
				t.Errorf("code %q (%v), want %q", pe.Code, pe.Message, tt.code)
			}
			if pe.Message == "" {
				t.Error("empty message")
			}
			if pe.Ref != tt.ref {
				t.Errorf("ref %q, want %q", pe.Ref, tt.ref)
			}
			if !reflect.DeepEqual(req, Request{}) {
				t.Errorf("a failed Decode returned %+v, want the zero Request", req)
			}
		})
	}
}

func TestDecodeValid(t *testing.T) {
	ptr := func(s string) *string { return &s }
	u16 := func(v uint16) *uint16 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	yes, no := true, false
	tests := []struct {
		name, in string
		want     Request
	}{
		{"join", `{"type":"join","token":"eyJ.x.y"}`, Request{Type: "join", Token: "eyJ.x.y"}},
		{"offer", `{"type":"offer","pc":"publish","sdp":"v=0\r\n"}`, Request{Type: "offer", PC: "publish", SDP: "v=0\r\n"}},
		{"answer", `{"type":"answer","pc":"subscribe","sdp":"v=0\r\n"}`, Request{Type: "answer", PC: "subscribe", SDP: "v=0\r\n"}},
		{"candidate publish",
			`{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
			Request{Type: "candidate", PC: "publish", Candidate: &webrtc.ICECandidateInit{
				Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", SDPMid: ptr("0"), SDPMLineIndex: u16(0)}}},
		{"candidate subscribe end of gathering", `{"type":"candidate","pc":"subscribe","candidate":{"candidate":""}}`,
			Request{Type: "candidate", PC: "subscribe", Candidate: &webrtc.ICECandidateInit{}}},
		{"mute", `{"type":"mute","track":"5b0c","muted":true}`, Request{Type: "mute", Track: "5b0c", Muted: &yes}},
		{"unmute", `{"type":"mute","track":"5b0c","muted":false}`, Request{Type: "mute", Track: "5b0c", Muted: &no}},
		{"ping", `{"type":"ping"}`, Request{Type: "ping"}},
		{"ping with id", `{"type":"ping","id":7}`, Request{Type: "ping", ID: u64(7)}},
		{"ping with id 0", `{"type":"ping","id":0}`, Request{Type: "ping", ID: u64(0)}},
		{"ping with max id", `{"type":"ping","id":18446744073709551615}`, Request{Type: "ping", ID: u64(1<<64 - 1)}},
		{"leave", `{"type":"leave"}`, Request{Type: "leave"}},
		{"unknown fields ignored", `{"type":"leave","foo":[1,{"a":null}],"bar":"baz"}`, Request{Type: "leave"}},
		{"whitespace", " \n\t{ \"type\" : \"ping\" }\r\n", Request{Type: "ping"}},
		{"exactly the limit", `{"type":"ping","pad":"` + strings.Repeat("x", MaxMessageSize-24) + `"}`, Request{Type: "ping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.in) > MaxMessageSize {
				t.Fatalf("test input is %d bytes, over the limit", len(tt.in))
			}
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s, want %s", dump(got), dump(tt.want))
			}
		})
	}
}

func dump(r Request) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// fuzzSeeds are added in code; testdata/fuzz/FuzzDecode holds more.
var fuzzSeeds = []string{
	`{"type":"join","token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x"}`,
	`{"type":"offer","pc":"publish","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}`,
	`{"type":"answer","pc":"subscribe","sdp":"v=0\r\n"}`,
	`{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}}`,
	`{"type":"mute","track":"t","muted":true}`,
	`{"type":"ping","id":7}`,
	`{"type":"leave"}`,
	`{"type":"ping","x":"<>&\u2028"}`,
	`{"type":"join","token":"\xff\xfe"}`,
	`{"type":`,
	`{"Type":"PING"}`,
	`{"type":"ping","id":1e400}`,
	`null`,
}

// FuzzDecode: Decode never panics, fails only with a documented *ProtocolError, and what it accepts survives a
// json.Marshal round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Decode(data)
		if err != nil {
			pe, ok := err.(*ProtocolError)
			if !ok {
				t.Fatalf("error %T %v is not a *ProtocolError", err, err)
			}
			if pe.Code == "" || !documentedCodes[pe.Code] {
				t.Fatalf("error code %q is not documented (%v)", pe.Code, err)
			}
			if pe.Message == "" {
				t.Fatalf("error %q without a message", pe.Code)
			}
			return
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		again, err := Decode(b)
		if len(b) > MaxMessageSize {
			// json.Marshal may grow a message near the limit (it escapes <, > and & as \u003c, and writes
			// invalid UTF-8 as the 3-byte U+FFFD), so the re-encoding may be refused as too large.
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code != CodeTooLarge {
				t.Fatalf("re-encoding of %d bytes: got %v, want too_large", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v (input %q)", b, err, data)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request:\n first %s\nsecond %s", dump(req), dump(again))
		}
	})
}

// TestDecodeLimitBoundary: a message of exactly MaxMessageSize bytes is accepted, one byte more is too_large.
func TestDecodeLimitBoundary(t *testing.T) {
	msg := func(size int) []byte {
		const head, tail = `{"type":"ping","pad":"`, `"}`
		return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	}
	if _, err := Decode(msg(MaxMessageSize)); err != nil {
		t.Errorf("%d bytes: %v", MaxMessageSize, err)
	}
	var pe *ProtocolError
	if _, err := Decode(msg(MaxMessageSize + 1)); !errors.As(err, &pe) || pe.Code != CodeTooLarge {
		t.Errorf("%d bytes: got %v, want too_large", MaxMessageSize+1, err)
	}
}
