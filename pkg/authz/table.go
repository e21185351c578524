package authz

import (
	"strings"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// rule is an entry without a refinement.
func rule(resource string, v Verb) Rule { return Rule{Permission: Permission{resource, v}} }

// svc prefixes the methods of one service.
func svc(name string, rules map[string]Rule) map[string]Rule {
	out := make(map[string]Rule, len(rules))
	for m, r := range rules {
		out["/"+name+"/"+m] = r
	}
	return out
}

// jobNeeds is a job's permission: exec when it runs a command.
func jobNeeds(req any) Permission {
	if r, ok := req.(*schedulerv1.SubmitJobRequest); ok && r.GetSpec().GetProcess() != nil {
		return Permission{"jobs", Exec}
	}
	return Permission{"jobs", Write}
}

// experimentNeeds is an experiment's: exec when its trials run a command.
func experimentNeeds(req any) Permission {
	if r, ok := req.(*evaluatorv1.CreateExperimentRequest); ok && r.GetExperiment().GetTemplate().GetProcess() != nil {
		return Permission{"experiments", Exec}
	}
	return Permission{"experiments", Write}
}

// runtimeNeeds is a runtime's change's permission: exec in its project,
// admin of the cluster for the default project's (which serve every
// project). The guard asks it of the request with its name qualified by
// the call's project.
func runtimeNeeds(req any) Permission {
	var name string
	switch r := req.(type) {
	case *gatewayv1.CreateRuntimeRequest:
		name = r.GetRuntime().GetName()
	case *gatewayv1.DeleteRuntimeRequest:
		name = r.GetName()
	}
	if p, _, ok := strings.Cut(name, "/"); ok && p != "default" {
		return Permission{"runtimes", Exec}
	}
	return Permission{"runtimes", Admin}
}

// methods is the table of every gRPC method of the API.
var methods = merge(
	svc("bmaas.registry.v1.RegistryService", map[string]Rule{
		"CreateModel": rule("models", Write), "GetModel": rule("models", Read), "ListModels": rule("models", Read),
		"UpdateModel": rule("models", Write), "DeleteModel": rule("models", Write),
		"CreateModelVersion": rule("models", Write), "ImportModelVersion": rule("models", Write),
		"GetModelVersion": rule("models", Read), "ListModelVersions": rule("models", Read),
		"UpdateModelVersion": rule("models", Write), "DownloadModelVersion": rule("models", Read),
		"DeleteModelVersion": rule("models", Write),
		"SetAlias":           rule("models", Write), "GetAlias": rule("models", Read), "DeleteAlias": rule("models", Write),
		"UploadDataset": rule("datasets", Write), "GetDataset": rule("datasets", Read), "ListDatasets": rule("datasets", Read),
		"GetDatasetVersion": rule("datasets", Read), "ListDatasetVersions": rule("datasets", Read),
		"DownloadDataset": rule("datasets", Read), "DeleteDataset": rule("datasets", Write),
		// A checkpoint is what the agent running a job saved: the cluster's
		// to write, the job's project's to read.
		"UploadCheckpoint": rule("nodes", Admin), "GetCheckpoint": rule("jobs", Read), "DownloadCheckpoint": rule("jobs", Read),
		// A code bundle is what a process job or runtime runs.
		"UploadBundle": rule("bundles", Exec), "DownloadBundle": rule("bundles", Read),
	}),
	svc("bmaas.scheduler.v1.SchedulerService", map[string]Rule{
		"SubmitJob": {Permission: Permission{"jobs", Write}, Refine: jobNeeds},
		"GetJob":    rule("jobs", Read), "ListJobs": rule("jobs", Read), "CancelJob": rule("jobs", Write),
		"WatchJob": rule("jobs", Read), "GetJobLogs": rule("jobs", Read), "ListJobMetrics": rule("jobs", Read),
		"ListNodes": rule("nodes", Read), "GetNode": rule("nodes", Read),
	}),
	svc("bmaas.evaluator.v1.EvaluatorService", map[string]Rule{
		"CreateEvaluation": rule("evaluations", Write), "GetEvaluation": rule("evaluations", Read),
		"ListEvaluations": rule("evaluations", Read),
		// A policy moves aliases, and so what deployments serve.
		"SetEvaluationPolicy": rule("policies", Exec), "GetEvaluationPolicy": rule("policies", Read),
		"ListDecisions":    rule("policies", Read),
		"CreateExperiment": {Permission: Permission{"experiments", Write}, Refine: experimentNeeds},
		"GetExperiment":    rule("experiments", Read), "ListExperiments": rule("experiments", Read),
		"PauseExperiment": rule("experiments", Write), "ResumeExperiment": rule("experiments", Write),
		"CancelExperiment": rule("experiments", Write), "ListTrials": rule("experiments", Read),
		"GetBestTrial": rule("experiments", Read),
	}),
	svc("bmaas.evaluator.v1.MonitorService", map[string]Rule{
		"SubmitFeedback": rule("deployments", Invoke), "CreateDatasetFromPayloads": rule("datasets", Write),
		"ListMonitorWindows": rule("deployments", Read), "ListNodeUsage": rule("nodes", Read),
		"CreateAlertRule": rule("alert-rules", Write), "GetAlertRule": rule("alert-rules", Read),
		"ListAlertRules": rule("alert-rules", Read), "DeleteAlertRule": rule("alert-rules", Write),
		"UpdateAlertRule": rule("alert-rules", Write),
		"ListAlerts":      rule("alert-rules", Read), "GetAlert": rule("alert-rules", Read),
	}),
	svc("bmaas.gateway.v1.DeploymentService", map[string]Rule{
		"CreateDeployment": rule("deployments", Write), "GetDeployment": rule("deployments", Read),
		"ListDeployments": rule("deployments", Read), "UpdateDeployment": rule("deployments", Write),
		"DeleteDeployment": rule("deployments", Write), "RollbackDeployment": rule("deployments", Write),
		// Payloads are what clients sent: as sensitive as the data itself.
		"ListPayloads": rule("payloads", Read),
	}),
	svc("bmaas.gateway.v1.RuntimeService", map[string]Rule{
		// A runtime is a command the nodes run: a project's admin may
		// make one for the project's deployments; the default project's
		// serve every project, and are the cluster's.
		"CreateRuntime": {Permission: Permission{"runtimes", Admin}, Refine: runtimeNeeds},
		"GetRuntime":    rule("runtimes", Read), "ListRuntimes": rule("runtimes", Read),
		"DeleteRuntime": {Permission: Permission{"runtimes", Admin}, Refine: runtimeNeeds},
	}),
	// Who may create, see or end which token or project, and read which
	// part of the trail, the IAM service decides per request: the table
	// only asks an identity.
	svc("bmaas.iam.v1.IAMService", map[string]Rule{
		"CreateProject": rule("projects", Admin), "DeleteProject": rule("projects", Admin), "UpdateProject": rule("projects", Admin),
		"GetProject": rule("projects", Read), "ListProjects": rule("projects", Read),
		"CreateToken": rule("tokens", Read), "GetToken": rule("tokens", Read), "ListTokens": rule("tokens", Read),
		"RevokeToken": rule("tokens", Read), "RotateToken": rule("tokens", Read), "WhoAmI": rule("self", Read),
		// Public (authz.Public): who signs in has no token yet.
		"GetAuthConfig": rule("self", Read), "Login": rule("self", Read),
	}),
	svc("bmaas.iam.v1.AuditService", map[string]Rule{"ListAuditRecords": rule("audit", Read)}),
	svc("bmaas.agent.v1.AgentService", map[string]Rule{"GetAgentStatus": rule("nodes", Read)}),
	svc("inference.GRPCInferenceService", map[string]Rule{
		"ServerLive": rule("inference", Read), "ServerReady": rule("inference", Read),
		"ModelReady": rule("inference", Read), "ServerMetadata": rule("inference", Read),
		"ModelMetadata": rule("inference", Read), "ModelInfer": rule("inference", Invoke),
		"RepositoryModelLoad": rule("inference", Admin), "RepositoryModelUnload": rule("inference", Admin),
	}),
)

// clusterScoped are the resources of no project: the cluster's own,
// and those whose handlers decide per request (projects, tokens, the
// audit trail, the caller itself).
var clusterScoped = map[string]bool{"nodes": true, "metrics": true, "events": true,
	"projects": true, "tokens": true, "audit": true, "self": true}

// projectAware are the resources that carry their project: a call on
// them is authorized in the project it names (its request's, else the
// caller's), and their handlers check the project of what they load.
// Every resource is cluster-scoped, project-aware or named
// (TestEveryResourceHasItsProject).
var projectAware = map[string]bool{"jobs": true, "experiments": true}

// named are the resources whose names say their project
// ("project/model", pkg/iam's QualifiedName): a call on them is
// authorized in the project of the name it gives (else the caller's),
// and their handlers keep each project's names apart.
var named = map[string]bool{"models": true, "datasets": true, "evaluations": true, "policies": true,
	"deployments": true, "payloads": true, "alert-rules": true, "inference": true, "runtimes": true,
	// Code bundles are content-addressed and shared: a call on one is
	// decided in the caller's project (an admin there uploads the code
	// of the project's process jobs).
	"bundles": true}

// Named says whether p's resource is named within its project.
func (p Permission) Named() bool { return named[p.Resource] }

// ProjectAware says whether p's resource carries its project.
func (p Permission) ProjectAware() bool { return projectAware[p.Resource] }

// Mutates says whether a call with p changes state (and so goes in the
// audit trail): every verb but read, inference itself excepted.
func (p Permission) Mutates() bool {
	return p.Verb != Read && !(p.Resource == "inference" && p.Verb == Invoke)
}

// ClusterScoped says whether p's resource belongs to no project.
func (p Permission) ClusterScoped() bool { return clusterScoped[p.Resource] }

func merge(ms ...map[string]Rule) map[string]Rule {
	out := map[string]Rule{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// routes is the table of the HTTP edge's hand-written routes (the
// generated /v1 routes call the gRPC methods above).
var routes = map[string]Permission{
	"GET /v2": {"inference", Read}, "GET /v2/health/live": {"inference", Read}, "GET /v2/health/ready": {"inference", Read},
	"GET /v2/models/{name}": {"inference", Read}, "GET /v2/models/{name}/ready": {"inference", Read},
	"POST /v2/models/{name}/infer":                    {"inference", Invoke},
	"GET /v2/models/{name}/versions/{version}":        {"inference", Read},
	"GET /v2/models/{name}/versions/{version}/ready":  {"inference", Read},
	"POST /v2/models/{name}/versions/{version}/infer": {"inference", Invoke},
	"POST /v1/models/{call}":                          {"inference", Invoke},
	"GET /openai/v1/models":                           {"inference", Read}, "GET /openai/v1/models/{model}": {"inference", Read},
	"POST /openai/v1/completions": {"inference", Invoke}, "POST /openai/v1/chat/completions": {"inference", Invoke},
	"POST /openai/v1/embeddings": {"inference", Invoke},
	"GET /v1/events:watch":       {"events", Read},
	"GET /metrics":               {"metrics", Read},
}
