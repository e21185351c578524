// Package gateway is the inference gateway: the deployment API (state in
// etcd under /bmaas/v1/deployments/<name>), the serving runtime API
// (/bmaas/v1/runtimes/<name>, beside the built-in "native" and "onnx";
// runtimes.go picks a deployment's runtime per version's format), the
// KServe v2 data plane over
// gRPC and REST that routes each request to a ready replica, and, on the
// elected leader, the reconciler that runs replicas as scheduler jobs,
// autoscales them and rolls them to a new version when the followed
// alias moves. Every gateway publishes its load per deployment on NATS
// (LoadSubject), so the leader autoscales on the traffic through all of
// them, not only its own.
//
// # Protocols
//
// A client speaks KServe v2 gRPC or REST whatever the replica speaks
// (its endpoint's protocols). gRPC to a v2 gRPC replica and REST to a v2
// REST one pass through as they came (raw gRPC frames; the HTTP body,
// binary tensor data included). gRPC to a v2 REST replica is translated
// (bridge.go): the request to v2 JSON, tensors of 1 KiB or more as the
// binary tensor data extension when the replica's server metadata lists
// it (asked once per replica), and the answer back to protobuf. REST to a
// gRPC replica is decoded once at the edge. Replica HTTP errors map to
// gRPC codes by pkg/apierr's table, and a refused or reset connection is
// Unavailable, which forward (dataplane.go) retries on another replica.
// The v2 calls to an HTTP replica go over the gateway's own HTTP/1.1
// client (h1.go): the calling goroutine writes the request and reads the
// answer on a kept-alive connection, without net/http's per-connection
// goroutines; the OpenAI routes, which stream, use net/http.
//
// # Failing replicas
//
// A replica job that fails (failures.go) is not replaced at once: the
// next replica of that version waits 5 s after the first failure,
// doubling per failure within 30 minutes up to 5 minutes, and while no
// replica of the version is ready the deployment's status message is
// the failed replica's reason and when the next one starts.
//
// # Request ids and payload logging
//
// Every inference request has an id (requestid.go), the client's
// X-Request-Id when usable, answered back and sent on to HTTP replicas.
// A deployment's payload_logging samples requests and responses into the
// JetStream stream BMAAS_PAYLOADS (payloads.go): the request path hands a
// record to a bounded queue, one goroutine publishes, a full queue drops
// and counts; ListPayloads reads a deployment's subject back.
//
// # Reconciling from state
//
// The gateway acts on etcd and API state, never on a message alone:
//
//   - The leader's reconcile (reconcile.go) reads every deployment from
//     etcd, the replica jobs from the scheduler and the version the
//     deployment's model reference (alias) names from the registry on
//     every pass, every gateway.reconcile-interval (1 s). A deployment
//     change through the API, or a request held for a replica (kick), only
//     brings the next pass sooner; a moved alias is seen by the next pass.
//   - The load reports on LoadSubject (NATS core, not stored) are hints:
//     every gateway publishes its whole load every
//     gateway.load-report-interval, a lost report is replaced by the next
//     one, a report older than three intervals counts for nothing, and one
//     that shows requests newly in flight wakes the leader's reconcile,
//     which would run within the interval anyway.
//   - The routing table (router.go) lists the endpoint keys and watches
//     them from the listed revision, listing again after any watch error,
//     so it misses no change; the deployment cache does the same. The
//     agents write the endpoints; their layout is
//     services/traineragent/endpointkeys, through which the router parses
//     them.
//
// The gateway consumes no event of pkg/events' streams.
package gateway
