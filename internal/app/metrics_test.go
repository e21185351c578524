package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	"github.com/bmaas/bmaas/pkg/iam"
)

// An identity reads the series of the projects it has a role in, and
// the cluster's own; a deployment of another project, or a job's task,
// is not in what it reads. A cluster-admin, and anyone where the platform
// asks no token, reads every series.
func TestMetricsShowWhatTheCallerSees(t *testing.T) {
	reg := prometheus.NewRegistry()
	ttft := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ttft_total"}, []string{"deployment"})
	task := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "task_bytes"}, []string{"uuid", "job"})
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cluster_up"})
	reg.MustRegister(ttft, task, up)
	ttft.WithLabelValues("chat").Inc()
	ttft.WithLabelValues("vision/detect").Inc()
	task.WithLabelValues("GPU-1", "j-123").Set(1)
	up.Set(1)

	scrape := func(p *iam.Principal) string {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if p != nil {
			r = r.WithContext(iam.WithCaller(context.Background(), &iam.Caller{Principal: p}))
		}
		w := httptest.NewRecorder()
		metricsHandler(reg).ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code)
		return w.Body.String()
	}
	principal := func(bs ...*iamv1.Binding) *iam.Principal {
		p, err := iam.NewPrincipal(&iamv1.Token{Id: "t", Identity: "x", Bindings: bs})
		require.NoError(t, err)
		return p
	}

	for _, all := range []string{scrape(nil), scrape(principal(&iamv1.Binding{Project: iam.AllProjects, Role: "cluster-admin"}))} {
		require.Contains(t, all, `ttft_total{deployment="chat"}`)
		require.Contains(t, all, `ttft_total{deployment="vision/detect"}`)
		require.Contains(t, all, `job="j-123"`)
	}
	vision := scrape(principal(&iamv1.Binding{Project: "vision", Role: "viewer"}))
	require.Contains(t, vision, `ttft_total{deployment="vision/detect"}`)
	require.NotContains(t, vision, `deployment="chat"`)
	require.NotContains(t, vision, "j-123")
	require.Contains(t, vision, "cluster_up 1")
	def := scrape(principal(&iamv1.Binding{Project: "default", Role: "editor"}))
	require.Contains(t, def, `ttft_total{deployment="chat"}`)
	require.NotContains(t, def, "vision/detect")
}
