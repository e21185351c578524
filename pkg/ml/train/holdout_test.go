package train

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

func TestHoldoutIsSeededAndSized(t *testing.T) {
	a := Holdout(569, 0.2, 0)
	require.Len(t, a, 114)
	require.Equal(t, a, Holdout(569, 0.2, 0))
	require.NotEqual(t, a, Holdout(569, 0.2, 1))
	require.IsIncreasing(t, a)
	require.Nil(t, Holdout(1, 0.5, 0))
	require.Nil(t, Holdout(10, 0, 0))
}

// TestHoldoutMatchesThePythonSDK: the SDK's bmaas.train.holdout, which
// scripts use, holds out the rows the evaluator scores.
func TestHoldoutMatchesThePythonSDK(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	cases := [][3]float64{{569, 0.2, 0}, {150, 0.25, 7}, {1000, 0.1, 1 << 40}, {3, 0.5, 2}}
	script := `import json, sys
sys.path.insert(0, "../../../sdk/python")
from bmaas import train
print(json.dumps([train.holdout(int(n), f, int(s)) for n, f, s in json.loads(sys.argv[1])]))`
	arg, err := json.Marshal(cases)
	require.NoError(t, err)
	out, err := exec.Command(py, "-c", script, string(arg)).Output()
	require.NoError(t, err)
	var got [][]int
	require.NoError(t, json.Unmarshal(out, &got))
	for i, c := range cases {
		want := Holdout(int(c[0]), c[1], uint64(c[2]))
		if want == nil {
			want = []int{}
		}
		require.Equal(t, want, got[i], "case %v", c)
	}
}

func TestHoldoutOf(t *testing.T) {
	f, s, err := HoldoutOf(&schedulerv1.ProcessRuntime{})
	require.NoError(t, err)
	require.Equal(t, DefaultHoldoutFraction, f)
	require.Zero(t, s)
	f, s, err = HoldoutOf(&schedulerv1.ProcessRuntime{Hyperparameters: map[string]string{"validation_fraction": "0.3", "seed": "5"}})
	require.NoError(t, err)
	require.Equal(t, 0.3, f)
	require.Equal(t, uint64(5), s)
	_, _, err = HoldoutOf(&schedulerv1.ProcessRuntime{Hyperparameters: map[string]string{"validation_fraction": "1.5"}})
	require.ErrorContains(t, err, "validation_fraction")
	_, _, err = HoldoutOf(&schedulerv1.ProcessRuntime{Hyperparameters: map[string]string{"seed": "-1"}})
	require.ErrorContains(t, err, "seed")
}
