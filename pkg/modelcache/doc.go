// Package modelcache is a node's content-addressed cache of model
// artifacts, shared by every replica, evaluation and training task that
// runs on the node.
//
// An entry is named by its artifact's sha256 (lowercase hex, as the
// registry's ModelVersion.sha256 carries it) and lives in its own
// directory:
//
//	DIR/sha256/<hex>/artifact    the verified bytes (mode 0444)
//	DIR/sha256/<hex>/unpacked/   the archive's tree, when Handle.Unpacked made it
//	DIR/tmp/                     downloads in progress (emptied by Open)
//
// Get returns a Handle on an entry: at once when the entry is there (a
// hit), else after one download (a miss). Concurrent Gets of one digest
// wait on a single download. The bytes a download writes are written to
// the entry's file (its size reserved first, so that a disk without room
// fails the download before it fetches) and hashed, each in a goroutine
// of its own while the next chunk arrives (stages.go), and an entry whose digest (or size) is not the one
// asked for is discarded: it never enters the cache, and the error says
// what was written and what was asked for. Only a verified download is
// renamed into sha256/. Downloads are not synced to disk (a sync costs
// the download a large share of its time): instead Open removes tmp/
// and unpacked trees, indexes what sha256/ holds, and the first Get of
// each such entry hashes it again before handing it out (once, however
// many Gets ask at the same time); an entry that no longer matches its
// digest is removed and downloaded again.
//
// The cache is bounded in bytes (an entry counts its artifact and its
// unpacked tree). When an entry is added or a handle released above the
// bound, the least recently used entries that no handle holds are
// evicted until the cache fits. An entry a handle holds is never
// evicted, so the cache may exceed its bound while held entries alone
// exceed it; an artifact larger than the whole bound is refused. A bound
// of 0 means unbounded. Recency survives a restart: each use touches the
// entry directory's modification time, and Open orders entries by it.
//
// Metrics (on the Registerer given to Open): bmaas_model_cache_hits_total
// (Gets served without downloading, those that waited on another Get's
// download included), bmaas_model_cache_misses_total (Gets that
// downloaded), bmaas_model_cache_bytes (bytes the entries hold),
// bmaas_model_cache_evictions_total and
// bmaas_model_cache_download_bytes_total (bytes written by downloads,
// discarded ones included) and bmaas_model_cache_download_seconds_total
// (time spent downloading: fetching, hashing and writing; with
// the bytes, the downloads' throughput).
package modelcache
