// Package schedkeys is the etcd key layout of the scheduling contract (see
// the scheduler package's documentation): the one place that builds and
// parses the keys of jobs, nodes, assignments and task statuses, and names
// the value each key holds. The scheduler owns the layout; the trainer
// agent (nodes, assignments, task statuses) and the evaluator (jobs) read
// and write it through this package, which imports only the standard
// library, so they never import the scheduler service.
//
//	/bmaas/v1/jobs/<job>                      schedulerv1.Job
//	/bmaas/v1/nodes/<node>                    schedulerv1.Node
//	/bmaas/v1/assignments/<node>/<job>/<rank> schedulerv1.Assignment
//	/bmaas/v1/tasks/<job>/<rank>              schedulerv1.TaskStatus
//
// Every value is the binary protobuf encoding of its message. The
// scheduler's leader election runs under the name Election (pkg/election
// owns those keys).
package schedkeys

import (
	"strconv"
	"strings"
)

// root is the root of every bmaas key (pkg/store.Prefix).
const root = "/bmaas/v1/"

// The prefixes of the layout, each with its trailing slash.
const (
	JobsPrefix        = root + "jobs/"
	NodesPrefix       = root + "nodes/"
	AssignmentsPrefix = root + "assignments/"
	TasksPrefix       = root + "tasks/"
)

// Election is the name the scheduler's replicas campaign under
// (election.Prefix(Election) holds their keys); the leader key's create
// revision is the term stamped on assignments.
const Election = "scheduler"

// Job is the key of a job.
func Job(id string) string { return JobsPrefix + id }

// ParseJob returns the job ID of a job key.
func ParseJob(key string) (id string, ok bool) { return one(key, JobsPrefix) }

// Node is the key of a node's record.
func Node(name string) string { return NodesPrefix + name }

// ParseNode returns the node name of a node key.
func ParseNode(key string) (name string, ok bool) { return one(key, NodesPrefix) }

// Assignment is the key of one rank of a job placed on a node.
func Assignment(node, job string, rank int32) string {
	return AssignmentsOf(node) + job + "/" + strconv.Itoa(int(rank))
}

// AssignmentsOf is the prefix of a node's assignments: what its agent watches.
func AssignmentsOf(node string) string { return AssignmentsPrefix + node + "/" }

// ParseAssignment splits an assignment key.
func ParseAssignment(key string) (node, job string, rank int32, ok bool) {
	parts, ok := split(key, AssignmentsPrefix, 3)
	if !ok {
		return "", "", 0, false
	}
	rank, ok = parseRank(parts[2])
	if !ok {
		return "", "", 0, false
	}
	return parts[0], parts[1], rank, true
}

// Task is the key of the status of one rank of a job.
func Task(job string, rank int32) string { return TasksOf(job) + strconv.Itoa(int(rank)) }

// TasksOf is the prefix of a job's task statuses.
func TasksOf(job string) string { return TasksPrefix + job + "/" }

// ParseTask splits a task status key.
func ParseTask(key string) (job string, rank int32, ok bool) {
	parts, ok := split(key, TasksPrefix, 2)
	if !ok {
		return "", 0, false
	}
	rank, ok = parseRank(parts[1])
	if !ok {
		return "", 0, false
	}
	return parts[0], rank, true
}

// one returns the single non-empty segment of key after prefix.
func one(key, prefix string) (string, bool) {
	parts, ok := split(key, prefix, 1)
	if !ok {
		return "", false
	}
	return parts[0], true
}

// split returns the n non-empty segments of key after prefix.
func split(key, prefix string, n int) ([]string, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != n {
		return nil, false
	}
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

// parseRank reads a rank: a decimal int32, zero or more, as Itoa writes it.
func parseRank(s string) (int32, bool) {
	r, err := strconv.ParseInt(s, 10, 32)
	if err != nil || r < 0 || strconv.FormatInt(r, 10) != s {
		return 0, false
	}
	return int32(r), true
}
