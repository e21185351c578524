package app

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// flock(2) locks belong to an open file, so two locks of one process
// conflict as two processes' would.
func TestLockDataDir(t *testing.T) {
	t.Parallel()
	pid := "pid " + strconv.Itoa(os.Getpid())
	type proc struct {
		embedded bool
		node     string
		targets  []string
	}
	up := proc{embedded: true, node: "n1", targets: AllTargets}
	control := proc{node: "n1", targets: []string{TargetRegistry, TargetScheduler}}
	agent := proc{node: "n1", targets: []string{TargetTrainerAgent}}
	otherNode := proc{node: "n2", targets: []string{TargetRegistry}}
	tests := []struct {
		name          string
		first, second proc
		fails         string // what the error names besides the directory
	}{
		{"up twice", up, up, "bmaas up, " + pid},
		{"serve beside up", up, control, "bmaas up, " + pid},
		{"up beside serve", control, up, "bmaas serve, " + pid},
		{"the same service of the same node", control, proc{node: "n1", targets: []string{TargetRegistry}},
			"the registry of node n1, " + pid},
		{"two agents", agent, proc{node: "n2", targets: []string{TargetTrainerAgent}}, "the trainer-agent, " + pid},
		{"control services and the agent of one node", control, agent, ""},
		{"one service of two nodes (shared storage)", control, otherNode, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			first, err := lockDataDir(dir, tt.first.embedded, tt.first.node, tt.first.targets)
			require.NoError(t, err)
			defer first.Release()
			second, err := lockDataDir(dir, tt.second.embedded, tt.second.node, tt.second.targets)
			if tt.fails == "" {
				require.NoError(t, err)
				second.Release()
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "data directory "+dir+" is in use by another bmaas process ("+tt.fails+")")
			first.Release()
			again, err := lockDataDir(dir, tt.second.embedded, tt.second.node, tt.second.targets)
			require.NoError(t, err, "free once the first lets go")
			again.Release()
		})
	}
}

func TestLockDataDirWritesPid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, dirLockName), []byte("999999999 left by a crashed process\n"), 0o600))
	l, err := lockDataDir(dir, true, "n1", AllTargets)
	require.NoError(t, err, "a lock file without a holder is no lock")
	defer l.Release()
	b, err := os.ReadFile(filepath.Join(dir, dirLockName))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(os.Getpid())+"\n", string(b))
}
