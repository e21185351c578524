//go:build integration

package store

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestCacheReadsItsWrites(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	ctx := t.Context()
	_, err := s.Commit(ctx, nil, Put(Key("models", "pre"), &registryv1.Model{Name: "pre"}))
	require.NoError(t, err)

	c := NewCache(s, Key("models")+"/", func() *registryv1.Model { return &registryv1.Model{} }, slog.New(slog.DiscardHandler))
	go func() { _ = c.Run(ctx) }()
	<-c.Ready()

	m, _, err := c.Get(ctx, Key("models", "pre"))
	require.NoError(t, err)
	require.Equal(t, "pre", m.Name)

	// Every write is visible to the next read, with its revision.
	for i := range 50 {
		rev, err := s.Commit(ctx, nil, Put(Key("models", "m"), &registryv1.Model{Name: "m", Description: fmt.Sprint(i)}))
		require.NoError(t, err)
		c.Observe(rev)
		got, grev, err := c.Get(ctx, Key("models", "m"))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), got.Description)
		require.Equal(t, rev, grev)
		got.Description = "mutated copy"
	}

	// A write elsewhere (no event for this prefix) does not stall reads.
	rev, err := s.Commit(ctx, nil, Put(Key("other", "x"), &registryv1.Model{Name: "x"}))
	require.NoError(t, err)
	c.Observe(rev)
	got, _, err := c.Get(ctx, Key("models", "m"))
	require.NoError(t, err)
	require.Equal(t, "49", got.Description, "the cache hands out copies")

	rev, err = s.Commit(ctx, nil, Delete(Key("models", "m")))
	require.NoError(t, err)
	c.Observe(rev)
	_, _, err = c.Get(ctx, Key("models", "m"))
	require.ErrorIs(t, err, apierr.ErrNotFound)
}

// View reads the cached message in place, or etcd's when the key is not
// cached, and says when there is none.
func TestCacheView(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	ctx := t.Context()
	c := NewCache(s, Key("models")+"/", func() *registryv1.Model { return &registryv1.Model{} }, slog.New(slog.DiscardHandler))
	_, err := s.Commit(ctx, nil, Put(Key("models", "a"), &registryv1.Model{Name: "a", Description: "before load"}))
	require.NoError(t, err)
	var desc string
	require.NoError(t, c.View(ctx, Key("models", "a"), func(m *registryv1.Model) { desc = m.Description }), "not loaded: read from etcd")
	require.Equal(t, "before load", desc)
	go func() { _ = c.Run(ctx) }()
	<-c.Ready()
	rev, err := s.Commit(ctx, nil, Put(Key("models", "a"), &registryv1.Model{Name: "a", Description: "cached"}))
	require.NoError(t, err)
	c.Observe(rev)
	require.Eventually(t, func() bool {
		_ = c.View(ctx, Key("models", "a"), func(m *registryv1.Model) { desc = m.Description })
		return desc == "cached"
	}, 5*time.Second, 5*time.Millisecond)
	err = c.View(ctx, Key("models", "none"), func(*registryv1.Model) { t.Fatal("called for a missing key") })
	require.ErrorIs(t, err, apierr.ErrNotFound)
}
