package cli

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// execReplica runs `bmaas replica` with args until ctx ends.
func execReplica(ctx context.Context, args ...string) (string, error) {
	cmd := newReplicaCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// `bmaas replica` takes the agent's --config or the serving contract's
// --format, one of them; the contract's flags reach the replica.
func TestReplicaCommandModes(t *testing.T) {
	_, err := execReplica(t.Context())
	require.ErrorContains(t, err, "--config FILE or --format onnx|native is required")
	_, err = execReplica(t.Context(), "--config", "c.json", "--format", "onnx")
	require.ErrorContains(t, err, "not both")
	_, err = execReplica(t.Context(), "--config", "/nonexistent/replica.json")
	require.ErrorContains(t, err, "replica config")

	t.Setenv("BMAAS_TOKEN", "")
	t.Setenv("MY_TOKEN", "tok")
	_, err = execReplica(t.Context(), "--format", "onnx", "--model-dir", "/nonexistent", "--name", "bc", "--grpc-port", "9", "--token-env", "MY_TOKEN")
	require.ErrorContains(t, err, "--model-dir: stat /nonexistent")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // it serves, then drains at once
	out, err := execReplica(ctx, "--format", "onnx", "--model-dir", "../../examples/models/logreg-v1.onnx", "--name", "bc",
		"--version", "4", "--grpc-port", port, "--host", "127.0.0.1", "--token-env", "MY_TOKEN")
	require.NoError(t, err)
	require.Contains(t, out, "replica of bc version 4 (onnx, ../../examples/models/logreg-v1.onnx) serving KServe v2 gRPC on port "+port)
	require.Contains(t, out, "replica drained")
}
