// Command hpo measures the searchers of services/evaluator/search without a
// cluster: ASHA against a full grid run of the same 27 digits-MLP
// configurations (and random search at ASHA's budget), and TPE against
// random search over 5 seeds on the Branin function. Trials are trained
// with pkg/ml/train directly; a continued ASHA trial is charged only the
// epochs it adds, as the platform resumes it from its checkpoint (with a
// constant learning rate and no early stopping, the first r epochs of a
// longer run are the r-epoch run, so training the longer budget from
// scratch gives the resumed run's model).
//
//	go run ./bench/hpo -data examples/datasets/digits.csv
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"maps"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/bmaas/bmaas/pkg/ml/train"
	"github.com/bmaas/bmaas/services/evaluator/search"
)

func main() {
	data := flag.String("data", "examples/datasets/digits.csv", "digits CSV")
	seed := flag.Uint64("seed", 1, "seed of the ASHA configurations")
	flag.Parse()
	tpeVsRandom()
	f, err := dataset.ReadFile(*data, dataset.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ashaVsGrid(f, *seed)
}

var space = search.Space{
	{Name: "lr", Type: search.LogUniform, Low: 3e-4, High: 3e-2},
	{Name: "weight_decay", Type: search.LogUniform, Low: 1e-6, High: 1e-2},
	{Name: "optimizer", Type: search.Categorical, Values: []string{"adam", "sgd"}},
	{Name: "momentum", Type: search.Uniform, Low: 0.5, High: 0.99, Parent: "optimizer", ParentValues: []string{"sgd"}},
	{Name: "batch_size", Type: search.Int, Low: 16, High: 64},
}

type result struct{ val, test float64 }

// trainer trains (and caches) one configuration at a budget.
type trainer struct {
	f      *dataset.Frame
	cache  map[string]result
	epochs int
}

func key(p map[string]string, epochs int) string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k+"="+p[k])
	}
	sort.Strings(ks)
	return strings.Join(ks, ",") + "@" + strconv.Itoa(epochs)
}

func (t *trainer) run(p map[string]string, epochs int) result {
	k := key(p, epochs)
	if r, ok := t.cache[k]; ok {
		return r
	}
	params := maps.Clone(p)
	params["epochs"], params["patience"], params["schedule"], params["hidden"] = strconv.Itoa(epochs), "0", "constant", "64"
	m, err := train.Run(context.Background(), train.Spec{Algorithm: "mlp", Target: "target", Params: params,
		Validation: 0.15, Test: 0.15, Seed: 7}, t.f, train.Callbacks{})
	if err != nil {
		log.Fatalf("train %v: %v", p, err)
	}
	t.epochs += epochs
	v, _ := train.Metric(m, "validation", "accuracy")
	te, _ := train.Metric(m, "test", "accuracy")
	r := result{v, te}
	t.cache[k] = r
	return r
}

func ashaVsGrid(f *dataset.Frame, seed uint64) {
	tr := &trainer{f: f, cache: map[string]result{}}
	start := time.Now()
	st, err := search.New(search.Config{Searcher: search.ASHA, Space: space, Maximize: true, MaxTrials: 27, Parallelism: 4,
		MaxEpochs: 27, MinEpochs: 1, Eta: 3, Seed: seed})
	if err != nil {
		log.Fatal(err)
	}
	spent := search.Simulate(st, func(a search.Action) float64 { return tr.run(a.Params, a.Epochs).val })
	best := st.Best()
	ashaRes := tr.run(best.Params, 27)
	ashaTime := time.Since(start)

	// The full run: the same 27 configurations, 27 epochs each.
	start = time.Now()
	var gridBest result
	var gridParams map[string]string
	for _, t := range st.Trials {
		r := tr.run(t.Params, 27)
		if gridParams == nil || r.val > gridBest.val {
			gridBest, gridParams = r, t.Params
		}
	}
	gridTime := time.Since(start)

	// Random search at ASHA's budget: spent/27 configurations of 27 epochs.
	rs, _ := search.New(search.Config{Searcher: search.Random, Space: space, Maximize: true, MaxTrials: max(1, spent/27),
		Parallelism: 1, MaxEpochs: 27, Seed: seed + 100})
	search.Simulate(rs, func(a search.Action) float64 { return tr.run(a.Params, a.Epochs).val })
	rndRes := tr.run(rs.Best().Params, 27)

	fmt.Printf("\nASHA vs full grid, digits MLP, 27 configurations, up to 27 epochs (seed %d)\n", seed)
	fmt.Printf("%-28s %8s %10s %10s\n", "search", "epochs", "val acc", "test acc")
	fmt.Printf("%-28s %8d %10.4f %10.4f\n", "full run of all 27", 27*27, gridBest.val, gridBest.test)
	fmt.Printf("%-28s %8d %10.4f %10.4f\n", "ASHA (eta 3, rungs 1-27)", spent, ashaRes.val, ashaRes.test)
	fmt.Printf("%-28s %8d %10.4f %10.4f\n", "random, same budget", max(1, spent/27)*27, rndRes.val, rndRes.test)
	fmt.Printf("ASHA used %.1f%% of the epochs; gap to the full run's best: %.2f points (validation), %.2f (test)\n",
		100*float64(spent)/729, 100*(gridBest.val-ashaRes.val), 100*(gridBest.test-ashaRes.test))
	fmt.Printf("wall: ASHA %s, full run %s (cached rungs reused)\n", ashaTime.Round(time.Millisecond), gridTime.Round(time.Millisecond))
	_ = gridParams
}

func tpeVsRandom() {
	const trials = 40
	branin := search.Space{{Name: "x", Type: search.Uniform, Low: -5, High: 10}, {Name: "y", Type: search.Uniform, Low: 0, High: 15}}
	bestOf := func(searcher string, seed uint64) float64 {
		s, err := search.New(search.Config{Searcher: searcher, Space: branin, MaxTrials: trials, Parallelism: 1, Seed: seed})
		if err != nil {
			log.Fatal(err)
		}
		search.Simulate(s, func(a search.Action) float64 {
			x, _ := strconv.ParseFloat(a.Params["x"], 64)
			y, _ := strconv.ParseFloat(a.Params["y"], 64)
			return search.Branin(x, y)
		})
		return -s.Best().Score
	}
	fmt.Printf("TPE vs random on Branin (minimum 0.397887), %d trials, best value found\n", trials)
	fmt.Printf("%-6s %10s %10s\n", "seed", "random", "TPE")
	var sr, st float64
	for seed := range uint64(5) {
		r, t := bestOf(search.Random, seed), bestOf(search.TPE, seed)
		sr, st = sr+r, st+t
		fmt.Printf("%-6d %10.4f %10.4f\n", seed, r, t)
	}
	fmt.Printf("%-6s %10.4f %10.4f   (regret %.4f vs %.4f)\n", "mean", sr/5, st/5, sr/5-0.397887, st/5-0.397887)
	_ = math.Pi
	_ = os.Stdout
}
