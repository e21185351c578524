package election

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// candidate is one replica taking part in an election.
type candidate struct {
	cli    *clientv3.Client
	cfg    Config
	logger *slog.Logger
	lead   func(ctx context.Context, term int64)
}

// term runs one session: campaign, lead while leadership lasts, resign. It
// reports whether this candidate led.
func (c *candidate) term(ctx context.Context) (led bool, err error) {
	sess, err := concurrency.NewSession(c.cli, c.sessionOptions(ctx)...)
	if err != nil {
		return false, fmt.Errorf("start session: %w", err)
	}
	defer c.close(sess)

	// Stop campaigning if the lease lapses while waiting: Campaign itself
	// does not notice.
	campaignCtx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	go func() {
		select {
		case <-sess.Done():
			stopCampaign()
		case <-campaignCtx.Done():
		}
	}()
	el := concurrency.NewElection(sess, Prefix(c.cfg.Service))
	if err := el.Campaign(campaignCtx, c.cfg.ID); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("campaign: %w", err)
	}
	stopCampaign()

	key, term := el.Key(), el.Rev()
	// Confirm the key survived the wait, and watch it from here on.
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("check leader key: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != term {
		return false, errLost
	}
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := c.cli.Watch(clientv3.WithRequireLeader(leadCtx), key, clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		defer cancel()
		c.watchLeadership(leadCtx, sess, watch)
	}()

	c.logger.Info("elected leader", "term", term)
	c.lead(leadCtx, term)
	if ctx.Err() == nil && leadCtx.Err() != nil {
		c.logger.Warn("leadership lost", "term", term)
	} else {
		c.logger.Info("leadership ended", "term", term)
	}
	cancel()
	c.resign(el)
	return true, nil
}

// watchLeadership returns when leadership is lost (lease gone, key deleted,
// watch broken) or ctx is done.
func (c *candidate) watchLeadership(ctx context.Context, sess *concurrency.Session, watch clientv3.WatchChan) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			return
		case wr, ok := <-watch:
			if !ok || wr.Err() != nil {
				return
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return
				}
			}
		}
	}
}

// resign gives up leadership so a standby takes over at once, even when the
// parent context is done.
func (c *candidate) resign(el *concurrency.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	if err := el.Resign(ctx); err != nil {
		c.logger.Debug("resign", "err", err)
	}
}

// close ends the session, revoking its lease and so deleting any key held.
func (c *candidate) close(sess *concurrency.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	sess.Orphan()
	if _, err := c.cli.Revoke(ctx, sess.Lease()); err != nil {
		c.logger.Debug("revoke lease", "err", err)
	}
}

func (c *candidate) timeout() time.Duration {
	return time.Duration(c.cfg.ttlSeconds()) * time.Second
}

// sessionOptions builds the session for one term.
func (c *candidate) sessionOptions(ctx context.Context) []concurrency.SessionOption {
	return []concurrency.SessionOption{concurrency.WithTTL(c.cfg.ttlSeconds()), concurrency.WithContext(ctx)}
}
