//go:build integration

package cli

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestModelPolicy: promotion is set and read from the CLI, and an empty
// decision list says how to get decisions.
func TestModelPolicy(t *testing.T) {
	t.Parallel()
	addr := startRegistry(t)
	_, err := cliAt(t, addr, "dataset", "upload", "iris", filepath.Join("..", "..", "examples", "datasets", "iris.csv"))
	require.NoError(t, err)
	_, err = cliAt(t, addr, "model", "create", "iris")
	require.NoError(t, err)

	out, err := cliAt(t, addr, "model", "decisions", "iris")
	require.NoError(t, err)
	require.Contains(t, out, "no promotion decisions yet")
	require.Contains(t, out, "bmaas model policy set iris --metric")

	_, err = cliAt(t, addr, "model", "policy", "get", "iris")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "bmaas model policy set iris")

	out, err = cliAt(t, addr, "model", "policy", "set", "iris", "--dataset", "iris", "--metric", "test_accuracy",
		"--alias", "production", "--min-gain", "0.01", "--guard", "test_log_loss<=0.5")
	require.NoError(t, err)
	require.Contains(t, out, "iris@latest")
	require.Contains(t, out, "test_accuracy (maximize)")

	// A later set changes only what it names; a loss is minimised.
	_, err = cliAt(t, addr, "model", "policy", "set", "iris", "--metric", "test_log_loss")
	require.NoError(t, err)
	out, err = cliAt(t, addr, "-o", "json", "model", "policy", "get", "iris")
	require.NoError(t, err)
	var p struct {
		Model     string `json:"model"`
		Datasets  []struct{ Dataset string }
		Promotion struct {
			TargetAlias    string  `json:"target_alias"`
			PrimaryMetric  string  `json:"primary_metric"`
			Direction      string  `json:"direction"`
			MinImprovement float64 `json:"min_improvement"`
			Enabled        bool    `json:"enabled"`
			Guards         []struct {
				Metric string   `json:"metric"`
				Max    *float64 `json:"max"`
			} `json:"guards"`
		} `json:"promotion"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	require.Equal(t, "iris", p.Model)
	require.Len(t, p.Datasets, 1)
	require.Equal(t, "production", p.Promotion.TargetAlias)
	require.Equal(t, "test_log_loss", p.Promotion.PrimaryMetric)
	require.Equal(t, "DIRECTION_MINIMIZE", p.Promotion.Direction)
	require.Equal(t, 0.01, p.Promotion.MinImprovement)
	require.True(t, p.Promotion.Enabled)
	require.Len(t, p.Promotion.Guards, 1)
	require.Equal(t, 0.5, *p.Promotion.Guards[0].Max)

	out, err = cliAt(t, addr, "model", "decisions", "iris")
	require.NoError(t, err)
	require.Contains(t, out, "no promotion decisions yet")
	require.Contains(t, out, "the next version")

	for _, bad := range [][]string{
		{"--direction", "sideways"},
		{"--guard", "test_accuracy"},
		{"--min-gain", "-1"},
	} {
		_, err = cliAt(t, addr, append([]string{"model", "policy", "set", "iris"}, bad...)...)
		require.Error(t, err, "%v", bad)
	}
	_, err = cliAt(t, addr, "model", "policy", "set", "iris", "--dataset", "nope")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "--dataset nope")
}
