// Package fairshare orders a scheduling pass across projects and admits
// jobs within their projects' quotas, as Kueue's and Volcano's fair
// sharing do:
//
//   - Order: by priority, the highest first; among jobs of one priority,
//     the next is taken from the project with the smallest dominant share
//     (its largest share of the cluster's GPUs, GPU memory, CPU or memory
//     in use: DRF), a project whose next job fits its quota before one
//     that would borrow; inside a project first come, first served.
//   - Quota: a project's quota is guaranteed, in the resources it names
//     (a resource left at 0 is neither guaranteed nor limited; a project
//     without any quota, when others have one, only borrows). A job within it is placed
//     on free room, else by preemption (priority), else by reclaiming
//     what other projects borrowed (their newest jobs beyond their own
//     quota), in the same pass. A job beyond it borrows free room only,
//     and waits otherwise with the reason (`over quota: project vision
//     uses 8 of 8 GPUs`). A quota's concurrent jobs are never borrowed.
//   - Reservation: a job that waits for room (it could fit the cluster,
//     not yet) holds that room against jobs of lower priority behind it
//     in the pass, GPU room against GPU jobs and all room for a job
//     without GPUs, so a stream of small jobs cannot starve a gang.
//
// The package is pure: the scheduler's leader feeds it the running jobs
// and the queue of one pass, and persists what it decides.
package fairshare

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/bmaas/bmaas/services/scheduler/placement"
)

// Vec is an amount of the resources quotas and shares count.
type Vec struct {
	GPUs, GPUMemory, CPU, Memory int64
}

func (a Vec) add(b Vec) Vec {
	return Vec{a.GPUs + b.GPUs, a.GPUMemory + b.GPUMemory, a.CPU + b.CPU, a.Memory + b.Memory}
}

func (a Vec) sub(b Vec) Vec {
	return Vec{a.GPUs - b.GPUs, a.GPUMemory - b.GPUMemory, a.CPU - b.CPU, a.Memory - b.Memory}
}

// Need is what a request holds in all: each worker's resources times
// the workers.
func Need(r *placement.Request) Vec {
	w := int64(max(r.Workers, 1))
	return Vec{GPUs: w * int64(r.GPUs), GPUMemory: w * r.GPUMemory, CPU: w * r.CPU, Memory: w * r.Memory}
}

// Quota is a project's guarantee (zero fields guarantee nothing) and its
// limit of concurrent jobs (0: none).
type Quota struct {
	Vec
	Jobs int
}

// Item is one queued job of a pass.
type Item struct {
	Req     placement.Request
	Project string
	// Seq orders jobs of one priority: first come, first served.
	Seq int64
}

// Decision is what the pass decided for one item: placed (Result.Allocs)
// or not, with the reason to show.
type Decision struct {
	Item   *Item
	Result placement.Result
	// Borrowed: placed beyond its project's quota.
	Borrowed bool
	// Reclaimed: its victims ran on capacity their projects borrowed.
	Reclaimed bool
}

// project is one project's state during a pass.
type project struct {
	name    string
	quota   Quota
	quoted  bool
	usage   Vec
	jobs    int
	queue   []*Item
	running []runJob // oldest first
}

type runJob struct {
	job  string
	need Vec
	seq  int64
}

// Pass is one scheduling pass over a cluster.
type Pass struct {
	c        *placement.Cluster
	capacity Vec
	projects map[string]*project
	// owner of every running job.
	owner map[string]*project
	// quotas says whether any project has one (reclaiming applies).
	quotas bool
	// keep are running jobs never reclaimed (changed in this pass).
	keep map[string]bool
}

// Keep exempts a running job from reclaiming.
func (p *Pass) Keep(job string) {
	if p.keep == nil {
		p.keep = map[string]bool{}
	}
	p.keep[job] = true
}

// NewPass starts a pass on c, whose total resources are capacity, with
// the projects' quotas (a project absent has none).
func NewPass(c *placement.Cluster, capacity Vec, quotas map[string]Quota) *Pass {
	p := &Pass{c: c, capacity: capacity, projects: map[string]*project{}, owner: map[string]*project{}}
	for name, q := range quotas {
		pr := p.project(name)
		pr.quota, pr.quoted = q, q != Quota{}
		p.quotas = p.quotas || pr.quoted
	}
	return p
}

