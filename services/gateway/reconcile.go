package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/runtimes"
	"github.com/bmaas/bmaas/pkg/store"
)

// Labels of replica jobs.
const (
	labelDeployment = "deployment"
	labelVersion    = "version"
)

// lead reconciles every deployment until ctx is done (leadership lost).
func (s *Service) lead(ctx context.Context) {
	s.log.Info("gateway leading")
	a := newAutoscaler(s)
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if err := s.reconcileAll(ctx, a); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile deployments", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Service) reconcileAll(ctx context.Context, a *autoscaler) error {
	items, _, err := store.List(ctx, s.st, deploymentKey(""), 10000, "",
		func() *gatewayv1.Deployment { return &gatewayv1.Deployment{} }, nil)
	if err != nil {
		return err
	}
	sch, err := s.scheduler()
	if err != nil {
		return err
	}
	jobs, failed, err := s.replicaJobs(ctx, sch)
	if err != nil {
		return err
	}
	rts, err := s.allRuntimes(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, it := range items {
		d := it.Msg
		seen[d.Name] = true
		if err := s.reconcile(ctx, sch, a, d, it.Rev, jobs[d.Name], failed[d.Name], rts); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile deployment", "deployment", d.Name, "err", err)
		}
	}
	for dep, js := range jobs {
		if !seen[dep] {
			s.cancel(ctx, sch, js, "deployment deleted")
			a.forget(dep)
		}
	}
	return nil
}

// replicaJobs lists the live replica jobs by deployment, and the failed
// ones.
func (s *Service) replicaJobs(ctx context.Context, sch schedulerv1.SchedulerServiceClient) (live, failed map[string][]*schedulerv1.Job, err error) {
	live, failed = map[string][]*schedulerv1.Job{}, map[string][]*schedulerv1.Job{}
	token := ""
	for {
		resp, err := sch.ListJobs(ctx, &schedulerv1.ListJobsRequest{PageSize: 500, PageToken: token, LabelSelector: labelDeployment})
		if err != nil {
			return nil, nil, err
		}
		for _, j := range resp.Jobs {
			// The label holds the deployment's bare name (a label value
			// has no '/'); the job is in the deployment's project.
			dep := iam.QualifiedName(j.GetSpec().GetProject(), j.GetSpec().GetLabels()[labelDeployment])
			switch j.State {
			case schedulerv1.JobState_JOB_STATE_QUEUED, schedulerv1.JobState_JOB_STATE_SCHEDULED, schedulerv1.JobState_JOB_STATE_RUNNING:
				live[dep] = append(live[dep], j)
			case schedulerv1.JobState_JOB_STATE_FAILED:
				failed[dep] = append(failed[dep], j)
			}
		}
		if token = resp.NextPageToken; token == "" {
			return live, failed, nil
		}
	}
}

// reconcile moves one deployment's replicas toward what it wants: the
// resolved version (surge first, then drain the old), the canary, and
// the autoscaler's count. rts are the runtimes to choose from: the
// runtime is picked per version, so an alias moved to a version of
// another format picks again. failed are its failed replica jobs: a
// version whose replicas fail is started again with back-off.
func (s *Service) reconcile(ctx context.Context, sch schedulerv1.SchedulerServiceClient, a *autoscaler, d *gatewayv1.Deployment, rev int64, jobs, failed []*schedulerv1.Job, rts []*gatewayv1.Runtime) error {
	st := proto.Clone(d.GetStatus()).(*gatewayv1.DeploymentStatus)
	if st == nil {
		st = &gatewayv1.DeploymentStatus{}
	}
	st.Message = ""
	if mv, err := s.resolveVersion(ctx, d.Model); err != nil {
		st.Message = err.Error()
	} else {
		if v := mv.GetVersion(); v != st.Version {
			if st.Version != 0 {
				st.PreviousVersion = st.Version
				s.log.Info("deployment rolls out", "deployment", d.Name, "from", st.Version, "to", v)
			}
			st.Version = v
		}
		if rt, err := chooseRuntime(rts, iam.ProjectOfName(d.Name), d.Runtime, runtimes.FormatName(mv.GetFormat()), versionName(mv)); err != nil {
			st.Message = err.Error()
		} else {
			st.Runtime = rt.Name
			st.ReplicaResources = s.cfg.replicaResources(withDefaults(d.Resources, rt.GetResources()), mv)
		}
	}
	bs, _ := s.router.backends(d.Name)
	readyBy := map[int64]int{}
	for _, b := range bs {
		readyBy[b.ep.Version]++
	}
	desired := a.desired(d, len(bs))
	wantBy := map[int64]int{st.Version: desired}
	if d.CanaryPercent > 0 && d.CanaryVersion > 0 && d.CanaryVersion != st.Version && desired > 0 {
		wantBy[d.CanaryVersion] = max(1, (desired*int(d.CanaryPercent)+50)/100)
	}
	byVersion := map[int64][]*schedulerv1.Job{}
	for _, j := range jobs {
		byVersion[j.GetSpec().GetServing().GetVersion()] = append(byVersion[j.GetSpec().GetServing().GetVersion()], j)
	}
	now := s.now()
	for v, want := range wantBy {
		have := byVersion[v]
		fails := recentFailures(failed, v, now)
		if readyBy[v] == 0 && st.Message == "" {
			st.Message = fails.message(now)
		}
		for i := len(have); i < want && !fails.holds(now); i++ {
			err := s.submit(ctx, sch, d, v, rts)
			var fe *apierr.FieldError
			if errors.As(err, &fe) || errors.Is(err, apierr.ErrNotFound) {
				st.Message = err.Error() // no runtime for this version: shown, not retried
				break
			}
			if err != nil {
				return err
			}
		}
		if len(have) > want {
			s.cancel(ctx, sch, have[want:], "scaled down")
		}
	}
	// Old versions drain once the wanted ones are ready (or none is wanted).
	wantReady := true
	for v, want := range wantBy {
		wantReady = wantReady && readyBy[v] >= want
	}
	for v, js := range byVersion {
		if _, ok := wantBy[v]; !ok && (wantReady || desired == 0) {
			s.cancel(ctx, sch, js, "rolled out")
		}
	}
	st.DesiredReplicas, st.ReadyReplicas = int32(desired), int32(len(bs))
	st.Replicas = replicas(jobs, bs)
	if msg := replicaMessage(st.Replicas); msg != "" && st.Message == "" {
		st.Message = msg
	}
	st.Concurrency, st.LastRequestTime = a.lastConcurrency(d.Name), a.lastRequest(d.Name)
	state := "READY"
	switch {
	case desired == 0 && len(bs) == 0:
		state = "IDLE"
	case len(byVersion) > len(wantBy):
		state = "ROLLING_OUT"
	case len(bs) == 0:
		state = "CREATING"
	case len(bs) != total(wantBy):
		state = "SCALING"
	}
	if proto.Equal(st, d.Status) && state == d.State {
		return nil
	}
	d.Status, d.State, d.Etag = st, state, ""
	_, err := s.st.Commit(ctx, []store.Cond{{Key: deploymentKey(d.Name), Rev: rev}}, store.Put(deploymentKey(d.Name), d))
	if store.IsStale(err) {
		return nil // changed meanwhile: the next round sees it
	}
	return err
}

