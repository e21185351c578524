package registry

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

// A model keeps three numbers about its versions, changed in the same
// transaction as the version keys (modifyModel): latest_version, the
// newest version it has (what `latest` names, every stored version being
// READY); version_count; and last_assigned_version, the highest number
// ever handed out, so that a deleted number is never given again.

// assignVersion numbers a new version and counts it.
func (r *Registry) assignVersion(ctx context.Context, m *registryv1.Model) (int64, error) {
	if err := r.upgradeCounts(ctx, m); err != nil {
		return 0, err
	}
	m.LastAssignedVersion++
	m.LatestVersion = m.LastAssignedVersion
	m.VersionCount++
	return m.LastAssignedVersion, nil
}

// forgetVersion uncounts a version being deleted; when it was the newest,
// the newest remaining one becomes the latest.
func (r *Registry) forgetVersion(ctx context.Context, m *registryv1.Model, version int64) error {
	if err := r.upgradeCounts(ctx, m); err != nil {
		return err
	}
	m.VersionCount = max(0, m.VersionCount-1)
	if version != m.LatestVersion {
		return nil
	}
	resp, err := r.st.Client().Get(ctx, versionsPrefix(m.Name), clientv3.WithRange(versionKey(m.Name, version)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("versions of %s before %d: %w", m.Name, version, err)
	}
	m.LatestVersion = 0
	if len(resp.Kvs) > 0 {
		n, err := parseVersionKey(string(resp.Kvs[0].Key), m.Name)
		if err != nil {
			return err
		}
		m.LatestVersion = n
	}
	return nil
}

// upgradeCounts fills the counts of a model stored before they existed,
// when latest_version was the highest number handed out.
func (r *Registry) upgradeCounts(ctx context.Context, m *registryv1.Model) error {
	if m.LastAssignedVersion != 0 || m.LatestVersion == 0 {
		return nil
	}
	m.LastAssignedVersion = m.LatestVersion
	resp, err := r.st.Client().Get(ctx, versionsPrefix(m.Name), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("versions of %s: %w", m.Name, err)
	}
	m.VersionCount, m.LatestVersion = int64(len(resp.Kvs)), 0
	if len(resp.Kvs) > 0 {
		n, err := parseVersionKey(string(resp.Kvs[0].Key), m.Name)
		if err != nil {
			return err
		}
		m.LatestVersion = n
	}
	return nil
}

// parseVersionKey reads the version number of a version key.
func parseVersionKey(key, model string) (int64, error) {
	var n int64
	suffix := key[len(versionsPrefix(model)):]
	if _, err := fmt.Sscanf(suffix, "%d", &n); err != nil || versionSuffix(n) != suffix {
		return 0, fmt.Errorf("version key %q of %s: not a version number", key, model)
	}
	return n, nil
}
