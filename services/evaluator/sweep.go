package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// sweepBudget is how many versions one sweep evaluates at most; the rest
// wait for the next sweep.
const sweepBudget = 16

// sweepHorizon is how old a version the sweep still evaluates: the
// retention of the event stream (BMAAS_EVENTS, pkg/events' default). An
// older version's version.ready event could not be delivered either, so
// evaluating it is not what its event would have caused; the horizon also
// keeps a first sweep from evaluating, and deciding promotions on, the
// versions of long ago.
const sweepHorizon = 7 * 24 * time.Hour

// Values of an auto-evaluation key.
const (
	markRunning = "running"
	markDone    = "done"
)

// autoMark is the value (JSON) of /bmaas/v1/auto-evaluations/<model>/<version>.
type autoMark struct {
	State string    `json:"state"`
	Time  time.Time `json:"time"`
}

func autoKey(model string, version int64) string {
	return store.Key("auto-evaluations", iam.NameKey(model), itoa(version))
}
func autoPrefix(model string) string { return store.Key("auto-evaluations", iam.NameKey(model)) + "/" }

// errClaimed: another call is evaluating the version now.
var errClaimed = errors.New("automatic evaluation claimed by another call")

// autoEligible reports whether a version is evaluated automatically: a
// version that a training job produced, NATIVE (evaluated in process) or
// of another format with a signature naming its input columns (evaluated
// through its serving runtime). The event path and the sweep both ask it.
func autoEligible(v *registryv1.ModelVersion) bool {
	if v.GetLineage().GetJobId() == "" {
		return false
	}
	ins := v.GetSignature().GetInputs()
	return v.GetFormat() == registryv1.ModelFormat_MODEL_FORMAT_NATIVE || (len(ins) == 1 && len(ins[0].GetColumns()) > 0)
}

