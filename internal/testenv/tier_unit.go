//go:build !integration

package testenv

// Integration is true in the integration tier: test binaries built with
// -tags integration (make test-integration).
const Integration = false
