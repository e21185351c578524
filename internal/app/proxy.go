package app

import (
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// servicePrefixes maps the gRPC packages to the services (membership
// names) that serve them.
var servicePrefixes = []struct{ prefix, service string }{
	{"/bmaas.registry.v1.", TargetRegistry},
	{"/bmaas.iam.v1.", TargetRegistry},
	{"/bmaas.scheduler.v1.", TargetScheduler},
	{"/bmaas.agent.v1.", TargetTrainerAgent},
	{"/bmaas.evaluator.v1.", TargetEvaluator},
	{"/bmaas.gateway.v1.", TargetGateway},
	{"/inference.GRPCInferenceService/", TargetGateway},
}

// targetOf names the --target (registry, trainer-agent, ...) that serves
// a gRPC service given by its full name (bmaas.registry.v1.RegistryService).
func targetOf(service string) (string, bool) {
	for _, p := range servicePrefixes {
		if strings.HasPrefix("/"+service+"/", p.prefix) {
			return p.service, true
		}
	}
	return "", false
}

// route names the service of a method that this process does not run
// itself, so that its gRPC port answers for the whole platform: a call
// for another service goes to a process that runs it.
func (a *App) route(method string) (string, bool) {
	for _, p := range servicePrefixes {
		if strings.HasPrefix(method, p.prefix) {
			return p.service, !a.cfg.Has(p.service)
		}
	}
	return "", false
}

// proxy forwards the calls of services this process does not run
// (pkg/mesh), once the mesh is up.
func (a *App) proxy(srv any, ss grpc.ServerStream) error {
	if a.w.forward == nil {
		return status.Error(codes.Unavailable, "not connected to the mesh yet")
	}
	return a.w.forward(srv, ss)
}
