//go:build integration

package registry

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
)

func TestModelLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()

	created, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{
		Name: "iris", Description: "flowers", TaskType: registryv1.TaskType_TASK_TYPE_MULTICLASS_CLASSIFICATION,
		Labels: map[string]string{"team": "a"}}})
	require.NoError(t, err)
	require.NotEmpty(t, created.Model.Etag)

	_, err = f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "iris"}})
	requireCode(t, err, codes.AlreadyExists, `model "iris" already exists`)
	_, err = f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "Bad_Name"}})
	requireCode(t, err, codes.InvalidArgument, "model.name")
	_, err = f.c.GetModel(ctx, &registryv1.GetModelRequest{Name: "nope"})
	requireCode(t, err, codes.NotFound, `model "nope" not found`)

	_, err = f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "wine", Labels: map[string]string{"team": "b"}}})
	require.NoError(t, err)
	list, err := f.c.ListModels(ctx, &registryv1.ListModelsRequest{LabelSelector: "team=a"})
	require.NoError(t, err)
	require.Len(t, list.Models, 1)
	require.Equal(t, "iris", list.Models[0].Name)
	_, err = f.c.ListModels(ctx, &registryv1.ListModelsRequest{LabelSelector: "team"})
	requireCode(t, err, codes.InvalidArgument, "label_selector")

	upd, err := f.c.UpdateModel(ctx, &registryv1.UpdateModelRequest{
		Model:      &registryv1.Model{Name: "iris", Description: "new", Etag: created.Model.Etag},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
	require.NoError(t, err)
	require.Equal(t, "new", upd.Model.Description)
	require.Equal(t, map[string]string{"team": "a"}, upd.Model.Labels, "fields outside the mask are kept")

	// A stale etag loses.
	_, err = f.c.UpdateModel(ctx, &registryv1.UpdateModelRequest{
		Model: &registryv1.Model{Name: "iris", Description: "stale", Etag: created.Model.Etag}})
	requireCode(t, err, codes.Aborted, "changed since etag")

	_, err = f.c.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: "wine"})
	require.NoError(t, err)
	_, err = f.c.GetModel(ctx, &registryv1.GetModelRequest{Name: "wine"})
	requireCode(t, err, codes.NotFound, "wine")
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	m, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "race"}})
	require.NoError(t, err)

	const n = 6
	codesSeen := make([]codes.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.c.UpdateModel(ctx, &registryv1.UpdateModelRequest{
				Model: &registryv1.Model{Name: "race", Description: string(rune('a' + i)), Etag: m.Model.Etag}})
			codesSeen[i] = status.Code(err)
		}()
	}
	wg.Wait()
	wins := 0
	for _, c := range codesSeen {
		switch c {
		case codes.OK:
			wins++
		case codes.Aborted:
		default:
			t.Fatalf("unexpected code %s", c)
		}
	}
	require.Equal(t, 1, wins, "codes: %v", codesSeen)
}
