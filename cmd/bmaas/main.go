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
// end before the process exits regardless; a server sets its own: its
// shutdown bound (--shutdown.timeout, 4.5 s, longer while a task with a
// long SIGTERM grace runs) and a margin.
const exitBound = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	bound := cli.NewExitBound(exitBound)
	go func() {
		<-ctx.Done()
		// A second signal now ends the process at once.
		stop()
		d := bound.Now()
		time.Sleep(d)
		fmt.Fprintf(os.Stderr, "Error: still running %s after the signal; exiting\n", d)
		os.Exit(1)
	}()
	err := cli.Root().ExecuteContext(cli.WithExitBound(ctx, bound))
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
