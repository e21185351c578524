//go:build integration

package election

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bmaas/bmaas/internal/testenv"
)

const waitFor = 10 * time.Second

// termStart is one call of lead.
type termStart struct {
	id   string
	term int64
	ctx  context.Context
}

// runner is a candidate running Run in the background.
type runner struct {
	id     string
	terms  chan termStart
	cancel context.CancelFunc
	done   chan error
}

// start runs a candidate whose lead reports each term and holds it until
// its context ends.
func start(t *testing.T, cli *clientv3.Client, service, id string) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{id: id, terms: make(chan termStart, 10), cancel: cancel, done: make(chan error, 1)}
	cfg := Config{Service: service, ID: id, TTL: time.Second}
	go func() {
		r.done <- Run(ctx, cli, cfg, slog.New(slog.DiscardHandler), func(ctx context.Context, term int64) {
			r.terms <- termStart{id: id, term: term, ctx: ctx}
			<-ctx.Done()
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return.
func (r *runner) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			require.NoError(t, err)
			close(r.done)
		}
	case <-time.After(waitFor):
		t.Fatalf("Run of %s did not return", r.id)
	}
}

// elected waits for the next term on any of the runners.
func elected(t *testing.T, rs ...*runner) termStart {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		for _, r := range rs {
			select {
			case ts := <-r.terms:
				return ts
			default:
			}
		}
		select {
		case <-timeout:
			t.Fatal("no leader elected")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func noTerm(t *testing.T, rs ...*runner) {
	t.Helper()
	for _, r := range rs {
		select {
		case ts := <-r.terms:
			t.Fatalf("%s unexpectedly leads term %d", ts.id, ts.term)
		default:
		}
	}
}

func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(waitFor):
		t.Fatal("lead context not cancelled")
	}
}

func TestFailover(t *testing.T) {
	t.Parallel()
	endpoints := testenv.Etcd(t)
	cliA, cliB := testenv.NewEtcdClient(t, endpoints), testenv.NewEtcdClient(t, endpoints)
	ctx := t.Context()

	_, _, err := Leader(ctx, cliA, "sched")
	require.ErrorIs(t, err, ErrNoLeader)

	a := start(t, cliA, "sched", "a")
	b := start(t, cliB, "sched", "b")
	first := elected(t, a, b)
	id, term, err := Leader(ctx, cliA, "sched")
	require.NoError(t, err)
	require.Equal(t, first.id, id)
	require.Equal(t, first.term, term)
	noTerm(t, a, b)

	leader, standby := a, b
	if first.id == "b" {
		leader, standby = b, a
	}
	leader.stop(t)
	waitDone(t, first.ctx)
	second := elected(t, standby)
	require.Equal(t, standby.id, second.id)
	require.Greater(t, second.term, first.term)
	id, term, err = Leader(ctx, cliA, "sched")
	require.NoError(t, err)
	require.Equal(t, standby.id, id)
	require.Equal(t, second.term, term)

	standby.stop(t)
	waitDone(t, second.ctx)
	_, _, err = Leader(ctx, cliA, "sched")
	require.ErrorIs(t, err, ErrNoLeader)
}

func TestLeaseLossCancelsLead(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx := t.Context()
	r := start(t, cli, "evaluator", "solo")
	first := elected(t, r)

	resp, err := cli.Get(ctx, Prefix("evaluator"), clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, Key("evaluator", clientv3.LeaseID(resp.Kvs[0].Lease)), string(resp.Kvs[0].Key))
	_, err = cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)

	waitDone(t, first.ctx)
	// Run campaigns again and wins a later term.
	second := elected(t, r)
	require.Greater(t, second.term, first.term)
}

func TestLeaderKeyDeletedCancelsLead(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	r := start(t, cli, "registry", "solo")
	first := elected(t, r)
	_, err := cli.Delete(t.Context(), Prefix("registry"), clientv3.WithPrefix())
	require.NoError(t, err)
	waitDone(t, first.ctx)
	require.Greater(t, elected(t, r).term, first.term)
}

func TestLeadReturnsCampaignsAgain(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var terms []int64
	err := Run(ctx, cli, Config{Service: "gw", ID: "x", TTL: time.Second}, nil, func(_ context.Context, term int64) {
		terms = append(terms, term)
		if len(terms) == 3 {
			cancel()
		}
	})
	require.NoError(t, err)
	require.Len(t, terms, 3)
	require.Less(t, terms[0], terms[1])
	require.Less(t, terms[1], terms[2])
	_, _, err = Leader(t.Context(), cli, "gw")
	require.ErrorIs(t, err, ErrNoLeader, "Run resigns on exit")
}

func TestServicesAreSeparate(t *testing.T) {
	t.Parallel()
	cli := testenv.EtcdClient(t)
	a := start(t, cli, "svc", "a")
	b := start(t, cli, "svc2", "b")
	elected(t, a)
	elected(t, b)
	id, _, err := Leader(t.Context(), cli, "svc")
	require.NoError(t, err)
	require.Equal(t, "a", id)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Service: "s", ID: "i"}, true},
		{"no service", Config{ID: "i"}, false},
		{"slash", Config{Service: "a/b", ID: "i"}, false},
		{"no id", Config{Service: "s"}, false},
		{"negative ttl", Config{Service: "s", ID: "i", TTL: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.ok {
			require.NoError(t, err, tt.name)
		} else {
			require.ErrorIs(t, err, ErrInvalidConfig, tt.name)
		}
	}
	require.Equal(t, 5, Config{}.ttlSeconds())
	require.Equal(t, 2, Config{TTL: 1500 * time.Millisecond}.ttlSeconds())
	require.Equal(t, 1, Config{TTL: time.Millisecond}.ttlSeconds())
	err := Run(t.Context(), nil, Config{}, nil, func(context.Context, int64) {})
	require.ErrorIs(t, err, ErrInvalidConfig)
}