func (p *Pass) project(name string) *project {
	pr := p.projects[name]
	if pr == nil {
		pr = &project{name: name}
		p.projects[name] = pr
	}
	return pr
}

// Running records a job already placed (bound in the cluster too) of
// project: what it holds counts in the project's share and quota. Seq
// orders its jobs: the newest are reclaimed first.
func (p *Pass) Running(projectName, job string, need Vec, seq int64) {
	pr := p.project(projectName)
	pr.usage = pr.usage.add(need)
	pr.jobs++
	pr.running = append(pr.running, runJob{job: job, need: need, seq: seq})
	p.owner[job] = pr
}

// share is pr's dominant share of the cluster (DRF).
func (p *Pass) share(pr *project) float64 {
	s := 0.0
	for _, f := range [][2]int64{{pr.usage.GPUs, p.capacity.GPUs}, {pr.usage.GPUMemory, p.capacity.GPUMemory},
		{pr.usage.CPU, p.capacity.CPU}, {pr.usage.Memory, p.capacity.Memory}} {
		if f[1] > 0 {
			s = max(s, float64(f[0])/float64(f[1]))
		}
	}
	return s
}

// within says whether need more fits pr's quota (every resource it
// needs that the quota names), and if not, names the first resource
// beyond it.
func (pr *project) within(need Vec) (bool, string) {
	if !pr.quoted {
		return false, fmt.Sprintf("over quota: project %s has no quota", pr.name)
	}
	after := pr.usage.add(need)
	for _, f := range []struct {
		need, after, quota int64
		what               string
	}{
		{need.GPUs, after.GPUs, pr.quota.GPUs, "GPUs"},
		{need.GPUMemory, after.GPUMemory, pr.quota.GPUMemory, "bytes of GPU memory"},
		{need.CPU, after.CPU, pr.quota.CPU, "millicores of CPU"},
		{need.Memory, after.Memory, pr.quota.Memory, "bytes of memory"},
	} {
		if f.need > 0 && f.quota > 0 && f.after > f.quota {
			return false, fmt.Sprintf("over quota: project %s uses %d of %d %s", pr.name, f.after-f.need, f.quota, f.what)
		}
	}
	return true, ""
}

// Run decides every item of queue, calling decide for each in the order
// decided.
func (p *Pass) Run(queue []*Item, decide func(Decision)) {
	for _, pr := range p.projects {
		slices.SortFunc(pr.running, func(a, b runJob) int { return cmp.Compare(a.seq, b.seq) })
	}
	queue = slices.Clone(queue)
	slices.SortFunc(queue, func(a, b *Item) int {
		return cmp.Or(cmp.Compare(b.Req.Priority, a.Req.Priority), cmp.Compare(a.Seq, b.Seq))
	})
	h := hold{gpu: minPriority, any: minPriority}
	active := make([]*project, 0, len(p.projects))
	for start := 0; start < len(queue); {
		// One priority level: DRF across its projects.
		end := start
		for end < len(queue) && queue[end].Req.Priority == queue[start].Req.Priority {
			end++
		}
		active = active[:0]
		for _, it := range queue[start:end] {
			pr := p.project(it.Project)
			if len(pr.queue) == 0 {
				active = append(active, pr)
			}
			pr.queue = append(pr.queue, it)
		}
		for len(active) > 0 {
			i := p.next(active)
			pr := active[i]
			it := pr.queue[0]
			if pr.queue = pr.queue[1:]; len(pr.queue) == 0 {
				active = slices.Delete(active, i, i+1)
			}
			decide(p.decide(pr, it, &h))
		}
		start = end
	}
}

// next picks the project whose head goes next: within its quota first
// (when quotas apply), then the smallest dominant share, then its name.
func (p *Pass) next(active []*project) int {
	best, bestWithin, bestShare := 0, false, 0.0
	for i, pr := range active {
		w := true
		if p.quotas {
			w, _ = pr.within(Need(&pr.queue[0].Req))
		}
		s := p.share(pr)
		if i == 0 || w && !bestWithin || w == bestWithin && (s < bestShare || s == bestShare && pr.name < active[best].name) {
			best, bestWithin, bestShare = i, w, s
		}
	}
	return best
}

