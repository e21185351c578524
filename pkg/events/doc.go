// Package events is the platform's event bus on NATS JetStream.
//
// Three streams carry everything:
//
//	BMAAS_EVENTS   bmaas.<kind>.<key>.<type>   control-plane events (model, dataset, job, node,
//	                                           deployment, experiment, evaluation, alias)
//	BMAAS_METRICS  bmaas.metrics.<job>.<rank>  training metrics
//	BMAAS_LOGS     bmaas.logs.<job>.<rank>     task logs
//
// NewBus creates or updates the streams idempotently, so every service may
// call it at startup.
//
// # Delivery and idempotency
//
// Every Event has an ID, sent as the Nats-Msg-Id header: publishing the same
// ID again within the stream's duplicate window (2 minutes by default) is
// dropped by JetStream, so a publisher may retry a failed Publish with the same
// Event safely. Set Event.ID (see NewID) before the first attempt when you
// intend to retry; an empty ID gets a fresh one on every call.
//
// Subscribe delivers at least once: a handler that returns an error gets the
// event again after a backoff, and a crash between handling and acking
// redelivers it too. Handlers must therefore be idempotent, typically by
// making their effect conditional on the state they change (an etcd
// transaction on a mod revision) or, for in-process suppression of repeats,
// with a Deduper.
//
// Replay reads a stream in order with an ephemeral consumer, for log and
// metric replay, optionally following new messages.
package events
