package monitor

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// versionInfo is what the monitor needs of a deployed version: its
// signature, its training statistics by column and the training target's.
type versionInfo struct {
	model   string
	version int64
	sig     *commonv1.Signature
	stats   map[string]*commonv1.ColumnStats
	inputs  []string // the signature's input columns, in order
	target  *commonv1.ColumnStats
	classes []string // a classifier's labels, in order
}

func newVersionInfo(v *registryv1.ModelVersion) *versionInfo {
	vi := &versionInfo{model: v.GetModel(), version: v.GetVersion(), sig: v.GetSignature(), stats: map[string]*commonv1.ColumnStats{}}
	in := map[string]bool{}
	for _, spec := range v.GetSignature().GetInputs() {
		for _, c := range spec.GetColumns() {
			vi.inputs = append(vi.inputs, c)
			in[c] = true
		}
	}
	for _, spec := range v.GetSignature().GetOutputs() {
		if len(spec.GetLabels()) > 0 && vi.classes == nil {
			vi.classes = spec.GetLabels()
		}
	}
	var rest []*commonv1.ColumnStats
	for _, c := range v.GetTrainingStats().GetColumns() {
		vi.stats[c.GetName()] = c
		if !in[c.GetName()] {
			rest = append(rest, c)
		}
	}
	// The training data's one column that is no input is the target.
	if len(rest) == 1 {
		vi.target = rest[0]
	}
	return vi
}

func (v *versionInfo) kind(column string) commonv1.ValueKind {
	return v.stats[column].GetKind()
}

// classIndex maps labels to class indices: the signature's order, then
// labels as they come.
func (v *versionInfo) classIndex() map[string]int {
	idx := make(map[string]int, len(v.classes))
	for i, c := range v.classes {
		idx[c] = i
	}
	return idx
}

// numericTarget says whether the target's statistics are numeric (so the
// predicted labels compare as numbers).
func (v *versionInfo) numericTarget(labels []string) bool {
	if v.target.GetKind() != commonv1.ValueKind_VALUE_KIND_NUMERIC {
		return false
	}
	for _, l := range labels {
		if _, err := strconv.ParseFloat(l, 64); err != nil {
			return false
		}
	}
	return true
}

// Versions finds a deployment's version (the monitor asks the gateway for
// the deployment's model and the registry for the version).
type Versions func(ctx context.Context, deployment string, version int64) (*registryv1.ModelVersion, error)

// versionCache remembers the versions met: a version never changes.
type versionCache struct {
	get Versions
	mu  sync.Mutex
	m   map[string]*versionInfo
}

// cached is the version if it was met before (nil otherwise).
func (c *versionCache) cached(deployment string, version int64) *versionInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[fmt.Sprintf("%s@%d", deployment, version)]
}

func (c *versionCache) lookup(ctx context.Context, deployment string, version int64) (*versionInfo, error) {
	if vi := c.cached(deployment, version); vi != nil {
		return vi, nil
	}
	key := fmt.Sprintf("%s@%d", deployment, version)
	v, err := c.get(ctx, deployment, version)
	if err != nil {
		return nil, fmt.Errorf("version %d of deployment %s: %w", version, deployment, err)
	}
	vi := newVersionInfo(v)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*versionInfo{}
	}
	c.m[key] = vi
	c.mu.Unlock()
	return vi, nil
}
