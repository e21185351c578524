package search

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func space() Space {
	return Space{
		{Name: "lr", Type: LogUniform, Low: 1e-4, High: 1e-1},
		{Name: "layers", Type: Int, Low: 1, High: 3},
		{Name: "opt", Type: Categorical, Values: []string{"adam", "sgd"}},
		{Name: "momentum", Type: Uniform, Low: 0, High: 0.99, Parent: "opt", ParentValues: []string{"sgd"}},
	}
}

func f(p map[string]string, k string) float64 {
	x, _ := strconv.ParseFloat(p[k], 64)
	return x
}

// objective peaks at lr = 1e-2, layers = 2, adam; more epochs help.
func objective(a Action) float64 {
	v := -math.Pow(math.Log10(f(a.Params, "lr"))+2, 2) - math.Abs(f(a.Params, "layers")-2)
	if a.Params["opt"] == "sgd" {
		v -= 0.5 * (1 - f(a.Params, "momentum"))
	}
	return v - 3/float64(a.Epochs)
}

func TestValidateNamesTheProblem(t *testing.T) {
	for name, tc := range map[string]struct {
		p    Param
		want string
	}{
		"empty categorical": {Param{Name: "act", Type: Categorical}, "at least one value"},
		"low not below":     {Param{Name: "lr", Type: Uniform, Low: 1, High: 1}, "must be below"},
		"log touches zero":  {Param{Name: "lr", Type: LogUniform, Low: 0, High: 1}, "above zero"},
		"unknown parent":    {Param{Name: "m", Type: Uniform, High: 1, Parent: "x", ParentValues: []string{"a"}}, "parent \"x\""},
		"unknown type":      {Param{Name: "m", Type: "normal"}, "unknown type"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Space{tc.p}.Validate()
			require.True(t, errors.Is(err, ErrInvalid))
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, tc.p.Name)
		})
	}
	require.NoError(t, space().Validate())
}

func TestGridAndConditions(t *testing.T) {
	g := space().Grid(MaxGridSize)
	// lr 3 × layers 3 × (adam + sgd × momentum 3) = 36
	require.Len(t, g, 36)
	for _, c := range g {
		_, has := c["momentum"]
		require.Equal(t, c["opt"] == "sgd", has)
	}
	s, err := New(Config{Searcher: Grid, Space: space(), MaxTrials: 100, Parallelism: 4, MaxEpochs: 5, Maximize: true})
	require.NoError(t, err)
	Simulate(s, objective)
	require.Len(t, s.Trials, 36)
	require.True(t, s.Finished)
}

// run drives a search and records its actions.
func record(t *testing.T, cfg Config) ([]Action, *State) {
	s, err := New(cfg)
	require.NoError(t, err)
	var all []Action
	Simulate(s, func(a Action) float64 {
		all = append(all, a)
		return objective(a)
	})
	return all, s
}

func TestDeterministicAndRestartable(t *testing.T) {
	for _, searcher := range []string{Random, TPE, ASHA, Hyperband} {
		t.Run(searcher, func(t *testing.T) {
			cfg := Config{Searcher: searcher, Space: space(), MaxTrials: 20, Parallelism: 3, MaxEpochs: 9, Eta: 3, Seed: 42, Maximize: true}
			a1, s1 := record(t, cfg)
			a2, _ := record(t, cfg)
			require.Equal(t, a1, a2)
			require.NotNil(t, s1.Best())

			// Persist half-way and continue from the JSON: the same actions follow.
			s, err := New(cfg)
			require.NoError(t, err)
			queue := s.Step(nil)
			var got []Action
			for i := 0; len(queue) > 0; i++ {
				a := queue[0]
				queue = queue[1:]
				if a.Kind == Finish {
					break
				}
				got = append(got, a)
				if i == 7 {
					b, err := json.Marshal(s)
					require.NoError(t, err)
					s = &State{}
					require.NoError(t, json.Unmarshal(b, s))
				}
				queue = append(queue, s.Step(&Event{Kind: Completed, Trial: a.Trial, Value: objective(a)})...)
			}
			require.Equal(t, a1, got)
		})
	}
}

func TestASHASpendsAFractionOfTheBudget(t *testing.T) {
	cfg := Config{Searcher: ASHA, Space: space(), MaxTrials: 27, Parallelism: 1, MinEpochs: 1, MaxEpochs: 27, Eta: 3, Seed: 1, Maximize: true}
	s, err := New(cfg)
	require.NoError(t, err)
	spent := Simulate(s, objective)
	require.LessOrEqual(t, spent, 27*27/3)
	require.Equal(t, 27, s.Best().Epochs)
	// Events are idempotent: a repeated completion changes nothing.
	require.Empty(t, s.Step(&Event{Kind: Completed, Trial: "t000", Value: 100}))
}

func TestMedianStoppingStopsABadCurve(t *testing.T) {
	s, err := New(Config{Searcher: Random, Space: space(), MaxTrials: 5, Parallelism: 5, MaxEpochs: 10, MedianStopping: true})
	require.NoError(t, err)
	acts := s.Step(nil)
	require.Len(t, acts, 5)
	for epoch := 1; epoch <= 4; epoch++ {
		for i, a := range acts[:4] {
			loss := 1.0 / float64(epoch) * float64(i+1) / 4
			got := s.Step(&Event{Kind: Progress, Trial: a.Trial, Epoch: epoch, Value: loss})
			if i == 3 && epoch == 3 {
				require.Equal(t, []Action{{Kind: Stop, Trial: a.Trial, Seq: 1}}, got)
			}
		}
	}
	require.Equal(t, Stopped, s.Trials[3].Status)
}

func TestTPEBeatsRandomOnAverage(t *testing.T) {
	branin := Space{{Name: "x", Type: Uniform, Low: -5, High: 10}, {Name: "y", Type: Uniform, Low: 0, High: 15}}
	best := func(searcher string, seed uint64) float64 {
		s, err := New(Config{Searcher: searcher, Space: branin, MaxTrials: 40, Parallelism: 1, Seed: seed})
		require.NoError(t, err)
		Simulate(s, func(a Action) float64 { return Branin(f(a.Params, "x"), f(a.Params, "y")) })
		return -s.Best().Score
	}
	var tpe, rnd float64
	for seed := range uint64(5) {
		tpe += best(TPE, seed)
		rnd += best(Random, seed)
	}
	require.Less(t, tpe, rnd)
}
