package monitor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// catchUp is how long a feedback call waits for the payload log to
// deliver a request it has not seen yet (the gateway publishes its
// records in batches a few milliseconds after the answers).
const catchUp = 3 * time.Second

// Submit records feedback for deployment: all of it or, when any item is
// bad (an unknown request id, a count of labels that is not the request's
// rows), none, with an error naming the item's field.
func (m *Monitor) Submit(ctx context.Context, req *evaluatorv1.SubmitFeedbackRequest) (int64, error) {
	if req.GetDeployment() == "" {
		return 0, apierr.Invalid("deployment", "required")
	}
	if len(req.GetFeedback()) == 0 {
		return 0, apierr.Invalid("feedback", "at least one item is required")
	}
	select {
	case <-m.started:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	seen := map[string]bool{}
	for i, f := range req.GetFeedback() {
		field := fmt.Sprintf("feedback[%d]", i)
		switch {
		case f.GetRequestId() == "":
			return 0, apierr.Invalid(field+".request_id", "required")
		case seen[f.GetRequestId()]:
			return 0, apierr.Invalid(field+".request_id", "%s is given twice", f.GetRequestId())
		case len(f.GetLabels()) == 0 && len(f.GetValues()) == 0:
			return 0, apierr.Invalid(field+".labels", "labels (a classifier) or values (a regressor) are required")
		case len(f.GetLabels()) > 0 && len(f.GetValues()) > 0:
			return 0, apierr.Invalid(field+".values", "give labels or values, not both")
		}
		seen[f.GetRequestId()] = true
	}
	preds, err := m.await(ctx, req)
	if err != nil {
		return 0, err
	}
	var rows int64
	items := make([]*evaluatorv1.Feedback, len(req.GetFeedback()))
	for i, f := range req.GetFeedback() {
		if items[i], err = fit(fmt.Sprintf("feedback[%d]", i), f, preds[i]); err != nil {
			return 0, err
		}
		rows += int64(preds[i].rows)
	}
	rec := &evaluatorv1.SubmitFeedbackRequest{Deployment: req.GetDeployment(), Feedback: items}
	data, err := proto.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if _, err := m.js.Publish(ctx, FeedbackSubject+req.GetDeployment(), data); err != nil {
		return 0, fmt.Errorf("publish feedback: %w", err)
	}
	m.mu.Lock()
	for i, f := range items {
		m.applyLocked(preds[i], f)
	}
	m.mu.Unlock()
	return rows, nil
}

// await finds each item's prediction, waiting for the payload log to
// catch up with what was published when one is not there yet.
func (m *Monitor) await(ctx context.Context, req *evaluatorv1.SubmitFeedbackRequest) ([]*prediction, error) {
	deadline := time.Now().Add(catchUp)
	for {
		preds, missing, err := m.lookup(req)
		if err != nil || missing < 0 {
			return preds, err
		}
		f := req.GetFeedback()[missing]
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("feedback[%d].request_id: no logged request %q of deployment %s in the last %s (is payload logging on, with responses?): %w",
				missing, f.GetRequestId(), req.GetDeployment(), m.cfg.Horizon, apierr.ErrNotFound)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lookup returns the predictions, or the index of the first item whose
// request is not known (-1 when all are).
func (m *Monitor) lookup(req *evaluatorv1.SubmitFeedbackRequest) ([]*prediction, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	preds := make([]*prediction, len(req.GetFeedback()))
	for i, f := range req.GetFeedback() {
		p := m.index[req.GetDeployment()+"/"+f.GetRequestId()]
		if p == nil {
			return nil, i, nil
		}
		if p.fed {
			return nil, 0, fmt.Errorf("feedback[%d].request_id: feedback for request %q was already given: %w", i, f.GetRequestId(), apierr.ErrAlreadyExists)
		}
		preds[i] = p
	}
	return preds, -1, nil
}

// fit checks an item against its prediction and returns it in the
// prediction's terms: labels for a classifier, values for a regressor.
func fit(field string, f *evaluatorv1.Feedback, p *prediction) (*evaluatorv1.Feedback, error) {
	out := &evaluatorv1.Feedback{RequestId: f.GetRequestId()}
	n := len(f.GetLabels()) + len(f.GetValues())
	if n != p.rows {
		name := "labels"
		if len(f.GetValues()) > 0 {
			name = "values"
		}
		return nil, apierr.Invalid(field+"."+name, "request %s had %d rows; got %d", f.GetRequestId(), p.rows, n)
	}
	switch {
	case p.labels != nil && len(f.GetLabels()) > 0:
		out.Labels = f.GetLabels()
	case p.labels != nil:
		for _, v := range f.GetValues() {
			out.Labels = append(out.Labels, strconv.FormatFloat(v, 'g', -1, 64))
		}
	case len(f.GetValues()) > 0:
		out.Values = f.GetValues()
	default:
		for _, l := range f.GetLabels() {
			v, err := strconv.ParseFloat(l, 64)
			if err != nil {
				return nil, apierr.Invalid(field+".labels", "the model is a regressor: %q is not a number (give values)", l)
			}
			out.Values = append(out.Values, v)
		}
	}
	return out, nil
}

// applyLocked joins feedback with its prediction in the prediction's
// window (however long ago that was); m.mu is held.
func (m *Monitor) applyLocked(p *prediction, f *evaluatorv1.Feedback) {
	if p == nil || p.fed {
		return
	}
	ws := m.deps[p.deployment]
	w := ws[p.win]
	if w == nil {
		return
	}
	p.fed = true
	for r := range p.rows {
		switch {
		case p.labels != nil && r < len(f.GetLabels()):
			w.perf.truth = append(w.perf.truth, f.GetLabels()[r])
			w.perf.pred = append(w.perf.pred, p.labels[r])
			var pr []float64
			if p.k > 0 {
				pr = p.proba[r*p.k : (r+1)*p.k]
			}
			w.perf.proba = append(w.perf.proba, pr)
		case p.values != nil && r < len(f.GetValues()):
			w.perf.truthV = append(w.perf.truthV, f.GetValues()[r])
			w.perf.predV = append(w.perf.predV, p.values[r])
		}
	}
	w.dirty = true
}

// replayFeedback applies a message of the feedback stream that this
// replica has not applied (another replica's, or one from before a
// restart); feedback whose request the payload log has not delivered yet
// waits for it.
func (m *Monitor) replayFeedback(_ context.Context, data []byte, _ uint64) {
	rec := &evaluatorv1.SubmitFeedbackRequest{}
	if proto.Unmarshal(data, rec) != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range rec.GetFeedback() {
		key := rec.GetDeployment() + "/" + f.GetRequestId()
		if p := m.index[key]; p != nil {
			m.applyLocked(p, f)
		} else if len(m.orphans) < m.cfg.MaxIndexed {
			m.orphans[key] = append(m.orphans[key], f)
		}
	}
}
