// Command bmaas is the one bmaas binary: the platform's servers (`bmaas up`,
// `bmaas serve`) and its command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bmaas/bmaas/internal/cli"
)

// exitBound is how long after SIGINT or SIGTERM a command may take to
// end (a server drains within 5 s) before the process exits regardless.
const exitBound = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// A second signal now ends the process at once.
		stop()
		time.Sleep(exitBound)
		fmt.Fprintf(os.Stderr, "Error: still running %s after the signal; exiting\n", exitBound)
		os.Exit(1)
	}()
	err := cli.Root().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
