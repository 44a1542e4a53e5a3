// Command sfu runs one SFU node: `sfu` serves, `sfu token` mints a join token.
//
// A packet's way through the code: main → node (this package) starts sfu.New (media sockets) and
// signaling.NewServer (HTTP and /ws). A client's join reaches signaling/session.go, which calls sfu.SFU.Join;
// its publish offer creates, for each track, an sfu.Receiver (sfu/receiver.go) whose read loop hands every
// packet to the sfu.DownTrack of each subscriber (sfu/downtrack.go), which rewrites it and writes it to the
// subscriber's peer connection.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edge-sfu/sfu/signaling"
)

func main() {
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.shutdown(shutdownCtx)
}

// tokenCmd prints a join token signed with the server's secret.
func tokenCmd(args []string, out *os.File) error {
	fs := flag.NewFlagSet("sfu token", flag.ContinueOnError)
	secret := fs.String("secret", "", "token secret (env SFU_SECRET)")
	room := fs.String("room", "", "room the token admits to (required)")
	identity := fs.String("identity", "", "participant identity (required)")
	name := fs.String("name", "", "display name (default: the identity)")
	publish := fs.Bool("publish", false, "may publish")
	subscribe := fs.Bool("subscribe", false, "may subscribe")
	admin := fs.Bool("admin", false, "room administrator")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("SFU_SECRET")
	}
	if *secret == "" {
		return errors.New("no secret: set SFU_SECRET or -secret (a dev-mode server has a random secret; use its /token page)")
	}
	if *room == "" || *identity == "" {
		return errors.New("-room and -identity are required")
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	tok, err := signaling.MintToken([]byte(*secret), signaling.Claims{Room: *room, Identity: *identity,
		Name: strings.TrimSpace(*name), Publish: *publish, Subscribe: *subscribe, Admin: *admin}, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
