package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyPrefix holds the leader keys, one prefix per service.
const KeyPrefix = "/bmaas/v1/leader/"

// Sentinel errors; match them with errors.Is.
var (
	// ErrNoLeader means no replica of the service currently leads.
	ErrNoLeader = errors.New("no leader")
	// ErrInvalidConfig means the election Config is incomplete or malformed.
	ErrInvalidConfig = errors.New("invalid election config")
	// errLost means leadership was lost before lead could start.
	errLost = errors.New("leadership lost")
)

// DefaultTTL is the lease TTL when Config.TTL is zero.
const DefaultTTL = 5 * time.Second

// Config identifies a candidate.
type Config struct {
	// Service names the election, e.g. "scheduler".
	Service string
	// ID identifies this candidate, e.g. host:port; Leader returns it.
	ID string
	// TTL of the candidate's lease, rounded up to whole seconds (default 5s):
	// how long a crashed leader keeps leadership.
	TTL time.Duration
}

// Validate checks the Config.
func (c Config) Validate() error {
	if err := checkService(c.Service); err != nil {
		return err
	}
	if c.ID == "" {
		return fmt.Errorf("%w: id is required", ErrInvalidConfig)
	}
	if c.TTL < 0 {
		return fmt.Errorf("%w: ttl %s is negative", ErrInvalidConfig, c.TTL)
	}
	return nil
}

func checkService(service string) error {
	if service == "" || strings.ContainsAny(service, "/\x00") {
		return fmt.Errorf("%w: service %q must be non-empty and contain no '/'", ErrInvalidConfig, service)
	}
	return nil
}

// ttlSeconds is the lease TTL in whole seconds, at least 1.
func (c Config) ttlSeconds() int {
	ttl := c.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	return max(1, int(math.Ceil(ttl.Seconds())))
}

// Prefix is the election's key prefix, with its trailing slash.
func Prefix(service string) string {
	return KeyPrefix + service + "/"
}

// Key is the key a candidate campaigns under: its lease ID, in hex, after
// the election's prefix and one more slash (etcd's concurrency.Election
// adds "/<lease>" to the prefix, which ends in one already).
func Key(service string, lease clientv3.LeaseID) string {
	return Prefix(service) + "/" + strconv.FormatInt(int64(lease), 16)
}

// Run campaigns for leadership of cfg.Service until ctx is done. Each time it
// is elected it calls lead with a context cancelled when leadership is lost
// (or ctx is done) and the term, the leader key's create revision; when lead
// returns, Run resigns and campaigns again. lead must return promptly once
// its context is cancelled. Run returns nil when ctx is done, and an error
// only for an invalid Config.
func Run(ctx context.Context, cli *clientv3.Client, cfg Config, logger *slog.Logger, lead func(ctx context.Context, term int64)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cli == nil || lead == nil {
		return fmt.Errorf("%w: etcd client and lead function are required", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &candidate{cli: cli, cfg: cfg, logger: logger.With("service", cfg.Service, "id", cfg.ID), lead: lead}
	retry := newBackoff(50*time.Millisecond, time.Duration(cfg.ttlSeconds())*time.Second)
	for ctx.Err() == nil {
		led, err := c.term(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil && !errors.Is(err, errLost) {
			c.logger.Warn("election", "err", err)
		}
		if led {
			retry.reset()
			continue
		}
		if !retry.wait(ctx) {
			break
		}
	}
	return nil
}

// Leader returns the current leader's ID and term, or ErrNoLeader.
func Leader(ctx context.Context, cli *clientv3.Client, service string) (id string, term int64, err error) {
	if err := checkService(service); err != nil {
		return "", 0, err
	}
	resp, err := cli.Get(ctx, Prefix(service), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", 0, fmt.Errorf("get leader of %s: %w", service, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, fmt.Errorf("%w: %s", ErrNoLeader, service)
	}
	kv := resp.Kvs[0]
	return string(kv.Value), kv.CreateRevision, nil
}

// Fence is the comparison that holds while the leader key of term (the
// term lead was given) exists: a leader adds it to its writes, so none of
// them lands once another replica leads.
func Fence(ctx context.Context, cli *clientv3.Client, service string, term int64) (clientv3.Cmp, error) {
	if err := checkService(service); err != nil {
		return clientv3.Cmp{}, err
	}
	resp, err := cli.Get(ctx, Prefix(service), clientv3.WithPrefix())
	if err != nil {
		return clientv3.Cmp{}, fmt.Errorf("read leader keys of %s: %w", service, err)
	}
	for _, kv := range resp.Kvs {
		if kv.CreateRevision == term {
			return clientv3.Compare(clientv3.CreateRevision(string(kv.Key)), "=", term), nil
		}
	}
	return clientv3.Cmp{}, fmt.Errorf("%w: the leader key of %s's term %d is gone", errLost, service, term)
}

// backoff is a capped exponential delay between failed campaigns.
type backoff struct {
	minDelay, maxDelay, next time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{minDelay: minDelay, maxDelay: maxDelay, next: minDelay}
}

func (b *backoff) reset() { b.next = b.minDelay }

// wait waits for the next delay and reports whether ctx is still live.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, b.maxDelay)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
