// Package traineragent is the trainer agent: one per node, it registers
// the node (CPU, memory, labels, GPUs with the memory in use and the
// utilisation NVML reads, written again at a heartbeat when they move)
// under an etcd lease, watches the node's assignments and runs each as a
// worker with a runtime (builtin: the native engine; process: any
// command), reporting TaskStatus, logs and metrics as services/scheduler's
// contract says.
//
// # Serving replicas
//
// A serving assignment runs one replica. A built-in runtime (native,
// onnx) runs as `bmaas replica`, the agent's own binary in the sandbox.
// A runtime that names a process server (runtimeproc.go) runs its
// command under the serving contract: BMAAS_MODEL_DIR (the version's
// artifact from the node's model cache, archives unpacked once and
// shared read-only by every replica of the digest), BMAAS_MODEL_NAME,
// BMAAS_MODEL_VERSION, BMAAS_HTTP_PORT, BMAAS_GRPC_PORT (two free
// ports), BMAAS_PARAMS, BMAAS_TOKEN and CUDA_VISIBLE_DEVICES, its
// arguments rendered from the same values, its working directory its
// code bundle or its workdir. The agent probes it (probe.go: an HTTP path
// or the v2 gRPC ServerReady, from initial_delay, every period, until
// startup_timeout), writes the endpoint (with the protocols it speaks and
// its HTTP address) only once the probe passes, and removes it when the
// server exits. A server that exits after it was ready is started again
// in place with back-off from 1 s to 30 s (restart.go); each restart is
// counted in the task's status, which the scheduler folds into
// Job.task_restarts and the gateway shows as the replica's restarts. A
// server that never passes its probe, a command that does not exist or a
// bundle that does not unpack fails the replica with a reason naming the
// runtime's field. Stopping sends SIGTERM and waits the runtime's
// termination grace. The server's stdout and stderr are the replica's
// logs (bmaas deploy logs).
//
// # The model cache
//
// Artifacts are fetched into pkg/modelcache (modelfetch.go): by sha256,
// verified, one download per digest however many tasks ask at once,
// bounded by trainer-agent.model-cache-bytes with least-recently-used
// eviction of the entries no task holds. Training inputs, evaluation and
// serving replicas share it; the fetch starts as soon as the assignment
// reaches the agent.
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
