package scheduler

import (
	"fmt"
	"net"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/services/scheduler/fairshare"
	"github.com/bmaas/bmaas/services/scheduler/placement"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// request turns a job spec into a placement request.
func request(j *schedulerv1.Job) placement.Request {
	s, r := j.GetSpec(), j.GetSpec().GetResources()
	return placement.Request{Job: j.Id, Priority: s.GetPriority(), Workers: int(max(s.GetWorkers(), 1)),
		CPU: r.GetCpuMillis(), Memory: r.GetMemoryBytes(), GPUs: int(r.GetGpus()), GPUModel: r.GetGpuModel(),
		GPUMemory: r.GetGpuMemoryBytes(), Pool: s.GetPool(), Selector: s.GetNodeSelector(), Preemptible: s.GetPreemptible()}
}

// shareOf is the GPU memory share r asks for (0 when it asks for whole
// GPUs).
func shareOf(r *schedulerv1.Resources) int64 {
	if r.GetGpus() > 0 {
		return 0
	}
	return r.GetGpuMemoryBytes()
}

// cluster builds the placement state from the view: the nodes, and every
// assignment as an allocation held by its job. touched jobs (changed in
// this pass) are never preempted.
func (l *leader) cluster(touched map[string]bool) (*placement.Cluster, map[string]int) {
	names := make([]string, 0, len(l.v.nodes))
	for name := range l.v.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	nodes := make([]placement.Node, len(names))
	index := make(map[string]int, len(names))
	for i, name := range names {
		n := l.v.nodes[name].node
		index[name] = i
		nodes[i] = placement.Node{Name: name, Pool: n.Pool, Labels: n.Labels, CPU: n.CpuMillis, Memory: n.MemoryBytes}
		for _, g := range n.Gpus {
			nodes[i].GPUs = append(nodes[i].GPUs, placement.GPU{Index: g.Index, Model: g.Model, Memory: g.MemoryBytes})
		}
	}
	c := placement.NewCluster(nodes, l.strategy)
	for job, as := range l.v.assigns {
		allocs := make([]placement.Alloc, 0, len(as))
		for _, a := range as {
			i, ok := index[a.nodeName]
			if !ok {
				continue
			}
			r := a.a.GetSpec().GetResources()
			allocs = append(allocs, placement.Alloc{Node: i, CPU: r.GetCpuMillis(), Memory: r.GetMemoryBytes(),
				GPUs: c.GPUPositions(i, a.a.GpuIndices), GPUMemory: shareOf(r)})
		}
		je := l.v.jobs[job]
		live := je != nil && (je.job.State == stScheduled || je.job.State == stRunning)
		preemptible := live && !touched[job] && je.job.GetSpec().GetPreemptible()
		var prio int32
		if live {
			prio = je.job.GetSpec().GetPriority()
		}
		c.Bind(job, prio, preemptible, allocs)
	}
	return c, index
}

// place decides where the queued jobs go, in fair-share order within
// the projects' quotas (services/scheduler/fairshare), and returns the
// transactions that bind them.
func (l *leader) place(now time.Time, touched map[string]bool) ([]*txn, error) {
	var queue []*fairshare.Item
	for id, je := range l.v.jobs {
		if je.job.State == stQueued && !touched[id] {
			queue = append(queue, &fairshare.Item{Req: request(je.job), Project: projectOf(je.job), Seq: seqOf(je.job)})
		}
	}
	l.met.queue.Set(float64(len(queue)))
	if len(queue) == 0 {
		return nil, nil
	}
	c, _ := l.cluster(touched)
	pass := fairshare.NewPass(c, capacity(c), l.quotas())
	for job, as := range l.v.assigns {
		je := l.v.jobs[job]
		if je == nil || len(as) == 0 || (je.job.State != stScheduled && je.job.State != stRunning) {
			continue
		}
		r := request(je.job)
		pass.Running(projectOf(je.job), job, fairshare.Need(&r), seqOf(je.job))
		if touched[job] {
			pass.Keep(job)
		}
	}
	ports := l.usedPorts()
	var txns []*txn
	var err error
	pass.Run(queue, func(d fairshare.Decision) {
		if err != nil {
			return
		}
		je := l.v.jobs[d.Item.Req.Job]
		res := d.Result
		var t *txn
		switch {
		case len(res.Allocs) == 0 && je.job.Reason == res.Reason:
			return
		case len(res.Allocs) == 0:
			next := l.clone(je)
			next.Reason = res.Reason
			t, err = l.write(je, next, "")
		default:
			why := fmt.Sprintf("preempted by job %s (priority %d)", je.job.Id, je.job.GetSpec().GetPriority())
			if d.Reclaimed {
				why = fmt.Sprintf("reclaimed by project %s (within its quota) for job %s", d.Item.Project, je.job.Id)
			}
			t, err = l.bind(je, c, res, ports, now, why)
		}
		if err == nil {
			txns = append(txns, t)
		}
	})
	return txns, err
}

// seqOf orders jobs of one priority and project: by submission.
func seqOf(j *schedulerv1.Job) int64 { return j.GetCreateTime().AsTime().UnixNano() }

// capacity is the cluster's total: what shares are counted against.
func capacity(c *placement.Cluster) fairshare.Vec {
	var v fairshare.Vec
	for _, n := range c.Nodes {
		v.CPU += n.CPU
		v.Memory += n.Memory
		v.GPUs += int64(len(n.GPUs))
		for _, g := range n.GPUs {
			v.GPUMemory += g.Memory
		}
	}
	return v
}

// quotas are the projects' quotas, as the projects' cache has them (none
// before it is loaded).
func (l *leader) quotas() map[string]fairshare.Quota {
	out := map[string]fairshare.Quota{}
	if l.projects == nil {
		return out
	}
	l.projects.Each(func(_ string, p *iamv1.Project) {
		if q := p.GetQuota(); q != nil {
			out[p.GetName()] = fairshare.Quota{Jobs: int(q.GetJobs()), Vec: fairshare.Vec{GPUs: q.GetGpus(),
				GPUMemory: q.GetGpuMemoryBytes(), CPU: q.GetCpuMillis(), Memory: q.GetMemoryBytes()}}
		}
	})
	return out
}

// bind writes the job SCHEDULED with one assignment per worker, and sends
// its victims, if any, back to the queue, in one transaction.
func (l *leader) bind(je *jobEntry, c *placement.Cluster, res placement.Result, ports map[string]map[int32]bool, now time.Time, why string) (*txn, error) {
	t := &txn{}
	for _, victim := range res.Victims {
		ve := l.v.jobs[victim]
		if ve == nil {
			continue
		}
		next := l.clone(ve)
		next.Attempt++
		next.Preemptions++
		next.Nodes = nil
		move(next, stQueued, why, now)
		if err := t.putJob(next, ve.rev, "preempted"); err != nil {
			return nil, err
		}
		l.clear(t, victim)
		l.met.preemptions.Inc()
	}
	j := l.clone(je)
	world := int32(len(res.Allocs))
	master := &c.Nodes[res.Allocs[0].Node]
	port := pickPort(ports, master.Name, l.cfg.MasterPortMin, l.cfg.MasterPortMax)
	nodeRank, localRank := int32(-1), int32(0)
	j.Nodes = nil
	for rank, a := range res.Allocs {
		n := &c.Nodes[a.Node]
		if rank == 0 || a.Node != res.Allocs[rank-1].Node {
			nodeRank++
			localRank = 0
			j.Nodes = append(j.Nodes, n.Name)
		}
		as := &schedulerv1.Assignment{JobId: j.Id, Rank: int32(rank), WorldSize: world, Node: n.Name, Term: l.term,
			Attempt: j.Attempt, Spec: j.Spec, GpuIndices: a.GPUIndices(n), MasterAddr: l.host(master.Name),
			MasterPort: port, NodeRank: nodeRank, LocalRank: localRank, CreateTime: timestamppb.New(now)}
		if err := t.put(schedkeys.Assignment(n.Name, j.Id, int32(rank)), as); err != nil {
			return nil, err
		}
		localRank++
	}
	queued := lastMove(je.job, stQueued)
	move(j, stScheduled, fmt.Sprintf("placed %d worker(s) on %v", world, j.Nodes), now)
	if err := t.putJob(j, je.rev, "scheduled"); err != nil {
		return nil, err
	}
	t.queued = append(t.queued, queued)
	return t, nil
}

// host is the address other workers reach node at: its Host, else the
// host of its agent address, else its name.
func (l *leader) host(node string) string {
	ne := l.v.nodes[node]
	if ne == nil {
		return node
	}
	if ne.node.Host != "" {
		return ne.node.Host
	}
	if h, _, err := net.SplitHostPort(ne.node.Address); err == nil && h != "" {
		return h
	}
	return node
}

// usedPorts collects the rendezvous ports held per master node.
func (l *leader) usedPorts() map[string]map[int32]bool {
	out := map[string]map[int32]bool{}
	for _, as := range l.v.assigns {
		for _, a := range as {
			if a.a.Rank != 0 || a.a.MasterPort == 0 {
				continue
			}
			if out[a.nodeName] == nil {
				out[a.nodeName] = map[int32]bool{}
			}
			out[a.nodeName][a.a.MasterPort] = true
		}
	}
	return out
}

// pickPort takes the lowest free port of the range on node (0 when the
// range is exhausted).
func pickPort(used map[string]map[int32]bool, node string, lo, hi int) int32 {
	if used[node] == nil {
		used[node] = map[int32]bool{}
	}
	for p := int32(lo); p <= int32(hi); p++ {
		if !used[node][p] {
			used[node][p] = true
			return p
		}
	}
	return 0
}
