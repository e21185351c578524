package scheduler

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// view is the leader's in-memory copy of jobs, nodes, assignments and
// task statuses, loaded at one revision and kept current by one watch over
// the key range that holds all four (so a transaction's changes arrive
// together). Only the leader's loop touches it.
type view struct {
	rev     int64
	jobs    map[string]*jobEntry
	nodes   map[string]*nodeEntry
	assigns map[string]map[string]*assignEntry // job -> key -> assignment
	tasks   map[string]map[int32]*schedulerv1.TaskStatus
	// dirty jobs changed since the last pass; placeDirty asks for placement.
	dirty      map[string]bool
	placeDirty bool
}

type jobEntry struct {
	job *schedulerv1.Job
	rev int64
}

type nodeEntry struct {
	node *schedulerv1.Node
	rev  int64
}

type assignEntry struct {
	a        *schedulerv1.Assignment
	rev      int64
	key      string
	nodeName string
}

// watchRange covers the assignments through the task statuses (jobs and
// nodes sort between them).
func watchRange() (string, string) {
	return schedkeys.AssignmentsPrefix, clientv3.GetPrefixRangeEnd(schedkeys.TasksPrefix)
}

// loadView reads the four prefixes at one revision.
func loadView(ctx context.Context, cli *clientv3.Client) (*view, error) {
	get := func(p string) clientv3.Op { return clientv3.OpGet(p, clientv3.WithPrefix()) }
	resp, err := cli.Txn(ctx).Then(get(schedkeys.JobsPrefix), get(schedkeys.NodesPrefix), get(schedkeys.AssignmentsPrefix), get(schedkeys.TasksPrefix)).Commit()
	if err != nil {
		return nil, fmt.Errorf("load scheduler state: %w", err)
	}
	v := &view{rev: resp.Header.Revision, jobs: map[string]*jobEntry{}, nodes: map[string]*nodeEntry{},
		assigns: map[string]map[string]*assignEntry{}, tasks: map[string]map[int32]*schedulerv1.TaskStatus{},
		dirty: map[string]bool{}, placeDirty: true}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			if err := v.put(string(kv.Key), kv.Value, kv.ModRevision); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// apply takes one watch response in.
func (v *view) apply(wr clientv3.WatchResponse) error {
	for _, ev := range wr.Events {
		key := string(ev.Kv.Key)
		var err error
		if ev.Type == clientv3.EventTypeDelete {
			v.del(key)
		} else {
			err = v.put(key, ev.Kv.Value, ev.Kv.ModRevision)
		}
		if err != nil {
			return err
		}
		v.rev = max(v.rev, ev.Kv.ModRevision)
	}
	if wr.IsProgressNotify() {
		v.rev = max(v.rev, wr.Header.Revision)
	}
	return nil
}

func (v *view) put(key string, val []byte, rev int64) error {
	decode := func(m proto.Message) error {
		if err := proto.Unmarshal(val, m); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		return nil
	}
	if _, ok := schedkeys.ParseJob(key); ok {
		j := &schedulerv1.Job{}
		if err := decode(j); err != nil {
			return err
		}
		v.jobs[j.Id] = &jobEntry{job: j, rev: rev}
		v.dirty[j.Id] = true
		v.placeDirty = true
	} else if name, ok := schedkeys.ParseNode(key); ok {
		n := &schedulerv1.Node{}
		if err := decode(n); err != nil {
			return err
		}
		n.Name = name
		v.nodes[n.Name] = &nodeEntry{node: n, rev: rev}
		v.placeDirty = true
	} else if node, job, _, ok := schedkeys.ParseAssignment(key); ok {
		a := &schedulerv1.Assignment{}
		if err := decode(a); err != nil {
			return err
		}
		if v.assigns[job] == nil {
			v.assigns[job] = map[string]*assignEntry{}
		}
		v.assigns[job][key] = &assignEntry{a: a, rev: rev, key: key, nodeName: node}
		v.dirty[job] = true
	} else if job, rank, ok := schedkeys.ParseTask(key); ok {
		t := &schedulerv1.TaskStatus{}
		if err := decode(t); err != nil {
			return err
		}
		if v.tasks[job] == nil {
			v.tasks[job] = map[int32]*schedulerv1.TaskStatus{}
		}
		v.tasks[job][rank] = t
		v.dirty[job] = true
	}
	return nil
}

func (v *view) del(key string) {
	if id, ok := schedkeys.ParseJob(key); ok {
		delete(v.jobs, id)
		v.dirty[id] = true
	} else if name, ok := schedkeys.ParseNode(key); ok {
		delete(v.nodes, name)
		v.placeDirty = true
		// Every job on the node must look again.
		for job, as := range v.assigns {
			for _, a := range as {
				if a.nodeName == name {
					v.dirty[job] = true
				}
			}
		}
	} else if _, job, _, ok := schedkeys.ParseAssignment(key); ok {
		delete(v.assigns[job], key)
		if len(v.assigns[job]) == 0 {
			delete(v.assigns, job)
		}
		v.dirty[job] = true
		v.placeDirty = true
	} else if job, rank, ok := schedkeys.ParseTask(key); ok {
		delete(v.tasks[job], rank)
		if len(v.tasks[job]) == 0 {
			delete(v.tasks, job)
		}
		v.dirty[job] = true
	}
}