const minPriority = -1 << 31

// hold is the priority of the waiting jobs whose room is held: for GPU
// jobs, and for every job.
type hold struct {
	gpu, any int64
	gpuJob   string
	anyJob   string
}

func (p *Pass) decide(pr *project, it *Item, h *hold) Decision {
	r := &it.Req
	need := Need(r)
	usesGPU := r.GPUs > 0 || r.GPUMemory > 0
	prio := int64(r.Priority)
	if prio < h.any || usesGPU && prio < h.gpu {
		job := h.anyJob
		if usesGPU && prio < h.gpu {
			job = h.gpuJob
		}
		return Decision{Item: it, Result: placement.Result{Reason: "Waiting for capacity: room held for job " + job + " of higher priority"}}
	}
	if pr.quota.Jobs > 0 && pr.jobs >= pr.quota.Jobs {
		return Decision{Item: it, Result: placement.Result{Reason: fmt.Sprintf("over quota: project %s runs %d of %d jobs", pr.name, pr.jobs, pr.quota.Jobs)}}
	}
	within, over := true, ""
	if p.quotas {
		within, over = pr.within(need)
	}
	var res placement.Result
	if within {
		res = p.c.Place(r, true)
		if len(res.Allocs) == 0 && !res.Unschedulable && p.quotas {
			if rec := p.c.PlaceReclaiming(r, func(job string) bool { return !p.keep[job] && p.borrowed(job, pr) }); len(rec.Allocs) > 0 {
				for _, v := range rec.Victims {
					p.stop(v)
				}
				p.admit(pr, it, need)
				return Decision{Item: it, Result: rec, Reclaimed: true}
			}
		}
	} else {
		res = p.c.Place(r, false)
		if len(res.Allocs) == 0 && !res.Unschedulable {
			res.Reason = over + " (waiting for idle capacity to borrow)"
		}
	}
	if len(res.Allocs) == 0 {
		if !res.Unschedulable && (within || !p.quotas) {
			if usesGPU {
				if prio > h.gpu {
					h.gpu, h.gpuJob = prio, r.Job
				}
			} else if prio > h.any {
				h.any, h.anyJob = prio, r.Job
			}
		}
		return Decision{Item: it, Result: res}
	}
	for _, v := range res.Victims {
		p.stop(v)
	}
	p.admit(pr, it, need)
	return Decision{Item: it, Result: res, Borrowed: !within}
}

// admit counts a placed job in its project.
func (p *Pass) admit(pr *project, it *Item, need Vec) {
	pr.usage = pr.usage.add(need)
	pr.jobs++
	pr.running = append(pr.running, runJob{job: it.Req.Job, need: need, seq: it.Seq})
	p.owner[it.Req.Job] = pr
}

// borrowed says whether job runs on capacity its project borrowed (it is
// among its project's newest jobs beyond the project's quota), and is not
// for's own.
func (p *Pass) borrowed(job string, forProject *project) bool {
	pr := p.owner[job]
	if pr == nil || pr == forProject {
		return false
	}
	// The project's newest jobs are the borrowed ones: walk from the
	// newest, giving back until the rest fits the quota.
	rest := pr.usage
	for i := len(pr.running) - 1; i >= 0; i-- {
		if pr.quoted && fits(rest, pr.quota.Vec) {
			return false
		}
		if pr.running[i].job == job {
			return true
		}
		rest = rest.sub(pr.running[i].need)
	}
	return false
}

// fits says whether use is within quota in every resource it names.
func fits(use, quota Vec) bool {
	ok := func(u, q int64) bool { return q == 0 || u <= q }
	return ok(use.GPUs, quota.GPUs) && ok(use.GPUMemory, quota.GPUMemory) && ok(use.CPU, quota.CPU) && ok(use.Memory, quota.Memory)
}

// stop takes a preempted or reclaimed job out of its project's usage.
func (p *Pass) stop(job string) {
	pr := p.owner[job]
	if pr == nil {
		return
	}
	delete(p.owner, job)
	for i, rj := range pr.running {
		if rj.job == job {
			pr.usage = pr.usage.sub(rj.need)
			pr.jobs--
			pr.running = slices.Delete(pr.running, i, i+1)
			return
		}
	}
}
