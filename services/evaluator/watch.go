package evaluator

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/chunkstream"
)

// The evaluator's side of watching deployments: it tells the monitor
// which version a record names, checks alert rules against the platform,
// runs the retrain action and follows its chain (job, version,
// evaluation, decision, rollout).

// deployment reads a deployment through the gateway.
func (e *Evaluator) deployment(ctx context.Context, name string) (*gatewayv1.Deployment, error) {
	dc, _, err := e.gateway()
	if err != nil {
		return nil, err
	}
	resp, err := dc.GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return resp.GetDeployment(), nil
}

// readyReplicas is a deployment's ready replicas (the monitor's record).
func (e *Evaluator) readyReplicas(ctx context.Context, name string) (int32, error) {
	d, err := e.deployment(ctx, name)
	return d.GetStatus().GetReadyReplicas(), err
}

// PlatformSeries reads a platform series for an alert rule of project:
// job_failures (the project's jobs that failed over the last monitoring
// window), queued_jobs (the project's jobs waiting for a place) and
// gpu_idle (the cluster's GPUs a task holds memory on while under 5%
// busy).
func (e *Evaluator) PlatformSeries(ctx context.Context, series, project string) (float64, error) {
	switch series {
	case "job_failures", "queued_jobs":
		state, since := schedulerv1.JobState_JOB_STATE_FAILED, e.now().Add(-e.cfg.MonitorWindow)
		if series == "queued_jobs" {
			state = schedulerv1.JobState_JOB_STATE_QUEUED
		}
		sc, err := e.scheduler()
		if err != nil {
			return 0, err
		}
		n, token := 0, ""
		for {
			resp, err := sc.ListJobs(ctx, &schedulerv1.ListJobsRequest{Project: project, State: state, PageSize: 1000, PageToken: token})
			if err != nil {
				return 0, err
			}
			for _, j := range resp.GetJobs() {
				if series == "queued_jobs" || !j.GetUpdateTime().AsTime().Before(since) {
					n++
				}
			}
			if token = resp.GetNextPageToken(); token == "" {
				return float64(n), nil
			}
		}
	case "gpu_idle":
		nodes, err := e.listNodes(ctx)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, node := range nodes {
			for _, g := range node.GetGpus() {
				if g.GetAllocatedMemoryBytes() > 0 && g.GetUtilizationPercent() < 5 {
					n++
				}
			}
		}
		return float64(n), nil
	}
	return 0, fmt.Errorf("no platform series %q", series)
}

