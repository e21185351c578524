package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name, ref string
		wantErr       string
	}{
		{in: "iris", name: "iris", ref: "latest"},
		{in: "iris@3", name: "iris", ref: "3"},
		{in: "iris@production", name: "iris", ref: "production"},
		{in: "iris@latest", name: "iris", ref: "latest"},
		{in: "", wantErr: "empty reference"},
		{in: "@3", wantErr: "missing name"},
		{in: "iris@", wantErr: "missing version or alias"},
		{in: "iris@a@b", wantErr: "more than one '@'"},
		{in: "iris@a b", wantErr: "spaces"},
		{in: "a/b@1", wantErr: "'/'"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			name, ref, err := ParseRef(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.name, name)
			require.Equal(t, tc.ref, ref)
		})
	}
}

func TestCheckAlias(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"production", "champion", "v2", "2nd", "a-b_c"} {
		require.NoError(t, checkAlias(ok), ok)
	}
	for bad, msg := range map[string]string{
		"12": "all digits", "0": "all digits", "latest": "reserved", "": "empty", "a@b": "'@'",
	} {
		require.ErrorContains(t, checkAlias(bad), msg, bad)
	}
}

func TestDatasetRef(t *testing.T) {
	t.Parallel()
	name, ref, err := datasetRef("iris", "")
	require.NoError(t, err)
	require.Equal(t, [2]string{"iris", "latest"}, [2]string{name, ref})
	_, ref, err = datasetRef("iris@2", "")
	require.NoError(t, err)
	require.Equal(t, "2", ref)
	_, ref, err = datasetRef("iris", "4")
	require.NoError(t, err)
	require.Equal(t, "4", ref)
	_, _, err = datasetRef("iris@2", "4")
	require.ErrorContains(t, err, "give the version once")
	_, _, err = datasetRef("iris@prod", "")
	require.ErrorContains(t, err, "must be a number or latest")
}

func TestKVFlags(t *testing.T) {
	t.Parallel()
	kv, err := parseKV("label", []string{"team=ml", "env=prod", "team=ds", "x="})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"team": "ds", "env": "prod", "x": ""}, kv)
	_, err = parseKV("label", []string{"novalue"})
	require.ErrorContains(t, err, `--label "novalue": expected key=value`)

	m, err := parseMetrics("metric", []string{"accuracy=0.95", "loss=1e-3"})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"accuracy": 0.95, "loss": 0.001}, m)
	_, err = parseMetrics("metric", []string{"accuracy=high"})
	require.ErrorContains(t, err, "not a number")

	l, err := applyLabels(map[string]string{"a": "1", "b": "2"}, []string{"b-", "c=3", "a=9"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "9", "c": "3"}, l)

	sel, err := labelSelector([]string{"team=ml", "env=prod"})
	require.NoError(t, err)
	require.Equal(t, "team=ml,env=prod", sel)
}
