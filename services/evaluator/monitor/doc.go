// Package monitor watches deployed models from the gateway's payload log.
//
// Every logged record (BMAAS_PAYLOADS, one message per batch of a
// deployment's records) is counted in the window of its time
// (Config.Window long): requests, errors, latencies, the version that
// answered, and, decoded against that version's signature, its
// predictions and input rows (a bounded uniform sample of each column:
// once a window holds Config.MaxSamples rows, only a matching share of
// the records have their inputs decoded at all, so the monitor's cost
// stays bounded as traffic grows). A window
// sums up to a MonitorWindow: the drift of every input column against the
// version's training statistics and of the predictions against the
// training target (pkg/ml/drift, the tests Evidently chooses by default),
// data quality, latency percentiles, and the live performance of the
// predictions that got feedback.
//
// Feedback (SubmitFeedback) names a logged request by its id; it is
// checked against the remembered predictions (waiting briefly for the log
// to deliver a request just answered), published on BMAAS_FEEDBACK and
// joined with its prediction in the prediction's window, however long ago
// that was within Config.Horizon. A window over for one more window's
// length is sealed: its drift is final and its samples are dropped; only
// feedback changes it after that.
//
// Every replica follows both streams from the horizon on start (so a new
// leader has the same windows); the leader writes the windows that
// changed to the bucket BMAAS_MONITOR and exports the latest as gauges
// (Flush). Export reads the streams themselves to make a dataset of the
// logged rows with their feedback.
package monitor
