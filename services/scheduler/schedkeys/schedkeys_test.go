package schedkeys_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

func TestKeysRoundTrip(t *testing.T) {
	t.Parallel()
	id, ok := schedkeys.ParseJob(schedkeys.Job("01J9ZQ"))
	require.True(t, ok)
	require.Equal(t, "01J9ZQ", id)

	name, ok := schedkeys.ParseNode(schedkeys.Node("gpu-1.example"))
	require.True(t, ok)
	require.Equal(t, "gpu-1.example", name)

	for _, rank := range []int32{0, 7, 1 << 30} {
		node, job, r, ok := schedkeys.ParseAssignment(schedkeys.Assignment("n1", "01J9ZQ", rank))
		require.True(t, ok, "rank %d", rank)
		require.Equal(t, []any{"n1", "01J9ZQ", rank}, []any{node, job, r})

		job, r, ok = schedkeys.ParseTask(schedkeys.Task("01J9ZQ", rank))
		require.True(t, ok, "rank %d", rank)
		require.Equal(t, []any{"01J9ZQ", rank}, []any{job, r})
	}
}

func TestKeysUnderTheirPrefixes(t *testing.T) {
	t.Parallel()
	require.Equal(t, store.Key("jobs", "j"), schedkeys.Job("j"))
	require.Equal(t, store.Key("nodes", "n"), schedkeys.Node("n"))
	require.Equal(t, store.Key("assignments", "n", "j", "2"), schedkeys.Assignment("n", "j", 2))
	require.Equal(t, store.Key("tasks", "j", "2"), schedkeys.Task("j", 2))
	require.Regexp(t, "^"+schedkeys.AssignmentsOf("n"), schedkeys.Assignment("n", "j", 2))
	require.Regexp(t, "^"+schedkeys.TasksOf("j"), schedkeys.Task("j", 2))
	require.Equal(t, "scheduler", schedkeys.Election)
}

func TestMalformedKeysRefused(t *testing.T) {
	t.Parallel()
	for _, k := range []string{
		"", "/bmaas/v1/jobs/", "/bmaas/v1/jobs/a/b", "/bmaas/v1/nodes/j", "/bmaas/v2/jobs/j", "jobs/j",
	} {
		_, ok := schedkeys.ParseJob(k)
		require.False(t, ok, "job key %q", k)
	}
	for _, k := range []string{"/bmaas/v1/nodes/", "/bmaas/v1/nodes/a/b", "/bmaas/v1/jobs/n"} {
		_, ok := schedkeys.ParseNode(k)
		require.False(t, ok, "node key %q", k)
	}
	for _, k := range []string{
		"/bmaas/v1/assignments/n/j", "/bmaas/v1/assignments/n/j/0/x", "/bmaas/v1/assignments/n//0",
		"/bmaas/v1/assignments//j/0", "/bmaas/v1/assignments/n/j/", "/bmaas/v1/assignments/n/j/x",
		"/bmaas/v1/assignments/n/j/-1", "/bmaas/v1/assignments/n/j/01", "/bmaas/v1/assignments/n/j/+1",
		"/bmaas/v1/assignments/n/j/4294967296", "/bmaas/v1/tasks/j/0",
	} {
		_, _, _, ok := schedkeys.ParseAssignment(k)
		require.False(t, ok, "assignment key %q", k)
	}
	for _, k := range []string{
		"/bmaas/v1/tasks/j", "/bmaas/v1/tasks/j/0/1", "/bmaas/v1/tasks//0", "/bmaas/v1/tasks/j/",
		"/bmaas/v1/tasks/j/x", "/bmaas/v1/tasks/j/-2", "/bmaas/v1/assignments/j/0",
	} {
		_, _, ok := schedkeys.ParseTask(k)
		require.False(t, ok, "task key %q", k)
	}
}
