// Command sfu runs one SFU node: `sfu` serves, `sfu token` mints a join token, `sfu audit verify` checks the
// audit log's hash chain and `sfu audit head` prints its last hash, to be kept off the host.
//
// A packet's way through the code: main → node (this package) starts sfu.New (media sockets, sfu/transport) and
// signaling.NewServer (HTTP and /ws). A client's join reaches signaling/session.go, which calls sfu.SFU.Join;
// its publish offer creates, for each track, a forward.Receiver (sfu/forward/receiver.go) whose read loop hands
// every packet to the forward.DownTrack of each subscriber (sfu/forward/downtrack.go), which rewrites it and
// writes it to the subscriber's peer connection. ARCHITECTURE.md has the whole map.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edge-sfu/sfu/signaling"
)

// apiIdentity is the identity of the API tokens sfu token -api mints, as the audit log shows their calls.
const apiIdentity = "api"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		if err := auditCmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sfu audit:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "room" {
		runRoom(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := tokenCmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sfu token:", err)
			os.Exit(2)
		}
		return
	}
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sfu:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sfu:", err)
		os.Exit(1)
	}
}

// shutdownTimeout is how long a node stopping (SIGTERM) has to drain: deploy/sfu.service's TimeoutStopSec is
// above it.
const shutdownTimeout = 10 * time.Second

// serve runs a node until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, cfg config) error {
	n, err := startNode(cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-n.serveErr:
		_ = n.shutdown(context.Background())
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.shutdown(shutdownCtx)
}

// tokenCmd prints a join token signed with the server's secret, or with one of its keys (-kid); with -api, a token
// of the server API (API.md), node-wide or for the room of -room.
func tokenCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sfu token", flag.ContinueOnError)
	secret := fs.String("secret", "", "token secret (env SFU_SECRET)")
	keys := fs.String("keys", "", "the server's keys as kid:secret,... (env SFU_KEYS); -kid picks one")
	kid := fs.String("kid", "", "sign with this key of -keys and name it in the token's header (key rotation)")
	room := fs.String("room", "", "room the token admits to (required; with -api, the one room it may act on)")
	identity := fs.String("identity", "", "participant identity (required; with -api, default "+apiIdentity+")")
	api := fs.Bool("api", false, "a token of the server API (API.md), not a participant's: for every room of the nodes, or for -room")
	name := fs.String("name", "", "display name (default: the identity)")
	publish := fs.Bool("publish", false, "may publish")
	subscribe := fs.Bool("subscribe", false, "may subscribe")
	publishData := fs.Bool("publish-data", false, "may publish data channels")
	admin := fs.Bool("admin", false, "room administrator: may mute, kick, lock and end the room")
	ttl := fs.Duration("ttl", time.Hour, "the token's lifetime, at most -max-token-ttl (the nodes' maximum, "+signaling.DefaultMaxTokenTTL.String()+" unless they set another); while its holder is in a room its node sends it fresh tokens of this lifetime, so a meeting outlasts it and a reconnect after it expired joins with the latest")
	audience := fs.String("token-audience", "", "the audience (aud) of the nodes the token is for (env SFU_TOKEN_AUDIENCE; default "+signaling.DefaultAudience+")")
	maxTTL := fs.Duration("max-token-ttl", 0, "the nodes' -max-token-ttl (env SFU_MAX_TOKEN_TTL; default "+signaling.DefaultMaxTokenTTL.String()+")")
	var usage bytes.Buffer // -h prints it to out; a parse error, to stderr
	fs.SetOutput(&usage)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu token -room R -identity I [-name N] [-publish] [-subscribe] [-publish-data] [-admin] [-ttl 1h] [-kid K]\n"+
			"       sfu token -api [-room R]\n\nPrints a token signed with the nodes' secret (SFU_SECRET) or key -kid.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, werr := io.Copy(out, &usage)
			return werr
		}
		_, _ = os.Stderr.Write(usage.Bytes())
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("SFU_SECRET")
	}
	if *keys == "" {
		*keys = os.Getenv("SFU_KEYS")
	}
	if *audience == "" {
		*audience = os.Getenv("SFU_TOKEN_AUDIENCE")
	}
	if *maxTTL == 0 && os.Getenv("SFU_MAX_TOKEN_TTL") != "" {
		d, err := time.ParseDuration(os.Getenv("SFU_MAX_TOKEN_TTL"))
		if err != nil {
			return fmt.Errorf("SFU_MAX_TOKEN_TTL: %w", err)
		}
		*maxTTL = d
	}
	if *maxTTL <= 0 {
		*maxTTL = signaling.DefaultMaxTokenTTL
	}
	key := []byte(*secret)
	if *kid != "" {
		byID, err := signaling.ParseKeys(*keys)
		if err != nil {
			return fmt.Errorf("-keys: %w", err)
		}
		if key = byID[*kid]; key == nil {
			return fmt.Errorf("no key %q in -keys / SFU_KEYS", *kid)
		}
	}
	if len(key) == 0 {
		return errors.New("no secret: set SFU_SECRET or -secret, or -kid with SFU_KEYS (a dev-mode server has a random secret; use its /token page)")
	}
	if *api && *identity == "" {
		*identity = apiIdentity
	}
	if !*api && (*room == "" || *identity == "") {
		return errors.New("-room and -identity are required")
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	if *ttl > *maxTTL {
		return fmt.Errorf("-ttl %v is over -max-token-ttl %v: the nodes would refuse the token", *ttl, *maxTTL)
	}
	c := signaling.Claims{Room: *room, Identity: *identity,
		Name: strings.TrimSpace(*name), Publish: *publish, Subscribe: *subscribe, PublishData: *publishData, Admin: *admin, API: *api}
	if *audience != "" {
		c.Audience = jwt.ClaimStrings{*audience}
	}
	tok, err := signaling.MintTokenWithKey(*kid, key, c, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
