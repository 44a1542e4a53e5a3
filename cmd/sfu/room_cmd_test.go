package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// runRoomCmd runs `sfu room` against n with the test secret and returns what it printed.
func runRoomCmd(t *testing.T, n *node, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := roomCmd(append(args[:1:1], append([]string{"-url", n.baseURL(), "-secret", testSecret}, args[1:]...)...), &out)
	return out.String(), err
}

// TestRoomCmd: `sfu room` lists the rooms and a room's participants of a live meeting in readable form and as
// JSON, describes a room, mutes a participant (whose audio stops reaching the others), removes one (who gets bye
// kicked) and ends the room (bye room_ended), signing its own API token with the secret; a wrong secret fails.
func TestRoomCmd(t *testing.T) {
	clearSFUEnv(t)
	n, ctx, _, cs := meeting(t, "standup", "alice", "bob")
	alice, bob := cs[0], cs[1]
	carol := joinClient(t, ctx, n, "standup", "carol")

	out, err := runRoomCmd(t, n, "list")
	if err != nil || !strings.Contains(out, "standup") || !strings.Contains(out, "3") || !strings.Contains(out, "PARTICIPANTS") {
		t.Fatalf("room list: %v\n%s", err, out)
	}
	t.Logf("sfu room list:\n%s", out)
	out, err = runRoomCmd(t, n, "list", "-json")
	var rooms apiRooms
	if err != nil || json.Unmarshal([]byte(out), &rooms) != nil || len(rooms.Rooms) != 1 || rooms.Rooms[0].Participants != 3 {
		t.Fatalf("room list -json: %v\n%s", err, out)
	}
	out, err = runRoomCmd(t, n, "get", "-room", "standup")
	if err != nil || !strings.Contains(out, "standup") || !strings.Contains(out, "participants") {
		t.Fatalf("room get: %v\n%s", err, out)
	}
	t.Logf("sfu room get:\n%s", out)
	out, err = runRoomCmd(t, n, "participants", "-room", "standup")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, "carol") || !strings.Contains(out, "IDENTITY") {
		t.Fatalf("room participants: %v\n%s", err, out)
	}
	t.Logf("sfu room participants:\n%s", out)

	if out, err = runRoomCmd(t, n, "mute", "-room", "standup", "-identity", "alice"); err != nil {
		t.Fatalf("room mute: %v\n%s", err, out)
	}
	t.Logf("room mute: %s", out)
	assertStops(t, bob, alice.ID(), "audio", "alice's audio muted by sfu room mute")
	if out, err = runRoomCmd(t, n, "unmute", "-room", "standup", "-identity", "alice"); err != nil {
		t.Fatalf("room unmute: %v\n%s", err, out)
	}
	assertFlows(t, bob, alice.ID(), "audio", "alice's audio after sfu room unmute")

	if out, err = runRoomCmd(t, n, "kick", "-room", "standup", "-identity", "bob"); err != nil {
		t.Fatalf("room kick: %v\n%s", err, out)
	}
	waitBye(t, bob, "kicked")
	if out, err = runRoomCmd(t, n, "kick", "-room", "standup", "-identity", "bob"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("kick bob again: %v\n%s", err, out)
	}
	var bad bytes.Buffer
	if err := roomCmd([]string{"list", "-url", n.baseURL(), "-secret", "wrong"}, &bad); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("a wrong secret: %v", err)
	}
	if out, err = runRoomCmd(t, n, "end", "-room", "standup"); err != nil {
		t.Fatalf("room end: %v\n%s", err, out)
	}
	waitBye(t, carol, "room_ended")
	if _, err := runRoomCmd(t, n, "kick", "-room", "standup"); err == nil {
		t.Error("kick without -identity: want an error")
	}
}
