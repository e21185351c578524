package iam

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/authz"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/bmaas/bmaas/pkg/store"
)

// auditHandler is the AuditService adapter.
type auditHandler struct {
	iamv1.UnimplementedAuditServiceServer
	s *Service
}

// ListAuditRecords reads the trail from since (default: the last day),
// oldest first; the page token is the stream sequence to go on from.
func (h *auditHandler) ListAuditRecords(ctx context.Context, req *iamv1.ListAuditRecordsRequest) (*iamv1.ListAuditRecordsResponse, error) {
	n, err := store.PageSize("page_size", req.GetPageSize())
	if err != nil {
		return nil, err
	}
	caller := principal(ctx)
	switch {
	case caller.ClusterAdmin():
	case req.GetProject() == "":
		return nil, apierr.Invalid("project", "required: only a cluster-admin reads the whole trail")
	case caller.RoleIn(req.GetProject()) < authz.ProjectAdmin:
		return nil, apierr.Denied("%s may not read the audit trail of project %q: that needs its admin role", caller.Name(), req.GetProject())
	}
	if h.s.js == nil {
		return nil, apierr.Precondition("the audit trail needs NATS JetStream, which this process has not")
	}
	subject := iam.AuditSubjects
	if req.GetProject() != "" {
		subject = iam.AuditSubjectOf(req.GetProject())
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if tok := req.GetPageToken(); tok != "" {
		seq, err := strconv.ParseUint(tok, 10, 64)
		if err != nil || seq == 0 {
			return nil, apierr.Invalid("page_token", "not a token of this list")
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
	} else {
		since := h.s.now().Add(-24 * time.Hour)
		if req.GetSince() != nil {
			since = req.GetSince().AsTime()
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	out := &iamv1.ListAuditRecordsResponse{}
	err = events.ReadRange(ctx, h.s.js, iam.AuditStream, subject, cfg, func(data []byte, seq uint64) (bool, error) {
		r := &iamv1.AuditRecord{}
		if err := proto.Unmarshal(data, r); err != nil {
			return true, nil
		}
		if req.GetIdentity() != "" && r.GetIdentity() != req.GetIdentity() || req.GetDenied() && r.GetCode() == "OK" {
			return true, nil
		}
		if len(out.Records) == n {
			out.NextPageToken = strconv.FormatUint(seq, 10)
			return false, nil
		}
		out.Records = append(out.Records, r)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", iam.AuditStream, err)
	}
	return out, nil
}
