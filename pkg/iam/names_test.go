package iam

import (
	"testing"

	"github.com/stretchr/testify/require"

	evaluatorv1 "github.com/bmaas/bmaas/api/bmaas/evaluator/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
)

func TestQualifiedNames(t *testing.T) {
	for _, tc := range []struct{ project, name, want, key string }{
		{"vision", "resnet", "vision/resnet", "vision:resnet"},
		{"vision", "resnet@prod", "vision/resnet@prod", "vision:resnet@prod"},
		{"default", "resnet", "resnet", "resnet"},
		{"", "resnet", "resnet", "resnet"},
		{"vision", "nlp/bert", "nlp/bert", "nlp:bert"},
		{"vision", "default/resnet", "resnet", "resnet"},
		{"vision", "", "", ""},
	} {
		got := QualifiedName(tc.project, tc.name)
		require.Equal(t, tc.want, got, "%s in %s", tc.name, tc.project)
		require.Equal(t, tc.key, NameKey(got))
	}
	require.Equal(t, "/k/vision:", ProjectPrefix("/k/", "vision"))
	require.Equal(t, "/k/", ProjectPrefix("/k/", DefaultProject))
	require.True(t, InProject("resnet", ""))
	require.True(t, InProject("vision/resnet", "vision"))
	require.False(t, InProject("vision/resnet", DefaultProject))
	require.False(t, InProject("visionary/resnet", "vision"))

	bare := func(field, name string) error {
		if name == "" {
			return apierr.Invalid(field, "is required")
		}
		return nil
	}
	require.NoError(t, CheckQualified("model", "vision/x", bare))
	for _, bad := range []string{"Vision/x", "-v/x", "/x", "a/b/c", "vision/"} {
		require.Error(t, CheckQualified("model", bad, bare), bad)
	}
}

// The guard qualifies every model and dataset a request names, at any
// depth, with the call's project, and says which other projects it
// names.
func TestQualifyRequest(t *testing.T) {
	sub := &schedulerv1.SubmitJobRequest{Spec: &schedulerv1.JobSpec{Name: "train", Model: "fraud",
		Runtime: &schedulerv1.JobSpec_Builtin{Builtin: &schedulerv1.BuiltinRuntime{Dataset: "default/cancer"}}}}
	others := qualifyRequest(sub, "vision", false)
	require.Equal(t, "vision/fraud", sub.GetSpec().GetModel())
	require.Equal(t, "train", sub.GetSpec().GetName(), "a job's own name is not a model's")
	require.Equal(t, "cancer", sub.GetSpec().GetBuiltin().GetDataset())
	require.Equal(t, []string{DefaultProject}, others)

	cm := &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "fraud"}}
	require.Empty(t, qualifyRequest(cm, "vision", true))
	require.Equal(t, "vision/fraud", cm.GetModel().GetName())
	require.Equal(t, "vision/fraud", primaryName(cm))

	up := &registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{Header: &registryv1.UploadDatasetHeader{Name: "nlp/cancer"}}}
	require.Equal(t, []string{"nlp"}, qualifyRequest(up, "vision", true))
	require.Equal(t, "nlp/cancer", up.GetHeader().GetName())

	pol := &evaluatorv1.SetEvaluationPolicyRequest{Policy: &evaluatorv1.EvaluationPolicy{Model: "fraud",
		Datasets: []*evaluatorv1.DatasetRef{{Dataset: "cancer"}}}}
	require.Empty(t, qualifyRequest(pol, "vision", false))
	require.Equal(t, "vision/fraud", pol.GetPolicy().GetModel())
	require.Equal(t, "vision/cancer", pol.GetPolicy().GetDatasets()[0].GetDataset())
	require.Equal(t, "vision/fraud", primaryName(pol))

	// In the default project, bare names stay bare.
	get := &registryv1.GetModelRequest{Name: "fraud"}
	require.Empty(t, qualifyRequest(get, DefaultProject, true))
	require.Equal(t, "fraud", get.GetName())
}
