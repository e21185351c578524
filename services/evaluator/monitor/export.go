package monitor

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/events"
)

// Upload stores data as a new version of dataset name and returns it.
type Upload func(ctx context.Context, name, filename string, data []byte) (int64, error)

// payloadSubject is where the gateway logs a deployment's records.
const payloadSubject = "bmaas.payloads."

// Export makes a CSV of deployment's logged requests in [since, until)
// joined with their feedback, read from the streams themselves (so it
// reaches back as far as they keep records, past the monitor's horizon),
// and uploads it as a version of the named dataset.
func (m *Monitor) Export(ctx context.Context, req *evaluatorv1.CreateDatasetFromPayloadsRequest, upload Upload) (*evaluatorv1.CreateDatasetFromPayloadsResponse, error) {
	switch {
	case req.GetDeployment() == "":
		return nil, apierr.Invalid("deployment", "required")
	case req.GetDataset() == "":
		return nil, apierr.Invalid("dataset", "required: the dataset the rows become a version of")
	}
	until := m.now()
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	since := until.Add(-time.Hour)
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	if !since.Before(until) {
		return nil, apierr.Invalid("since", "%s is not before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	truth := map[string]*evaluatorv1.Feedback{}
	err := m.scan(ctx, FeedbackStream, FeedbackSubject+req.GetDeployment(), since, func(data []byte) bool {
		rec := &evaluatorv1.SubmitFeedbackRequest{}
		if proto.Unmarshal(data, rec) == nil {
			for _, f := range rec.GetFeedback() {
				truth[f.GetRequestId()] = f
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	out := &evaluatorv1.CreateDatasetFromPayloadsResponse{Dataset: req.GetDataset()}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	var header []string
	err = m.scan(ctx, PayloadStream, payloadSubject+req.GetDeployment(), since, func(data []byte) bool {
		b := &gatewayv1.PayloadBatch{}
		if proto.Unmarshal(data, b) != nil {
			return true
		}
		for _, r := range b.GetRecords() {
			t := r.GetTime().AsTime()
			if t.Before(since) {
				continue
			}
			if !t.Before(until) {
				return false
			}
			if r.GetStatus() >= 400 || r.GetVersion() == 0 || len(r.GetRequest()) == 0 {
				continue
			}
			out.Requests++
			vi, err := m.versions.lookup(ctx, r.GetDeployment(), r.GetVersion())
			if err != nil {
				continue
			}
			d, err := decode(r, vi, true)
			if err != nil || d.rows == 0 {
				continue
			}
			if header == nil {
				header = append(append([]string{}, vi.inputs...), targetName(vi))
				_ = w.Write(header)
			}
			f := truth[r.GetRequestId()]
			for row := range d.rows {
				y, ok := label(f, row, d.rows)
				if !ok && !req.GetIncludeUnlabelled() {
					continue
				}
				rec := make([]string, 0, len(header))
				for _, c := range header[:len(header)-1] {
					rec = append(rec, cell(d, c, row))
				}
				_ = w.Write(append(rec, y))
				out.Rows++
				if ok {
					out.LabelledRows++
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	w.Flush()
	if out.Rows == 0 {
		return nil, apierr.Precondition("deployment %s logged no request with feedback between %s and %s (%d requests read; give feedback, or include_unlabelled)",
			req.GetDeployment(), since.Format(time.RFC3339), until.Format(time.RFC3339), out.Requests)
	}
	v, err := upload(ctx, req.GetDataset(), req.GetDeployment()+"-payloads.csv", buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("upload dataset %s: %w", req.GetDataset(), err)
	}
	out.Version = v
	return out, nil
}

// targetName is the training target's column name ("target" when the
// version's statistics do not say).
func targetName(vi *versionInfo) string {
	if vi.target != nil {
		return vi.target.GetName()
	}
	return "target"
}

// label is row's ground truth in f, if f gives it.
func label(f *evaluatorv1.Feedback, row, rows int) (string, bool) {
	switch {
	case f == nil:
		return "", false
	case len(f.GetLabels()) == rows:
		return f.GetLabels()[row], true
	case len(f.GetValues()) == rows:
		return strconv.FormatFloat(f.GetValues()[row], 'g', -1, 64), true
	}
	return "", false
}

// cell is column c of row as CSV text (missing is empty).
func cell(d *decoded, c string, row int) string {
	if xs, ok := d.num[c]; ok && row < len(xs) {
		if math.IsNaN(xs[row]) {
			return ""
		}
		return strconv.FormatFloat(xs[row], 'g', -1, 64)
	}
	if xs, ok := d.cat[c]; ok && row < len(xs) {
		return xs[row]
	}
	return ""
}

// scan reads subject of stream from since (a second early: the gateway
// publishes a batch within milliseconds of its first record) to the last
// message there now, handing each message to fn until it says stop.
func (m *Monitor) scan(ctx context.Context, stream, subject string, since time.Time, fn func([]byte) bool) error {
	start := since.Add(-time.Second)
	return events.ReadRange(ctx, m.js, stream, subject,
		jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start},
		func(data []byte, _ uint64) (bool, error) { return fn(data), nil })
}
