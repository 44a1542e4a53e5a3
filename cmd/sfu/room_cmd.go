package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// roomCmdUsage lists what `sfu room` does.
const roomCmdUsage = `usage: sfu room list|get|participants|kick|mute|unmute|end [-url http://127.0.0.1:7880] [-room R] [-identity I] [-track T] [-json]
  list          the rooms (of every node of the cluster)
  get           one room: participants, created, region, node, settings, metadata   (-room)
  participants  a room's participants and their tracks                                (-room)
  kick          remove a participant, banned until its token expires                 (-room -identity)
  mute, unmute  a participant's track (-track), or all its audio                     (-room -identity [-track])
  end           end a room for everyone                                               (-room)
The command signs a short-lived API token (sfu token -api) with SFU_SECRET or -secret, or uses -token.`

// roomCmd runs `sfu room`: the server API (API.md) from the shell, with readable output or, with -json, the
// API's answer as it is.
func roomCmd(args []string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New(roomCmdUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("sfu room "+verb, flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:7880", "the node's base URL (any node of a cluster)")
	room := fs.String("room", "", "the room")
	identity := fs.String("identity", "", "the participant's identity (kick, mute, unmute)")
	track := fs.String("track", "", "mute, unmute: one track by id (default: all the participant's audio)")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	tok := fs.String("token", "", "an API token to use (default: one signed with the secret, for -room if given)")
	secret := fs.String("secret", "", "token secret (env SFU_SECRET)")
	keys := fs.String("keys", "", "the server's keys as kid:secret,... (env SFU_KEYS); -kid picks one")
	kid := fs.String("kid", "", "sign with this key of -keys")
	audience := fs.String("token-audience", "", "the nodes' token audience (env SFU_TOKEN_AUDIENCE)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	type call struct {
		method, path string
		body         any
		needRoom     bool
		needIdentity bool
	}
	r := url.PathEscape(*room)
	p := "/api/v1/rooms/" + r + "/participants/" + url.PathEscape(*identity)
	calls := map[string]call{
		"list":         {"GET", "/api/v1/rooms", nil, false, false},
		"get":          {"GET", "/api/v1/rooms/" + r, nil, true, false},
		"participants": {"GET", "/api/v1/rooms/" + r + "/participants", nil, true, false},
		"kick":         {"DELETE", p, nil, true, true},
		"mute":         {"POST", p + "/mute", map[string]any{"track": *track, "muted": true}, true, true},
		"unmute":       {"POST", p + "/mute", map[string]any{"track": *track, "muted": false}, true, true},
		"end":          {"DELETE", "/api/v1/rooms/" + r, nil, true, false},
	}
	c, ok := calls[verb]
	switch {
	case !ok:
		return fmt.Errorf("unknown command %q\n%s", verb, roomCmdUsage)
	case c.needRoom && *room == "":
		return fmt.Errorf("%s: -room is required", verb)
	case c.needIdentity && *identity == "":
		return fmt.Errorf("%s: -identity is required", verb)
	}
	if *tok == "" {
		targs := []string{"-api", "-ttl", "5m", "-room", *room, "-secret", *secret, "-keys", *keys, "-kid", *kid, "-token-audience", *audience}
		var minted bytes.Buffer
		if err := tokenCmd(targs, &minted); err != nil {
			return fmt.Errorf("sign an API token: %w", err)
		}
		*tok = strings.TrimSpace(minted.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	status, body, err := apiRequest(ctx, strings.TrimSuffix(*base, "/")+c.path, c.method, *tok, c.body)
	if err != nil {
		return err
	}
	if status >= 300 {
		var e struct{ Code, Message string }
		if json.Unmarshal(body, &e) != nil || e.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d: %.200s", c.method, c.path, status, body)
		}
		return fmt.Errorf("%s: HTTP %d %s: %s", verb, status, e.Code, e.Message)
	}
	if *asJSON {
		if len(body) == 0 {
			body = []byte("{}\n")
		}
		_, err := out.Write(body)
		return err
	}
	return printRoomAnswer(out, verb, *room, *identity, body)
}

// apiRequest makes one server API call and reads its answer.
func apiRequest(ctx context.Context, u, method, tok string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// printRoomAnswer prints an answer for people.
func printRoomAnswer(out io.Writer, verb, room, identity string, body []byte) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	switch verb {
	case "list":
		var ans struct {
			Rooms []struct {
				Name, Region, Node, Metadata string
				Participants                 int
				CreatedAt                    time.Time `json:"created_at"`
			}
			Unreachable []string
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return err
		}
		fmt.Fprintln(tw, "ROOM\tPARTICIPANTS\tCREATED\tREGION\tNODE")
		for _, r := range ans.Rooms {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Name, r.Participants, r.CreatedAt.Local().Format(time.DateTime), r.Region, r.Node)
		}
		if len(ans.Unreachable) > 0 {
			fmt.Fprintf(tw, "(not answering: %s)\n", strings.Join(ans.Unreachable, ", "))
		}
	case "get":
		var ans map[string]any
		if err := json.Unmarshal(body, &ans); err != nil {
			return err
		}
		for _, k := range []string{"name", "participants", "created_at", "region", "node", "regions", "empty_timeout", "metadata", "settings"} {
			v, ok := ans[k]
			if !ok {
				continue
			}
			switch v.(type) {
			case map[string]any, []any:
				b, _ := json.Marshal(v)
				v = string(b)
			}
			fmt.Fprintf(tw, "%s:\t%v\n", k, v)
		}
	case "participants":
		var ans struct {
			Participants []struct {
				Identity, Name            string
				Publish, Subscribe, Admin bool
				JoinedAt                  time.Time `json:"joined_at"`
				Tracks                    []struct {
					ID, Kind, Source string
					Muted            bool
				}
			}
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return err
		}
		fmt.Fprintln(tw, "IDENTITY\tNAME\tRIGHTS\tJOINED\tTRACKS")
		for _, p := range ans.Participants {
			var rights []string
			for _, r := range []struct {
				on   bool
				name string
			}{{p.Publish, "publish"}, {p.Subscribe, "subscribe"}, {p.Admin, "admin"}} {
				if r.on {
					rights = append(rights, r.name)
				}
			}
			var tracks []string
			for _, t := range p.Tracks {
				s := t.Kind + ":" + t.ID
				if t.Muted {
					s += " (muted)"
				}
				tracks = append(tracks, s)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Identity, p.Name, strings.Join(rights, ","), p.JoinedAt.Local().Format(time.DateTime),
				strings.Join(tracks, " "))
		}
	case "kick":
		fmt.Fprintf(tw, "removed %s from %s\n", identity, room)
	case "mute", "unmute":
		fmt.Fprintf(tw, "%sd %s in %s\n", verb, identity, room)
	case "end":
		fmt.Fprintf(tw, "ended %s\n", room)
	}
	return tw.Flush()
}

// runRoom is main's entry for `sfu room`.
func runRoom(args []string) {
	if err := roomCmd(args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sfu room:", err)
		os.Exit(1)
	}
}