// sweepLoop sweeps at once and every AutoSweep until ctx is done (the
// leadership ends).
func (e *Evaluator) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.AutoSweep)
	defer t.Stop()
	for {
		if _, err := e.SweepAuto(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("automatic evaluation sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepAuto finds READY versions whose automatic evaluations and
// promotion decision are not done (their version.ready event was lost, or
// its handling failed for good) and does them, at most sweepBudget per
// call. A version younger than one AutoSweep is left to its event, and
// one older than sweepHorizon is left alone. It reports how many versions
// it evaluated.
func (e *Evaluator) SweepAuto(ctx context.Context) (int, error) {
	reg, err := e.registry()
	if err != nil {
		return 0, err
	}
	now := e.now()
	from, until := now.Add(-sweepHorizon), now.Add(-e.cfg.AutoSweep)
	tried, evaluated := 0, 0
	req := &registryv1.ListModelsRequest{PageSize: store.MaxPageSize}
	for {
		resp, err := reg.ListModels(ctx, req)
		if err != nil {
			return evaluated, fmt.Errorf("list models: %w", err)
		}
		for _, m := range resp.Models {
			if m.VersionCount == 0 {
				continue
			}
			todo, err := e.unevaluated(ctx, reg, m.Name, from, until)
			if err != nil {
				if ctx.Err() != nil {
					return evaluated, err
				}
				e.log.Warn("automatic evaluation sweep", "model", m.Name, "err", err) // deleted meanwhile, or unreadable: the other models go on
				continue
			}
			for _, v := range todo {
				if tried == sweepBudget {
					return evaluated, nil
				}
				tried++
				ran, err := e.autoOnce(ctx, v.Model, v.Version, v.Lineage.JobId)
				switch {
				case err != nil && ctx.Err() != nil:
					return evaluated, err
				case err != nil:
					e.log.Warn("automatic evaluation", "model", v.Model, "version", v.Version, "err", err)
				case ran:
					evaluated++
					e.log.Info("version evaluated by the sweep: its event was lost or failed", "model", v.Model, "version", v.Version)
				}
			}
		}
		if resp.NextPageToken == "" {
			return evaluated, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// unevaluated lists the model's READY, eligible versions created between
// from and until that have no auto-evaluation key (neither done nor
// claimed), oldest first.
func (e *Evaluator) unevaluated(ctx context.Context, reg registryv1.RegistryServiceClient, model string, from, until time.Time) ([]*registryv1.ModelVersion, error) {
	keys, err := e.st.Keys(ctx, autoPrefix(model))
	if err != nil {
		return nil, err
	}
	marked := make(map[string]bool, len(keys))
	for _, k := range keys {
		marked[strings.TrimPrefix(k, autoPrefix(model))] = true
	}
	var out []*registryv1.ModelVersion
	req := &registryv1.ListModelVersionsRequest{Model: model, PageSize: store.MaxPageSize}
	for {
		resp, err := reg.ListModelVersions(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", model, err)
		}
		for _, v := range resp.Versions {
			at := v.GetCreateTime().AsTime()
			if v.Status == registryv1.VersionStatus_VERSION_STATUS_READY && autoEligible(v) && !marked[itoa(v.Version)] &&
				!at.Before(from) && !at.After(until) {
				out = append(out, v)
			}
		}
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// autoOnce runs the automatic evaluations and the promotion decision of a
// version unless they are done or another call (an event on another
// replica, the sweep) is doing them; ran reports that this call did them.
// The version's auto-evaluation key is the claim: created only if absent,
// under a lease that lapses when the claimer dies, and made "done" (no
// lease) on success or deleted on failure, so a later try does the work.
func (e *Evaluator) autoOnce(ctx context.Context, model string, version int64, jobID string) (ran bool, err error) {
	release, done, err := e.claimAuto(ctx, model, version)
	if done || errors.Is(err, errClaimed) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = e.autoEvaluate(ctx, model, version, jobID)
	release(err == nil)
	return err == nil, err
}

// claimAuto takes the version's auto-evaluation key; release(ok) ends the
// claim, marking the version done when ok. done reports a version done
// before, errClaimed a key that another call holds.
func (e *Evaluator) claimAuto(ctx context.Context, model string, version int64) (release func(ok bool), done bool, err error) {
	key := autoKey(model, version)
	ttl := max(1, int64(math.Ceil(e.cfg.LeaderTTL.Seconds())))
	lease, err := e.cli.Grant(ctx, ttl)
	if err != nil {
		return nil, false, fmt.Errorf("claim %s: %w", key, err)
	}
	revoke := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := e.cli.Revoke(rctx, lease.ID); err != nil {
			e.log.Warn("revoke auto-evaluation claim", "key", key, "err", err)
		}
	}
	running, err := json.Marshal(autoMark{State: markRunning, Time: e.now()})
	if err != nil {
		return nil, false, err
	}
	tr, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(running), clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		revoke()
		return nil, false, fmt.Errorf("claim %s: %w", key, err)
	}
	if !tr.Succeeded {
		revoke()
		var m autoMark
		if kvs := tr.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			if err := json.Unmarshal(kvs[0].Value, &m); err != nil {
				return nil, false, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if m.State == markDone {
			return nil, true, nil
		}
		return nil, false, errClaimed
	}
	kctx, stop := context.WithCancel(ctx)
	alive, err := e.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		stop()
		revoke()
		return nil, false, fmt.Errorf("keep claim %s: %w", key, err)
	}
	go func() {
		for range alive {
		}
	}()
	return func(ok bool) {
		stop()
		if ok {
			e.markDone(ctx, key)
		}
		revoke() // deletes the claim unless markDone detached it
	}, false, nil
}

// markDone replaces a claim with the done mark, which has no lease.
func (e *Evaluator) markDone(ctx context.Context, key string) {
	done, err := json.Marshal(autoMark{State: markDone, Time: e.now()})
	if err == nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, err = e.cli.Put(wctx, key, string(done))
	}
	if err != nil {
		e.log.Warn("mark automatic evaluation done", "key", key, "err", err)
	}
}
