package scheduler

import (
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	iamv1 "github.com/bmaas/bmaas/api/bmaas/iam/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/events"
	"github.com/bmaas/bmaas/pkg/store"
)

// Scheduler implements the job and node API; every replica serves it.
// Placement and state moves belong to the leader (leader.go).
type Scheduler struct {
	cfg Config
	cli *clientv3.Client
	st  *store.Store
	bus *events.Bus
	pub publisher
	log *slog.Logger
	now func() time.Time
	met *metrics
	// registry returns a registry client; nil skips the registry checks.
	registry func() (registryv1.RegistryServiceClient, error)
	// projects mirrors the projects (pkg/iam's keys), for their quotas;
	// runProjects: the scheduler made it, and runs it.
	projects    *store.Cache[*iamv1.Project]
	runProjects bool
}

func (s *Scheduler) moved(state string) {
	s.met.transitions.WithLabelValues(state).Inc()
}
