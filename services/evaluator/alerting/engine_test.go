//go:build integration

package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// fakeSource serves one window per deployment, settable.
type fakeSource struct {
	mu sync.Mutex
	w  *evaluatorv1.MonitorWindow
}

func (f *fakeSource) Latest(string, int64) *evaluatorv1.MonitorWindow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w
}

func (f *fakeSource) set(share float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.w = &evaluatorv1.MonitorWindow{Rows: 100, DriftShare: share, Drift: []*evaluatorv1.ColumnDrift{{Column: "a", Score: share}}}
}

// receiver records what is posted to it, by path.
type receiver struct {
	mu   sync.Mutex
	got  map[string][][]byte
	srv  *httptest.Server
	fail bool
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		r.got[req.URL.Path] = append(r.got[req.URL.Path], b)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) posts(path string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got[path]...)
}

// TestRuleLifecycle: a rule goes inactive, pending, inactive (the
// pending alert dropped), pending, firing (notified to Alertmanager, a
// webhook and NATS; the action run once), firing again within the resend
// (sent again to Alertmanager only), resolved (notified), and a second
// firing within the cool-down skips the action and says why.
func TestRuleLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cli := testenv.EtcdClient(t)
	nc := testenv.NATSConn(t)
	bus, err := events.NewBus(ctx, nc, events.Config{}, nil)
	require.NoError(t, err)
	sub := make(chan *nats.Msg, 16)
	s, err := nc.ChanSubscribe("bmaas.alert.>", sub)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Unsubscribe() })

	am, hook := newReceiver(t), newReceiver(t)
	src := &fakeSource{}
	now := time.Unix(1_800_000_000, 0)
	var acted int
	e := New(Config{Interval: time.Second, Resend: time.Minute, Alertmanagers: []string{am.srv.URL}, Webhooks: []string{hook.srv.URL + "/hook"}, MinRows: 10},
		Deps{Store: store.New(cli), Bus: bus, Source: src, Now: func() time.Time { return now },
			Act: func(context.Context, *evaluatorv1.AlertRule, *evaluatorv1.Alert) ([]*evaluatorv1.AlertLink, error) {
				acted++
				return []*evaluatorv1.AlertLink{{Kind: "job", Ref: "j1"}}, nil
			}})
	fence := clientv3.Compare(clientv3.CreateRevision("/no/such/key"), "=", 0)
	_, err = e.Create(ctx, &evaluatorv1.AlertRule{Name: "drift", Deployment: "iris", Series: "drift_share",
		Comparison: evaluatorv1.Comparison_COMPARISON_GREATER, Threshold: 0.3, For: durationpb.New(10 * time.Second),
		Labels: map[string]string{"team": "ml"}, Action: &evaluatorv1.AlertAction{Kind: "retrain", CoolDown: durationpb.New(time.Hour)}})
	require.NoError(t, err)
	step := func(share float64, advance time.Duration) *evaluatorv1.AlertRule {
		t.Helper()
		now = now.Add(advance)
		src.set(share)
		e.Evaluate(ctx, fence)
		r, err := e.Get(ctx, "drift")
		require.NoError(t, err)
		return r
	}
	alerts := func() []*evaluatorv1.Alert {
		resp, err := e.Alerts(ctx, &evaluatorv1.ListAlertsRequest{Rule: "drift"})
		require.NoError(t, err)
		return resp.Alerts
	}

	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_INACTIVE, step(0.1, 0).State)
	r := step(0.5, time.Second)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_PENDING, r.State)
	require.Len(t, alerts(), 1)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_PENDING, step(0.5, 5*time.Second).State)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_INACTIVE, step(0.1, time.Second).State)
	require.Empty(t, alerts(), "an alert that never fired leaves no history")

	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_PENDING, step(0.6, time.Second).State)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_PENDING, step(0.6, 9*time.Second).State)
	r = step(0.7, time.Second)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_FIRING, r.State)
	require.Equal(t, 1, acted)
	a, err := e.Alert(ctx, r.Alert)
	require.NoError(t, err)
	require.Equal(t, 0.7, a.Value)
	require.Equal(t, "ml", a.Labels["team"])
	require.Equal(t, "drift", a.Labels["alertname"])
	require.True(t, hasLink(a, "job"))

	var posted []struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	}
	require.Len(t, am.posts("/api/v2/alerts"), 1)
	require.NoError(t, json.Unmarshal(am.posts("/api/v2/alerts")[0], &posted))
	require.Equal(t, "drift", posted[0].Labels["alertname"])
	require.True(t, posted[0].EndsAt.After(now), "a firing alert ends in the future")
	require.Len(t, hook.posts("/hook"), 1)
	require.Equal(t, "bmaas.alert.drift.firing", next(t, sub).Subject, "%v", a.Links)

	// Still firing: Alertmanager hears it again after the resend, the
	// webhook does not.
	step(0.7, 30*time.Second)
	require.Len(t, am.posts("/api/v2/alerts"), 1)
	step(0.7, 31*time.Second)
	require.Len(t, am.posts("/api/v2/alerts"), 2)
	require.Len(t, hook.posts("/hook"), 1)

	r = step(0.1, time.Second)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_INACTIVE, r.State)
	a, err = e.Alert(ctx, a.Id)
	require.NoError(t, err)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_RESOLVED, a.State)
	require.NoError(t, json.Unmarshal(am.posts("/api/v2/alerts")[2], &posted))
	require.True(t, posted[0].EndsAt.Equal(now), "a resolved alert ends now")
	require.Len(t, hook.posts("/hook"), 2)
	require.Contains(t, string(hook.posts("/hook")[1]), "ALERT_STATE_RESOLVED")
	require.Equal(t, "bmaas.alert.drift.resolved", next(t, sub).Subject)

	// Firing again within the hour: no second retraining, and the alert
	// says why; an Alertmanager that is down is an error link, not a
	// lost alert.
	am.fail = true
	step(0.8, time.Second)
	r = step(0.8, 11*time.Second)
	require.Equal(t, evaluatorv1.AlertState_ALERT_STATE_FIRING, r.State)
	require.Equal(t, 1, acted)
	a, err = e.Alert(ctx, r.Alert)
	require.NoError(t, err)
	require.True(t, hasLink(a, "skipped"), "%v", a.Links)
	require.True(t, hasLink(a, "error"), "%v", a.Links)
	require.Len(t, alerts(), 2)
	require.Equal(t, a.Id, alerts()[0].Id, "newest first")
	require.Equal(t, timestamppb.New(now).AsTime(), a.FiringTime.AsTime())
}

func next(t *testing.T, sub chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-sub:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message on bmaas.alert.>")
		return nil
	}
}
