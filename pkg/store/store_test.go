//go:build integration

package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	ctx := t.Context()
	key := Key("models", "iris")

	rev, err := s.Commit(ctx, []Cond{{Key: key}}, Put(key, &registryv1.Model{Name: "iris"}))
	require.NoError(t, err)
	_, err = s.Commit(ctx, []Cond{{Key: key}}, Put(key, &registryv1.Model{Name: "iris"}))
	require.ErrorIs(t, err, apierr.ErrConflict, "create over an existing key")

	var m registryv1.Model
	got, err := s.Get(ctx, key, &m)
	require.NoError(t, err)
	require.Equal(t, rev, got)

	// Many writers race from the same read: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Commit(ctx, []Cond{{Key: key, Rev: rev}}, Put(key, &registryv1.Model{Name: "iris", Description: fmt.Sprint(i)}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, apierr.ErrConflict):
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wins)
	require.Equal(t, 7, conflicts)

	_, err = s.Get(ctx, Key("models", "nope"), &m)
	require.ErrorIs(t, err, apierr.ErrNotFound)
}

func TestListPages(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	ctx := t.Context()
	for i := range 25 {
		name := fmt.Sprintf("m%02d", i)
		labels := map[string]string{}
		if i%2 == 0 {
			labels["team"] = "a"
		}
		_, err := s.Commit(ctx, nil, Put(Key("models", name), &registryv1.Model{Name: name, Labels: labels}))
		require.NoError(t, err)
	}
	// An unrelated key sharing the textual prefix must not leak in.
	_, err := s.Commit(ctx, nil, Put(Key("modelsx", "z"), &registryv1.Model{Name: "z"}))
	require.NoError(t, err)

	newModel := func() *registryv1.Model { return &registryv1.Model{} }
	even := func(m *registryv1.Model) bool { return m.Labels["team"] == "a" }
	var names []string
	token := ""
	pages := 0
	for {
		items, next, err := List(ctx, s, Key("models")+"/", 4, token, newModel, even)
		require.NoError(t, err)
		pages++
		for _, it := range items {
			names = append(names, it.Msg.Name)
		}
		if next == "" {
			break
		}
		token = next
	}
	require.Len(t, names, 13)
	require.Equal(t, "m00", names[0])
	require.Equal(t, "m24", names[12])
	require.Equal(t, 4, pages)

	_, _, err = List(ctx, s, Key("models")+"/", 4, "!!garbage", newModel, nil)
	require.ErrorIs(t, err, apierr.ErrInvalidArgument)

	_, err = PageSize("page_size", -1)
	require.ErrorIs(t, err, apierr.ErrInvalidArgument)
}

// A prefix condition holds while no key under the prefix is written
// after the read's revision: a key made there since fails it, a key
// elsewhere does not.
func TestPrefixCondition(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	ctx := t.Context()
	prefix := Key("models", "q") + "/"
	_, err := s.Commit(ctx, nil, Put(prefix+"a", &registryv1.Model{Name: "a"}))
	require.NoError(t, err)
	read, err := s.Client().Get(ctx, prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	cond := Cond{Key: prefix, Rev: read.Header.Revision, Prefix: true}

	_, err = s.Commit(ctx, nil, Put(Key("models", "elsewhere"), &registryv1.Model{Name: "elsewhere"}))
	require.NoError(t, err)
	_, err = s.Commit(ctx, []Cond{cond}, Put(Key("models", "other"), &registryv1.Model{Name: "other"}))
	require.NoError(t, err, "nothing under the prefix changed")

	_, err = s.Commit(ctx, nil, Put(prefix+"b", &registryv1.Model{Name: "b"}))
	require.NoError(t, err)
	_, err = s.Commit(ctx, []Cond{cond}, Put(Key("models", "third"), &registryv1.Model{Name: "third"}))
	require.ErrorIs(t, err, apierr.ErrConflict, "a key made under the prefix since the read")
}
