// Package traineragent is the trainer agent: one per node, it registers
// the node (CPU, memory, labels, GPUs with the memory in use and the
// utilisation NVML reads, written again at a heartbeat when they move)
// under an etcd lease, watches the node's assignments and runs each as a
// worker with a runtime (builtin: the native engine; process: any
// command), reporting TaskStatus, logs and metrics as services/scheduler's
// contract says.
//
// # Reconciling from state
//
// The agent consumes no event: it follows its node's assignments in etcd
// (listed, then watched from the listed revision, and listed again after
// any watch error) and the scheduler leader's term, as services/scheduler's
// contract says. It publishes its workers' logs and metrics on
// BMAAS_LOGS and BMAAS_METRICS for readers; the scheduler takes a job's
// progress from the task statuses in etcd, not from those streams.
//
// # Keys
//
// The agent reads and writes the scheduler's keys (its node, its
// assignments, their task statuses) through services/scheduler/schedkeys,
// which owns them. It owns the serving endpoints,
// /bmaas/v1/endpoints/<deployment>/<replica> (a gatewayv1.Endpoint held
// under the node's lease while a replica is ready), whose layout is
// services/traineragent/endpointkeys; the gateway reads them through that
// package.
package traineragent
