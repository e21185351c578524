// Package scheduler is the scheduler: jobs, queues and placement. Every
// replica serves the job and node API from etcd; one replica, elected on
// etcd, places queued jobs on nodes and moves jobs through their states.
//
// The scheduling contract between the scheduler and the trainer agents.
// Both sides follow it; the state lives in etcd (all values are protobuf
// messages of bmaas.scheduler.v1) and NATS carries events, logs, metrics.
//
// Keys
//
//	/bmaas/v1/jobs/<id>                     Job: spec and status. Written by the
//	                                        scheduler only (any replica for Submit and
//	                                        Cancel; the leader for placement and state moves).
//	/bmaas/v1/nodes/<node>                  Node: written by the node's agent under its own
//	                                        lease (TTL 5 s, 30 s under bmaas up; renewed every
//	                                        second). The key vanishing means the node is gone.
//	/bmaas/v1/assignments/<node>/<job>/<rank>
//	                                        Assignment: written and deleted by the scheduler
//	                                        leader only, always in a transaction that checks
//	                                        the CreateRevision of the leader's election key
//	                                        equals the leader's term, so a deposed leader
//	                                        writes nothing.
//	/bmaas/v1/tasks/<job>/<rank>            TaskStatus: written by the agent running that
//	                                        worker, in a transaction that checks its assignment
//	                                        key still exists with the create revision the agent
//	                                        saw; carries the attempt (copied from the
//	                                        assignment), so the scheduler ignores statuses of
//	                                        an older attempt.
//	/bmaas/v1/leader/scheduler//<lease>     the election keys (pkg/election.Key); the leader's is
//	                                        the one created first, and its create revision is
//	                                        the leader's term (election.Leader returns it).
//
// One package owns this layout: services/scheduler/schedkeys builds and
// parses every key above but the election's (pkg/election owns those; the
// election's name is schedkeys.Election) and says which message each key
// holds. The scheduler, the agent and the evaluator (which watches the
// jobs) all go through it; no other package builds or parses these keys.
// internal/keyowners lists the owner of every layout, and its test fails
// on a file that builds or parses another owner's keys.
//
// Attempts: Job.attempt starts at 1 and grows by one on every restart
// (a failed worker, counted in Job.restarts), preemption (Job.preemptions)
// and node loss or lost start (counted nowhere else). Assignment.attempt is
// the job's attempt when it was placed. A new attempt always gets new
// assignment keys (deleted and re-created, so a new create revision) and
// its task statuses start afresh: the leader deletes /bmaas/v1/tasks/<job>/
// together with the old assignments.
//
// Lifecycle of a job
//
//   - Submit validates the spec (model and dataset exist in the registry, the
//     algorithm and its hyperparameters parse with pkg/ml/train.ParseParams,
//     resources are sane) and writes the Job QUEUED.
//   - The leader places queued jobs by priority, FIFO within a priority; a gang
//     (workers > 1) gets all its assignments in one transaction or none. Placed
//     jobs move to SCHEDULED with their nodes; a job that fits no node even when
//     empty stays QUEUED with reason "Unschedulable: ...", one that waits for
//     room with "Waiting for capacity: ...". Ranks on one node are adjacent;
//     every rank of a job gets the same master_addr (rank 0's node Host, else
//     the host of its Address, else its name) and master_port (the lowest free
//     port of scheduler.master-port-min..max on that node), world_size, its
//     node_rank and local_rank, and gpu_indices (Gpu.index values, free ones,
//     the lowest first). A job asking a share of one GPU by memory
//     (resources.gpu_memory_bytes) gets the one GPU, of those with no whole-GPU
//     job, that its share leaves fullest without going beyond its memory;
//     a whole-GPU job takes only a GPU without shares. GetNode and ListNodes
//     fill each Gpu's allocated_memory_bytes (its shares, or all of it).
//   - A job that cannot fit may preempt running jobs of lower priority marked
//     preemptible: they go back to QUEUED (preemptions+1, a new attempt, their
//     checkpoint_step kept) in the same transaction that places it; their
//     agents see their assignments vanish.
//   - The agent sees the assignment (watching /bmaas/v1/assignments/<node>/),
//     writes TaskStatus STARTING, fetches inputs, then RUNNING; the leader moves
//     the job to RUNNING when every rank runs.
//   - Rank 0 of a successful run registers the model version and reports
//     SUCCEEDED with model_version; the leader moves the job to SUCCEEDED once
//     every rank succeeded, and deletes its assignments. A FAILED rank fails
//     the attempt: the job restarts (attempt+1, from its newest checkpoint) while
//     restarts < max_restarts, else it is FAILED with the task's message.
//   - A CANCELLED rank was lost by its agent without failing: an agent that
//     restarts (killed, crashed) and finds a task of its node STARTING or
//     RUNNING under the assignment's attempt knows the task's process went
//     with the old agent; it does not run the attempt again but reports it
//     CANCELLED ("agent restarted: the task's process was lost"). The job
//     goes back to the queue as a new attempt, resumed from its newest
//     checkpoint, not counted as a restart (as after a node loss).
//   - Cancel marks the job CANCELLED and the leader deletes its assignments;
//     an agent stops a worker whose assignment vanished (SIGTERM to the process
//     group, SIGKILL 3 s later).
//   - A node whose key vanished loses its assignments; its jobs go back to the
//     queue as a new attempt (not counted as a restart). So does a SCHEDULED job
//     none of whose workers reported within scheduler.start-timeout (5 min).
//     A RUNNING job past its timeout_seconds (counted from its RUNNING move)
//     is FAILED. The leader copies rank 0's step, checkpoint_step and metrics
//     into the job as they change. An agent that loses its
//     own lease kills its workers at once (self-fencing), so no job runs twice:
//     when etcd says the lease is gone, or when no renewal sent within the last
//     TTL was answered (no later than etcd could let the lease lapse). Under
//     bmaas up the agent shares its process with etcd and the scheduler: it
//     never fences itself and registers a lost lease again; the assignments the
//     leader moved away are deleted, and the agent, which cannot be cut off
//     from that etcd, stops their workers as it stops any removed assignment.
//   - A new leader re-stamps every live assignment with its term; agents do not
//     start an assignment whose term is older than the newest leader term they
//     have seen (a running worker keeps running when only the term changes).
//
// Events (pkg/events): bmaas.job.<id>.<state> for every job move (queued,
// scheduled, running, succeeded, failed, cancelled, preempted), logs on
// bmaas.logs.<job>.<rank> (one line per message, Data is the line), metrics
// on bmaas.metrics.<job>.<rank> (Data is the JSON line the worker reported);
// both carry the attempt in the Bmaas-Attempt header, and every attempt's
// log starts with "[bmaas] attempt <n> of job <id>, rank <r>, on node <node>".
//
// Reconciling from state: neither side acts on an event; both follow etcd.
// The leader loads jobs, nodes, assignments and task statuses at one
// revision, watches them from the next (a watch error ends its term, and
// the replica campaigns again and loads afresh) and makes a full pass
// every scheduler.resync (1 s). The agent lists its node's assignments,
// watches them from the listed revision and lists again after any watch
// error. The events above are published for others and consumed by no
// controller; a job's logs are replayed from BMAAS_LOGS for a reader
// (Logs), and the watch of other replicas' leader keys only times a
// failover for a metric.
package scheduler
