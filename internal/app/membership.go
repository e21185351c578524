package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bmaas/bmaas/pkg/membership"
)

// modMembership announces each service of this process under an etcd
// lease once it serves; it is the last module to start, so the first to
// drain: health NOT_SERVING, membership left, then the drain delay, so
// peers stop sending work here before the servers stop.
const modMembership = "membership"

func (a *App) startMembership(ctx context.Context) error {
	// The registrations live as long as the process, not the start call.
	life := context.WithoutCancel(ctx)
	lctx, cancel := context.WithCancel(life)
	a.leave = cancel
	for _, t := range a.cfg.Targets {
		addr := a.advertiseAddr()
		m := membership.Member{ID: a.nodeName() + "-" + sanitize(addr), Service: t, Addr: addr,
			Meta: map[string]string{"http": a.Addrs().HTTP}}
		r, err := membership.Join(lctx, a.w.etcdCli, m, 5*time.Second, a.log)
		if err != nil {
			return fmt.Errorf("join %s: %w", t, err)
		}
		a.members = append(a.members, r)
	}
	return nil
}

// drainMembership turns the process's health (gRPC and /readyz)
// NOT_SERVING, leaves membership, and waits --shutdown.drain-delay (or
// ctx's end) for load balancers and peers' resolvers to notice.
func (a *App) drainMembership(ctx context.Context) {
	a.stopping.Store(true)
	a.setServing(false)
	for _, r := range a.members {
		if err := r.Leave(ctx); err != nil {
			a.log.Warn("leave membership", "service", r, "err", err)
		}
	}
	if a.leave != nil {
		a.leave()
	}
	if d := a.cfg.Shutdown.DrainDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ':' || c == '/' || c == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}
