// Package blob is a content-addressed blob store keyed by sha256 digest.
//
// A blob is staged with Store.NewWriter, streamed in while it is hashed, and
// made visible by Writer.Commit, which verifies the digest, syncs the data to
// disk and renames it into place atomically. Readers therefore only ever see
// complete, verified blobs, and committing content that is already stored is a
// cheap no-op (deduplication).
//
// Digests are lowercase hex sha256 strings of 64 characters, without an
// algorithm prefix. Every function that takes a digest validates it first and
// returns ErrInvalidDigest otherwise, so a digest can never name a path outside
// the store.
//
// Local stores blobs in a directory:
//
//	dir/sha256/ab/abcdef...   committed blobs, sharded by the first two hex digits
//	dir/tmp/                  staged uploads; CleanTemp removes those left by a crash
package blob
