package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain keeps the tests off the machine's own client configuration
// (~/.config/bmaas/config.yaml): a test that wants one sets BMAAS_CONFIG.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bmaas-cli-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("BMAAS_CONFIG", filepath.Join(dir, "no-config.yaml"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
