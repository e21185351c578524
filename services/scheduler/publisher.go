package scheduler

import (
	"google.golang.org/protobuf/encoding/protojson"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/events"
)

// publisher sends job events (bmaas.job.<id>.<state>) after their change
// committed. A lost event is only logged: the state is in etcd, and no
// part of bmaas acts on a job event (the evaluator's experiment loop
// wakes on a watch of the job keys and on a timer, and reads each trial's
// job with GetJob; a subscriber outside bmaas can do the same).
type publisher struct {
	bus *events.Bus
	log interface {
		Warn(msg string, args ...any)
	}
}

func (p publisher) job(j *schedulerv1.Job, typ string) {
	if p.bus == nil {
		return
	}
	data, err := protojson.Marshal(j)
	if err != nil {
		p.log.Warn("encode event", "job", j.Id, "err", err)
		return
	}
	e := events.Event{Kind: events.KindJob, Key: j.Id, Type: typ, Time: j.GetUpdateTime().AsTime(), Data: data,
		Headers: map[string]string{"Content-Type": "application/json", "Bmaas-Type": "bmaas.scheduler.v1.Job",
			events.HeaderProject: projectOf(j)}}
	if err := p.bus.PublishAsync(e); err != nil {
		p.log.Warn("publish event", "job", j.Id, "type", typ, "err", err)
	}
}

func (p publisher) all(evs []jobEvent) {
	for _, e := range evs {
		p.job(e.job, e.typ)
	}
}