// listNodes reads every node from the scheduler.
func (e *Evaluator) listNodes(ctx context.Context) ([]*schedulerv1.Node, error) {
	sc, err := e.scheduler()
	if err != nil {
		return nil, err
	}
	var out []*schedulerv1.Node
	token := ""
	for {
		resp, err := sc.ListNodes(ctx, &schedulerv1.ListNodesRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetNodes()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// modelVersion reads model@ref from the registry.
func (e *Evaluator) modelVersion(ctx context.Context, model, ref string) (*registryv1.ModelVersion, error) {
	reg, err := e.registry()
	if err != nil {
		return nil, err
	}
	resp, err := reg.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: ref})
	if err != nil {
		return nil, err
	}
	return resp.GetVersion(), nil
}

// DeployedVersion is the monitor's lookup: version of the model that
// deployment serves.
func (e *Evaluator) DeployedVersion(ctx context.Context, deployment string, version int64) (*registryv1.ModelVersion, error) {
	d, err := e.deployment(ctx, deployment)
	if err != nil {
		return nil, err
	}
	model, _, _ := strings.Cut(d.GetModel(), "@")
	return e.modelVersion(ctx, model, strconv.FormatInt(version, 10))
}

// servedVersion is the version a deployment serves now (its status, or
// its reference resolved).
func (e *Evaluator) servedVersion(ctx context.Context, d *gatewayv1.Deployment) (*registryv1.ModelVersion, error) {
	model, ref, _ := strings.Cut(d.GetModel(), "@")
	if v := d.GetStatus().GetVersion(); v > 0 {
		ref = strconv.FormatInt(v, 10)
	}
	return e.modelVersion(ctx, model, ref)
}

// CheckRule checks a new rule against the platform: its deployment exists
// and, for a retrain action, the version it serves came from a training
// job that can run again.
func (e *Evaluator) CheckRule(ctx context.Context, r *evaluatorv1.AlertRule) error {
	d, err := e.deployment(ctx, r.GetDeployment())
	if err != nil {
		if apierr.Code(err) == codes.NotFound {
			return apierr.Invalid("rule.deployment", "no deployment %q", r.GetDeployment())
		}
		return err
	}
	if r.GetAction() == nil {
		return nil
	}
	v, err := e.servedVersion(ctx, d)
	if err != nil {
		return fmt.Errorf("version of deployment %s: %w", d.GetName(), err)
	}
	if v.GetLineage().GetJobId() == "" {
		return apierr.Invalid("rule.action", "version %d of model %s has no training job to run again (it was uploaded, not trained here)", v.GetVersion(), v.GetModel())
	}
	if _, err := parseDatasetRef(r.GetAction().GetDataset()); err != nil {
		return err
	}
	return nil
}

type retrainDataset struct {
	name    string
	version int64
}

// parseDatasetRef reads name or name@version ("" is none: the job's own).
func parseDatasetRef(s string) (*retrainDataset, error) {
	if s == "" {
		return nil, nil
	}
	name, ver, found := strings.Cut(s, "@")
	ref := &retrainDataset{name: name}
	if found && ver != "latest" {
		n, err := strconv.ParseInt(ver, 10, 64)
		if err != nil || n <= 0 {
			return nil, apierr.Invalid("rule.action.dataset", "%q: the version must be a positive number or latest", s)
		}
		ref.version = n
	}
	if name == "" {
		return nil, apierr.Invalid("rule.action.dataset", "%q names no dataset", s)
	}
	return ref, nil
}

// UploadDataset stores data as a new version of dataset name.
func (e *Evaluator) UploadDataset(ctx context.Context, name, filename string, data []byte) (int64, error) {
	reg, err := e.registry()
	if err != nil {
		return 0, err
	}
	resp, err := chunkstream.UploadDataset(ctx, reg, &registryv1.UploadDatasetHeader{Name: name, Filename: filename,
		Description: "made of logged requests and their feedback"}, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return resp.GetVersion().GetVersion(), nil
}

// Retrain is the retrain action: the job that trained the version the
// deployment serves runs again, on the action's dataset.
func (e *Evaluator) Retrain(ctx context.Context, r *evaluatorv1.AlertRule, _ *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, error) {
	d, err := e.deployment(ctx, r.GetDeployment())
	if err != nil {
		return nil, err
	}
	v, err := e.servedVersion(ctx, d)
	if err != nil {
		return nil, err
	}
	sc, err := e.scheduler()
	if err != nil {
		return nil, err
	}
	jr, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: v.GetLineage().GetJobId()})
	if err != nil {
		return nil, fmt.Errorf("job %s of version %d: %w", v.GetLineage().GetJobId(), v.GetVersion(), err)
	}
	spec := proto.Clone(jr.GetJob().GetSpec()).(*schedulerv1.JobSpec)
	ds, err := parseDatasetRef(r.GetAction().GetDataset())
	if err != nil {
		return nil, err
	}
	var links []*evaluatorv1.AlertLink
	if w := r.GetAction().GetPayloadWindow(); w != nil && e.exportPayloads != nil {
		name := r.GetDeployment() + "-feedback"
		if ds != nil {
			name = ds.name
		}
		now := e.now()
		res, err := e.exportPayloads(ctx, &evaluatorv1.CreateDatasetFromPayloadsRequest{Deployment: r.GetDeployment(), Dataset: name,
			Since: timestamppb.New(now.Add(-w.AsDuration())), Until: timestamppb.New(now)})
		if err != nil {
			return nil, fmt.Errorf("dataset of the payloads: %w", err)
		}
		ds = &retrainDataset{name: res.GetDataset(), version: res.GetVersion()}
		links = append(links, &evaluatorv1.AlertLink{Kind: "dataset", Ref: fmt.Sprintf("%s@%d", res.GetDataset(), res.GetVersion()),
			Time: timestamppb.New(now), Message: fmt.Sprintf("%d rows with feedback of %d logged requests over %s", res.GetLabelledRows(), res.GetRequests(), w.AsDuration())})
	}
	switch rt := spec.GetRuntime().(type) {
	case *schedulerv1.JobSpec_Builtin:
		rt.Builtin.ResumeFromJob = ""
		if ds != nil {
			rt.Builtin.Dataset, rt.Builtin.DatasetVersion = ds.name, ds.version
		}
	case *schedulerv1.JobSpec_Process:
		if ds != nil {
			rt.Process.Dataset, rt.Process.DatasetVersion = ds.name, ds.version
		}
	default:
		return nil, fmt.Errorf("job %s is no training job", jr.GetJob().GetId())
	}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels["bmaas.alert-rule"] = r.GetName()
	spec.Name = r.GetName() + "-retrain"
	sub, err := sc.SubmitJob(ctx, &schedulerv1.SubmitJobRequest{Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("submit the retraining job: %w", err)
	}
	on := "its own dataset"
	if ds != nil {
		on = "dataset " + ds.name
		if ds.version > 0 {
			on += "@" + strconv.FormatInt(ds.version, 10)
		}
	}
	return append(links, &evaluatorv1.AlertLink{Kind: "job", Ref: sub.GetJob().GetId(), Time: timestamppb.New(e.now()),
		Message: fmt.Sprintf("retraining model %s (job %s of version %d again) on %s", v.GetModel(), jr.GetJob().GetId(), v.GetVersion(), on)}), nil
}

// FollowChain extends an alert's chain from its job: the version the job
// made, that version's evaluation, the promotion decision, and the
// deployment's rollout to it. It is complete when the job failed, the
// version was not promoted, or the deployment serves it.
func (e *Evaluator) FollowChain(ctx context.Context, a *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, bool) {
	var jobID string
	for _, l := range a.GetLinks() {
		if l.GetKind() == "job" {
			jobID = l.GetRef()
		}
	}
	sc, err := e.scheduler()
	if err != nil {
		return nil, false
	}
	jr, err := sc.GetJob(ctx, &schedulerv1.GetJobRequest{Id: jobID})
	if err != nil {
		return nil, false
	}
	job, now := jr.GetJob(), timestamppb.New(e.now())
	switch job.GetState() {
	case schedulerv1.JobState_JOB_STATE_FAILED, schedulerv1.JobState_JOB_STATE_CANCELLED:
		return []*evaluatorv1.AlertLink{{Kind: "error", Ref: jobID, Time: now, Message: "the retraining job ended " + job.GetState().String() + ": " + job.GetReason()}}, true
	case schedulerv1.JobState_JOB_STATE_SUCCEEDED:
	default:
		return nil, false
	}
	model, n := job.GetSpec().GetModel(), job.GetModelVersion()
	if n == 0 {
		return nil, false
	}
	ref := fmt.Sprintf("%s@%d", model, n)
	links := []*evaluatorv1.AlertLink{{Kind: "version", Ref: ref, Time: now, Message: "the retraining job made version " + strconv.FormatInt(n, 10)}}
	evs, err := e.ListEvaluations(ctx, &evaluatorv1.ListEvaluationsRequest{Model: model, Version: n})
	if err == nil {
		for _, ev := range evs.GetEvaluations() {
			if ev.GetState() == evaluatorv1.EvaluationState_EVALUATION_STATE_SUCCEEDED {
				links = append(links, &evaluatorv1.AlertLink{Kind: "evaluation", Ref: ev.GetId(), Time: now, Message: "evaluated on " + ev.GetDataset()})
			}
		}
	}
	ds, err := e.ListDecisions(ctx, &evaluatorv1.ListDecisionsRequest{Model: model})
	if err != nil {
		return links, false
	}
	for _, d := range ds.GetDecisions() {
		if d.GetVersion() != n {
			continue
		}
		verdict := "not promoted"
		if d.GetPromoted() {
			verdict = "promoted to " + d.GetTargetAlias()
		}
		links = append(links, &evaluatorv1.AlertLink{Kind: "decision", Ref: d.GetId(), Time: now, Message: verdict + ": " + strings.Join(d.GetReasons(), "; ")})
		if !d.GetPromoted() {
			return links, true
		}
		dep, err := e.deployment(ctx, a.GetDeployment())
		if err == nil && dep.GetStatus().GetVersion() == n && dep.GetStatus().GetReadyReplicas() > 0 {
			links = append(links, &evaluatorv1.AlertLink{Kind: "rollout", Ref: a.GetDeployment(), Time: now,
				Message: fmt.Sprintf("deployment %s serves version %d", a.GetDeployment(), n)})
			return links, true
		}
		return links, false
	}
	return links, false
}
