package scheduler

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/scheduler/schedkeys"
)

// Submit validates spec and queues a new job.
func (s *Scheduler) Submit(ctx context.Context, spec *schedulerv1.JobSpec) (*schedulerv1.Job, error) {
	if spec == nil {
		return nil, apierr.Invalid("spec", "required")
	}
	spec = proto.Clone(spec).(*schedulerv1.JobSpec)
	if err := s.normalize(spec); err != nil {
		return nil, err
	}
	if err := s.checkProject(ctx, spec); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(ctx, spec); err != nil {
		return nil, err
	}
	now := s.now()
	j := &schedulerv1.Job{Id: events.NewID(), Spec: spec, CreateTime: timestamppb.New(now), Attempt: 1}
	move(j, schedulerv1.JobState_JOB_STATE_QUEUED, "submitted", now)
	rev, err := s.st.Commit(ctx, []store.Cond{{Key: schedkeys.Job(j.Id)}}, store.Put(schedkeys.Job(j.Id), j))
	if err != nil {
		return nil, err
	}
	s.moved("queued")
	s.pub.job(j, "queued")
	j.Etag = store.Etag(rev)
	return j, nil
}

// Get returns a job.
func (s *Scheduler) Get(ctx context.Context, id string) (*schedulerv1.Job, error) {
	j, _, err := s.get(ctx, id)
	return j, err
}

func (s *Scheduler) get(ctx context.Context, id string) (*schedulerv1.Job, int64, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, 0, apierr.Invalid("id", "not a job id: %q", id)
	}
	var j schedulerv1.Job
	rev, err := s.st.Get(ctx, schedkeys.Job(id), &j)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, apierr.NotFound("job", id)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := may(ctx, &j, authz.Read); err != nil {
		return nil, 0, err
	}
	j.Spec.Project = projectOf(&j)
	j.Etag = store.Etag(rev)
	return &j, rev, nil
}

// projectOf is the project of a job: a job from before projects belongs
// to the default one.
func projectOf(j *schedulerv1.Job) string {
	if p := j.GetSpec().GetProject(); p != "" {
		return p
	}
	return iam.DefaultProject
}

// may checks the caller may do v to j in j's project.
func may(ctx context.Context, j *schedulerv1.Job, v authz.Verb) error {
	return iam.CheckIn(ctx, "jobs", "job", j.GetId(), projectOf(j), v)
}

// checkProject puts the job in the caller's project when it names none,
// and refuses a project that does not exist.
func (s *Scheduler) checkProject(ctx context.Context, spec *schedulerv1.JobSpec) error {
	if spec.Project == "" {
		spec.Project = iam.ProjectFrom(ctx)
	}
	return iam.ProjectExists(ctx, s.st, "spec.project", spec.Project)
}

// List pages through the jobs, oldest first, filtered.
func (s *Scheduler) List(ctx context.Context, req *schedulerv1.ListJobsRequest) (*schedulerv1.ListJobsResponse, error) {
	size, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	sel, err := parseSelector(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	caller := iam.FromContext(ctx)
	keep := func(j *schedulerv1.Job) bool {
		return (req.GetProject() == "" || projectOf(j) == req.GetProject()) &&
			caller.Decide(authz.Permission{Resource: "jobs", Verb: authz.Read}, projectOf(j), "") == iam.Allow && (req.GetState() == schedulerv1.JobState_JOB_STATE_UNSPECIFIED || j.State == req.GetState()) &&
			(req.GetModel() == "" || j.GetSpec().GetModel() == req.GetModel()) && sel.matches(j.GetSpec().GetLabels())
	}
	items, next, err := store.List(ctx, s.st, schedkeys.JobsPrefix, size, req.GetPageToken(),
		func() *schedulerv1.Job { return &schedulerv1.Job{} }, keep)
	if err != nil {
		return nil, err
	}
	out := &schedulerv1.ListJobsResponse{NextPageToken: next, Jobs: make([]*schedulerv1.Job, len(items))}
	for i, it := range items {
		it.Msg.Etag = store.Etag(it.Rev)
		if it.Msg.Spec != nil {
			it.Msg.Spec.Project = projectOf(it.Msg)
		}
		out.Jobs[i] = it.Msg
	}
	return out, nil
}

// Cancel marks a job CANCELLED; the leader then takes its assignments
// away, which stops its workers. Cancelling a cancelled job is a no-op.
func (s *Scheduler) Cancel(ctx context.Context, id, reason string) (*schedulerv1.Job, error) {
	if reason == "" {
		reason = "cancelled by request"
	}
	for {
		j, rev, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := may(ctx, j, authz.Write); err != nil {
			return nil, err
		}
		switch j.State {
		case schedulerv1.JobState_JOB_STATE_CANCELLED:
			return j, nil
		case schedulerv1.JobState_JOB_STATE_SUCCEEDED, schedulerv1.JobState_JOB_STATE_FAILED:
			return nil, apierr.Precondition("job %s already ended %s", id, stateName(j.State))
		}
		move(j, schedulerv1.JobState_JOB_STATE_CANCELLED, reason, s.now())
		j.Etag = ""
		rev, err = s.st.Commit(ctx, []store.Cond{{Key: schedkeys.Job(id), Rev: rev}}, store.Put(schedkeys.Job(id), j))
		if store.IsStale(err) {
			continue // the leader moved it meanwhile: read again
		}
		if err != nil {
			return nil, err
		}
		s.moved("cancelled")
		s.pub.job(j, "cancelled")
		j.Etag = store.Etag(rev)
		return j, nil
	}
}

// selector is a parsed label selector: "k=v,k!=v,k,!k".
type selector []struct {
	key, val string
	op       byte // '=', '!', 'e' (exists), 'n' (absent)
}

func parseSelector(s string) (selector, error) {
	var out selector
	for term := range strings.SplitSeq(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		var k, v string
		var op byte
		switch {
		case strings.Contains(term, "!="):
			k, v, _ = strings.Cut(term, "!=")
			op = '!'
		case strings.Contains(term, "="):
			k, v, _ = strings.Cut(strings.Replace(term, "==", "=", 1), "=")
			op = '='
		case strings.HasPrefix(term, "!"):
			k, op = term[1:], 'n'
		default:
			k, op = term, 'e'
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || !labelKey.MatchString(k) {
			return nil, apierr.Invalid("label_selector", "bad term %q (want k=v, k!=v, k or !k, comma-separated)", term)
		}
		out = append(out, struct {
			key, val string
			op       byte
		}{k, v, op})
	}
	return out, nil
}

func (sel selector) matches(labels map[string]string) bool {
	for _, t := range sel {
		v, ok := labels[t.key]
		switch t.op {
		case '=':
			if !ok || v != t.val {
				return false
			}
		case '!':
			if ok && v == t.val {
				return false
			}
		case 'e':
			if !ok {
				return false
			}
		case 'n':
			if ok {
				return false
			}
		}
	}
	return true
}
