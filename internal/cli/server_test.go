package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/app"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bmaas.yaml")
	require.NoError(t, os.WriteFile(file, []byte(
		"data_dir: /from/file\nhttp_addr: 127.0.0.1:1111\nnats_url: nats://file:4222\nregistry:\n  max_artifact_bytes: 1234\n"), 0o600))
	t.Setenv("BMAAS_NATS_URL", "nats://env:4222")
	t.Setenv("BMAAS_HTTP_ADDR", "127.0.0.1:2222")

	var cfg app.Config
	var configFile string
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	bindConfig(cmd, &cfg, &configFile)
	require.NoError(t, cmd.ParseFlags([]string{"--config", file, "--http-addr", "127.0.0.1:3333", "--etcd-endpoints", "http://a:1,http://b:2"}))
	require.NoError(t, loadConfig(cmd.Flags(), &cfg, configFile))

	require.Equal(t, "/from/file", cfg.DataDir, "the file overrides the default")
	require.Equal(t, int64(1234), cfg.Registry.MaxArtifactBytes)
	require.Equal(t, "nats://env:4222", cfg.NATSURL, "the environment overrides the file")
	require.Equal(t, "127.0.0.1:3333", cfg.HTTPAddr, "a flag overrides the environment and the file")
	require.Equal(t, []string{"http://a:1", "http://b:2"}, cfg.EtcdEndpoints)
	require.Equal(t, "127.0.0.1:7070", cfg.GRPC.Addr, "defaults stay where nothing overrides them")

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("no_such_field: 1\n"), 0o600))
	require.ErrorContains(t, loadConfig(cmd.Flags(), &cfg, bad), "no_such_field")
}

func TestServeRejectsUnknownTarget(t *testing.T) {
	_, err := app.ParseTargets("registry,billing")
	require.ErrorContains(t, err, `unknown service "billing"`)
	got, err := app.ParseTargets("all")
	require.NoError(t, err)
	require.Equal(t, app.AllTargets, got)
}

// TestPrintReadyShowsTheConsole: the ready banner of bmaas up gives the
// web console's URL, on a host a browser can open.
func TestPrintReadyShowsTheConsole(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	printReady(&b, app.Config{Targets: app.AllTargets}, app.Addrs{GRPC: "127.0.0.1:7070", HTTP: "127.0.0.1:8080"})
	require.Contains(t, b.String(), "  Console  http://127.0.0.1:8080/ui/\n")
	b.Reset()
	printReady(&b, app.Config{Targets: app.AllTargets}, app.Addrs{GRPC: "[::]:7070", HTTP: "0.0.0.0:8080"})
	require.Contains(t, b.String(), "  Console  http://127.0.0.1:8080/ui/\n")
}
