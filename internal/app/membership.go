package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bmaas/bmaas/pkg/membership"
)

// modMembership announces each service of this process under an etcd
// lease once it serves; on shutdown it leaves first, so peers stop sending
// work here before the server drains.
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

func (a *App) stopMembership(ctx context.Context) {
	for _, r := range a.members {
		_ = r.Leave(ctx)
	}
	if a.leave != nil {
		a.leave()
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
