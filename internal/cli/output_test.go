package cli

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gopkg.in/yaml.v3"
)

func sampleModel() *registryv1.Model {
	return &registryv1.Model{
		Name: "iris", Description: "flowers", TaskType: registryv1.TaskType_TASK_TYPE_MULTICLASS_CLASSIFICATION,
		Labels: map[string]string{"team": "ml"}, Aliases: map[string]int64{"production": 3}, LatestVersion: 4,
		CreateTime: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func TestPrintJSONUsesProtoNames(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, printModel(&printer{w: &buf, format: "json"}, sampleModel()))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	require.Contains(t, buf.String(), "{\n  \"name\": \"iris\",\n  \"description\": \"flowers\",\n")
	require.Equal(t, "iris", got["name"])
	require.Equal(t, "TASK_TYPE_MULTICLASS_CLASSIFICATION", got["task_type"])
	require.Equal(t, "4", got["latest_version"])
	require.Equal(t, "2026-01-02T03:04:05Z", got["create_time"])
	require.Equal(t, map[string]any{"production": "3"}, got["aliases"])
}

func TestPrintYAML(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, printModel(&printer{w: &buf, format: "yaml"}, sampleModel()))
	out := buf.String()
	require.Contains(t, out, "name: iris\n")
	require.Contains(t, out, "task_type: TASK_TYPE_MULTICLASS_CLASSIFICATION\n")
	require.Contains(t, out, "labels:\n  team: ml\n")
	require.NotContains(t, out, "{", "block style, not JSON flow style")
	var got map[string]any
	require.NoError(t, yaml.Unmarshal(buf.Bytes(), &got))
	require.Equal(t, "4", got["latest_version"], "int64 stays a string as in protojson")
	require.Less(t, bytes.Index(buf.Bytes(), []byte("name:")), bytes.Index(buf.Bytes(), []byte("description:")),
		"field order follows the message")
}

func TestPrintTableAligned(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	vs := []*registryv1.ModelVersion{
		{Model: "iris", Version: 1, Status: registryv1.VersionStatus_VERSION_STATUS_READY,
			Format: registryv1.ModelFormat_MODEL_FORMAT_ONNX, SizeBytes: 200 << 20,
			Sha256: "0123456789abcdef0123", Aliases: []string{"prod", "champion"}},
		{Model: "iris", Version: 12, Status: registryv1.VersionStatus_VERSION_STATUS_PENDING},
	}
	p := &printer{w: &buf, format: "table"}
	require.NoError(t, p.print(&registryv1.ListModelVersionsResponse{Versions: vs}, func(t *table) { versionRows(t, vs) }))
	want := "" +
		"MODEL   VERSION   STATUS    FORMAT   SIZE      SHA256         ALIASES         CREATED\n" +
		"iris    1         READY     onnx     200 MiB   0123456789ab   champion,prod   -\n" +
		"iris    12        PENDING   -        0 B       -              -               -\n"
	require.Equal(t, want, buf.String())
}

func TestHumanSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 200 << 20: "200 MiB",
		5<<30 + 512<<20: "5.5 GiB", 3 << 40: "3 TiB",
	} {
		require.Equal(t, want, humanSize(n), n)
	}
}

func TestFormatHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, "-", formatTime(nil))
	require.Equal(t, "2026-01-02T03:04:05Z", formatTime(timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	require.Equal(t, "a=1,b=x", joinMap(map[string]string{"b": "x", "a": "1"}))
	require.Equal(t, "-", joinMap(map[string]float64{}))
	require.Equal(t, "3.142", formatFloat(3.14159))
}
