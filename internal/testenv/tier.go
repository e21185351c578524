package testenv

import "testing"

// RequireIntegration fails t, before anything is started, unless the test
// binary was built with the integration tag: a test that starts etcd,
// NATS, a cluster or the bmaas binary belongs in a file that begins with
// //go:build integration. Benchmarks pass in any build.
func RequireIntegration(t testing.TB) {
	t.Helper()
	if Integration {
		return
	}
	if _, ok := t.(*testing.B); ok {
		return
	}
	t.Fatalf("%s starts etcd, NATS or a cluster in the unit tier: begin its file with //go:build integration (make test-integration runs it)", t.Name())
}
