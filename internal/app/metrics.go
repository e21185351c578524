package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/bmaas/bmaas/pkg/iam"
)

// metricsHandler serves the process's metrics: every series to the
// platform itself and to a cluster-admin (and to anyone when the
// platform asks no token); to any other identity, only the series about
// what it may see: a series labelled with a deployment of a project it
// has no role in, or with a job (whose project the series does not say),
// is left out.
func metricsHandler(reg *prometheus.Registry) http.Handler {
	opts := promhttp.HandlerOpts{Registry: reg}
	all := promhttp.HandlerFor(reg, opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := iam.FromContext(r.Context())
		if p == nil || p.ClusterAdmin() {
			all.ServeHTTP(w, r)
			return
		}
		seen := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			mfs, err := reg.Gather()
			return visibleSeries(mfs, p), err
		})
		promhttp.HandlerFor(seen, opts).ServeHTTP(w, r)
	})
}

// visibleSeries keeps the series of mfs that p may see (in place).
func visibleSeries(mfs []*dto.MetricFamily, p *iam.Principal) []*dto.MetricFamily {
	out := mfs[:0]
	for _, mf := range mfs {
		kept := mf.Metric[:0]
		for _, m := range mf.Metric {
			if seriesVisible(m, p) {
				kept = append(kept, m)
			}
		}
		if mf.Metric = kept; len(kept) > 0 {
			out = append(out, mf)
		}
	}
	return out
}

func seriesVisible(m *dto.Metric, p *iam.Principal) bool {
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "deployment":
			if p.RoleIn(iam.ProjectOfName(l.GetValue())) == 0 {
				return false
			}
		case "job":
			return false
		}
	}
	return true
}
