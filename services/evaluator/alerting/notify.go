package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/iam"
)

// notifier sends alerts where the configuration says: Alertmanagers
// (their API v2, as Prometheus does: a firing alert is posted again
// every Resend with an endsAt a few resends ahead, a resolved one with
// endsAt now), plain webhooks, and the bus (bmaas.alert.<rule>.<state>).
type notifier struct {
	cfg  Config
	bus  *events.Bus
	log  *slog.Logger
	http *http.Client
}

func newNotifier(cfg Config, bus *events.Bus, log *slog.Logger) *notifier {
	return &notifier{cfg: cfg, bus: bus, log: log, http: &http.Client{Timeout: 10 * time.Second}}
}

// amAlert is one alert of Alertmanager's API v2 (postableAlert).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// send delivers one alert in state and returns a link per receiver (a
// failure is a link of kind error: the alert is sent again at the next
// resend).
func (n *notifier) send(ctx context.Context, r *evaluatorv1.AlertRule, a *evaluatorv1.Alert, state evaluatorv1.AlertState, now time.Time) []*evaluatorv1.AlertLink {
	firstSend := state == evaluatorv1.AlertState_ALERT_STATE_RESOLVED || !hasLink(a, "notification")
	var links []*evaluatorv1.AlertLink
	link := func(kind, ref, msg string) {
		links = append(links, &evaluatorv1.AlertLink{Kind: kind, Ref: ref, Message: msg, Time: timestamppb.New(now)})
	}
	word := stateWord(state)
	am := amAlert{Labels: a.GetLabels(), Annotations: a.GetAnnotations(), StartsAt: a.GetFiringTime().AsTime(),
		EndsAt: now.Add(4 * n.cfg.Resend)}
	if state == evaluatorv1.AlertState_ALERT_STATE_RESOLVED {
		am.EndsAt = now
	}
	if n.cfg.ExternalURL != "" {
		am.GeneratorURL = strings.TrimRight(n.cfg.ExternalURL, "/") + "/v1/alerts/" + a.GetId()
	}
	for _, u := range n.cfg.Alertmanagers {
		err := n.post(ctx, strings.TrimRight(u, "/")+"/api/v2/alerts", []amAlert{am})
		switch {
		case err != nil:
			link("error", u, "alertmanager: "+err.Error())
		case firstSend:
			link("notification", u, "alertmanager: "+word)
		}
	}
	body, _ := protojson.Marshal(&evaluatorv1.Alert{Id: a.GetId(), Rule: a.GetRule(), Deployment: a.GetDeployment(), State: state,
		Value: a.GetValue(), Labels: a.GetLabels(), Annotations: a.GetAnnotations(), PendingTime: a.GetPendingTime(),
		FiringTime: a.GetFiringTime(), ResolvedTime: a.GetResolvedTime()})
	if firstSend {
		for _, u := range n.cfg.Webhooks {
			if err := n.post(ctx, u, json.RawMessage(body)); err != nil {
				link("error", u, "webhook: "+err.Error())
			} else {
				link("notification", u, "webhook: "+word)
			}
		}
		if n.bus != nil {
			ev := events.Event{Kind: events.KindAlert, Key: r.GetName(), Type: word, Data: body,
				Headers: map[string]string{events.HeaderProject: iam.ProjectOfName(r.GetName())}}
			if err := n.bus.Publish(ctx, ev); err != nil {
				link("error", ev.Subject(), "nats: "+err.Error())
			} else {
				link("notification", ev.Subject(), "nats: "+word)
			}
		}
	}
	return links
}

func stateWord(s evaluatorv1.AlertState) string {
	if s == evaluatorv1.AlertState_ALERT_STATE_RESOLVED {
		return "resolved"
	}
	return "firing"
}

func (n *notifier) post(ctx context.Context, url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