// submit starts one replica of version v on the runtime chosen among rts
// for its format.
func (s *Service) submit(ctx context.Context, sch schedulerv1.SchedulerServiceClient, d *gatewayv1.Deployment, v int64, rts []*gatewayv1.Runtime) error {
	model, _, _ := ParseModelRef(d.Model)
	mv, err := s.resolveVersion(ctx, model+"@"+strconv.FormatInt(v, 10))
	if err != nil {
		return fmt.Errorf("replica of %s version %d: %w", model, v, err)
	}
	rt, err := chooseRuntime(rts, iam.ProjectOfName(d.Name), d.Runtime, runtimes.FormatName(mv.GetFormat()), versionName(mv))
	if err != nil {
		return err
	}
	project, bare := iam.SplitName(d.Name)
	spec := &schedulerv1.JobSpec{Name: "serve-" + bare, Model: model, MaxRestarts: 3, Project: project,
		Runtime:                 &schedulerv1.JobSpec_Serving{Serving: servingRuntime(d, v, rt)},
		Labels:                  map[string]string{labelDeployment: bare, labelVersion: strconv.FormatInt(v, 10)},
		Resources:               s.cfg.replicaResources(withDefaults(d.Resources, rt.GetResources()), mv),
		TerminationGraceSeconds: rt.GetTerminationGraceSeconds()}
	j, err := sch.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	if err != nil {
		return err
	}
	s.log.Info("replica submitted", "deployment", d.Name, "version", v, "job", j.GetJob().GetId())
	return nil
}

// servingRuntime is what a replica of version v runs: the runtime's
// name, its server (none for a built-in one) and the deployment's
// parameters.
func servingRuntime(d *gatewayv1.Deployment, v int64, rt *gatewayv1.Runtime) *schedulerv1.ServingRuntime {
	sr := &schedulerv1.ServingRuntime{Deployment: d.Name, Version: v, MaxBatchSize: d.MaxBatchSize,
		MaxQueueDelayMicros: d.MaxQueueDelayMicros, Runtime: rt.GetName()}
	if !rt.GetBuiltin() && rt.GetServer() != nil {
		sr.Server = proto.Clone(rt.GetServer()).(*schedulerv1.ProcessServer)
	}
	if len(d.Parameters) > 0 {
		sr.Parameters = maps.Clone(d.Parameters)
	}
	return sr
}

func (s *Service) cancel(ctx context.Context, sch schedulerv1.SchedulerServiceClient, jobs []*schedulerv1.Job, why string) {
	for _, j := range jobs {
		if _, err := sch.CancelJob(ctx, &schedulerv1.CancelJobRequest{Id: j.Id, Reason: why}); err != nil {
			s.log.Warn("cancel replica", "job", j.Id, "err", err)
			continue
		}
		s.log.Info("replica cancelled", "job", j.Id, "reason", why)
	}
}

func replicas(jobs []*schedulerv1.Job, bs []*backend) []*gatewayv1.Replica {
	out := make([]*gatewayv1.Replica, 0, len(jobs))
	for _, j := range jobs {
		r := &gatewayv1.Replica{Id: j.Id, Version: j.GetSpec().GetServing().GetVersion(), JobState: j.State.String(),
			Restarts: j.TaskRestarts}
		if len(j.Nodes) > 0 {
			r.Node = j.Nodes[0]
		}
		for _, b := range bs {
			if b.ep.Replica == j.Id {
				r.Endpoint, r.Ready = b.ep.Address, true
			}
		}
		if !r.Ready && j.State != schedulerv1.JobState_JOB_STATE_RUNNING {
			r.Reason = j.Reason // why it waits; a running one loads its model
		}
		out = append(out, r)
	}
	return out
}

func total(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
