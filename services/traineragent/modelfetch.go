package traineragent

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/chunkstream"
	"github.com/bmaas/bmaas/pkg/modelcache"
)

// openModelCache opens the node's model cache under the work directory,
// with its metrics (labelled with the node) on the agent's registry.
// Metrics that cannot be registered (an agent of the same node name in
// the process) are left out with a warning.
func (s *Service) openModelCache() (*modelcache.Cache, error) {
	o := modelcache.Options{Dir: s.cfg.modelCacheDir(), MaxBytes: s.cfg.ModelCacheBytes, Now: s.deps.Now}
	if s.deps.Registerer != nil {
		o.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"node": s.cfg.Node}, s.deps.Registerer)
	}
	c, err := modelcache.Open(o)
	if err != nil && o.Registerer != nil {
		s.log.Warn("model cache metrics", "err", err)
		o.Registerer = nil
		c, err = modelcache.Open(o)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer-agent.model-cache-bytes: %w", err)
	}
	return c, nil
}

// downloadModel puts the version's artifact in the node's model cache
// (downloading it only when the cache lacks its sha256, once however
// many tasks ask at the same time) and returns the version and the
// cached file. The file is read-only and shared: a task must not change
// it. The worker holds the entry until its task ends.
func (w *worker) downloadModel(model string, version int64) (*registryv1.ModelVersion, string, error) {
	h, v, err := w.cachedModel(model, version)
	if err != nil {
		return nil, "", err
	}
	return v, h.Path(), nil
}

// cachedModel is downloadModel's entry: the handle the worker holds.
func (w *worker) cachedModel(model string, version int64) (*modelcache.Handle, *registryv1.ModelVersion, error) {
	ctx, cancel := contextFor(w)
	defer cancel()
	ref := strconv.FormatInt(version, 10)
	reg := w.s.registry().c
	got, err := reg.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: ref}, waitReady)
	if err != nil {
		return nil, nil, fmt.Errorf("download %s version %d: %w", model, version, err)
	}
	v := got.GetVersion()
	if v.GetStatus() != registryv1.VersionStatus_VERSION_STATUS_READY {
		return nil, nil, fmt.Errorf("download %s version %d: the version is %s, not READY", model, version, v.GetStatus())
	}
	h, err := w.s.cache.Get(ctx, v.GetSha256(), v.GetSizeBytes(), func(dst io.Writer) error {
		st, err := reg.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: model, Version: ref}, waitReady)
		if err == nil {
			err = chunkstream.RecvAll(func() ([]byte, error) {
				m, err := st.Recv()
				return m.GetChunk(), err
			}, dst)
		}
		if ctx.Err() != nil {
			return ctx.Err() // this task gave up: another may download
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("download %s version %d: %w", model, version, err)
	}
	w.models.hold(h)
	return h, v, nil
}

// unpackedModel returns the tree of an archive artifact that
// downloadModel returned (path), unpacked once per cache entry within
// the agent's extraction limits and shared by every task of the node.
func (w *worker) unpackedModel(path string) (string, error) {
	h := w.models.byPath(path)
	if h == nil {
		return "", fmt.Errorf("unpack %s: not a model this task holds", path)
	}
	lim := extractLimits{bytes: w.s.cfg.MaxExtractBytes, entries: w.s.cfg.MaxExtractEntries}
	return h.Unpacked(func(src, dst string) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return extractTarGz(f, dst, lim)
	})
}

// modelDir is what a sandbox binds read-only to show a model path that
// downloadModel returned: its cache entry's directory ("" for a path
// outside the cache).
func (w *worker) modelDir(path string) string {
	if h := w.models.byPath(path); h != nil {
		return h.Dir()
	}
	return ""
}

// modelHolds are the cache entries a worker holds until its task ends.
type modelHolds struct {
	mu sync.Mutex
	hs []*modelcache.Handle
}

func (m *modelHolds) hold(h *modelcache.Handle) {
	m.mu.Lock()
	m.hs = append(m.hs, h)
	m.mu.Unlock()
}

// byPath is the held entry whose artifact or unpacked tree path is, or nil.
func (m *modelHolds) byPath(path string) *modelcache.Handle {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.hs {
		if path == h.Path() || within(path, h.Dir()) {
			return h
		}
	}
	return nil
}

// release gives every held entry back to the cache.
func (m *modelHolds) release() {
	m.mu.Lock()
	hs := m.hs
	m.hs = nil
	m.mu.Unlock()
	for _, h := range hs {
		h.Release()
	}
}
