package search

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Searchers.
const (
	Grid      = "grid"
	Random    = "random"
	TPE       = "tpe"
	ASHA      = "asha"
	Hyperband = "hyperband"
)

// Config is what a search needs to decide.
type Config struct {
	Searcher    string `json:"searcher"`
	Space       Space  `json:"space"`
	Maximize    bool   `json:"maximize"`
	MaxTrials   int    `json:"max_trials"`
	Parallelism int    `json:"parallelism"`
	// MaxEpochs is the budget of one trial; MinEpochs the first rung of
	// ASHA and Hyperband; Eta their reduction factor.
	MaxEpochs      int    `json:"max_epochs"`
	MinEpochs      int    `json:"min_epochs"`
	Eta            int    `json:"eta"`
	MedianStopping bool   `json:"median_stopping"`
	Seed           uint64 `json:"seed"`
}

// Trial statuses.
const (
	Running = "running"
	Paused  = "paused" // finished a rung; may be continued
	Done    = "done"
	Stopped = "stopped"
	Failed  = "failed"
)

// Trial is the searcher's view of one configuration.
type Trial struct {
	ID     string            `json:"id"`
	Params map[string]string `json:"params"`
	Status string            `json:"status"`
	// Epochs is the budget of the job running now (or last run).
	Epochs int `json:"epochs"`
	// Rung is the index of that budget among the rungs.
	Rung int `json:"rung"`
	// Seq numbers the trial's jobs: 1 for the first, +1 per continuation.
	Seq int `json:"seq"`
	// Scores holds the score (higher is better) at the end of each rung.
	Scores  map[int]float64 `json:"scores,omitempty"`
	Score   float64         `json:"score"`
	Scored  bool            `json:"scored"`
	Bracket int             `json:"bracket,omitempty"`
	// Curve is the intermediate loss per epoch (median stopping).
	Curve []float64 `json:"curve,omitempty"`
}

// State is the whole search; marshal it as JSON to persist it.
type State struct {
	Config   Config   `json:"config"`
	Trials   []*Trial `json:"trials"`
	Finished bool     `json:"finished"`
	// Bracket is Hyperband's current bracket.
	Bracket int `json:"bracket,omitempty"`
}

// EventKind says what happened to a trial.
type EventKind string

// Events.
const (
	// Completed: the trial's job ended with Value of the metric.
	Completed EventKind = "completed"
	// Failed: the trial's job failed.
	Failure EventKind = "failed"
	// Progress: an epoch ended with Value of the intermediate loss.
	Progress EventKind = "progress"
)

// Event is one trial event.
type Event struct {
	Kind  EventKind `json:"kind"`
	Trial string    `json:"trial"`
	Value float64   `json:"value"`
	Epoch int       `json:"epoch,omitempty"`
}

// ActionKind says what the driver must do.
type ActionKind string

// Actions.
const (
	// Start: run a new trial's first job with Epochs.
	Start ActionKind = "start"
	// Continue: run the trial's next job, resumed from its last one's
	// checkpoint, up to Epochs in all.
	Continue ActionKind = "continue"
	// Stop: cancel the trial's running job (early stopping).
	Stop ActionKind = "stop"
	// Finish: the search is over.
	Finish ActionKind = "finish"
)

// Action is one instruction for the driver.
type Action struct {
	Kind   ActionKind        `json:"kind"`
	Trial  string            `json:"trial,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	Epochs int               `json:"epochs,omitempty"`
	Seq    int               `json:"seq,omitempty"`
}

// New validates cfg and returns the initial state.
func New(cfg Config) (*State, error) {
	if err := cfg.Space.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Searcher {
	case Grid, Random, TPE, ASHA, Hyperband:
	default:
		return nil, invalid("searcher", "unknown %q (grid, random, tpe, asha, hyperband)", cfg.Searcher)
	}
	if cfg.MaxTrials <= 0 {
		return nil, invalid("max_trials", "must be positive")
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 1
	}
	if cfg.MaxEpochs < 0 || cfg.MinEpochs < 0 || cfg.Eta < 0 {
		return nil, invalid("max_epochs", "epochs and reduction factor must not be negative")
	}
	if cfg.MinEpochs == 0 {
		cfg.MinEpochs = 1
	}
	if cfg.Eta == 0 {
		cfg.Eta = 3
	}
	if (cfg.Searcher == ASHA || cfg.Searcher == Hyperband) && (cfg.Eta < 2 || cfg.MaxEpochs < cfg.MinEpochs) {
		return nil, invalid("max_epochs", "%s needs max_epochs >= min_epochs and a reduction factor of 2 or more", cfg.Searcher)
	}
	if cfg.Searcher == Grid {
		n := cfg.Space.gridSize(MaxGridSize + 1)
		if n > MaxGridSize {
			return nil, invalid("params", "the grid has more than %d combinations; use fewer grid_points or values, or another searcher", MaxGridSize)
		}
		cfg.MaxTrials = min(cfg.MaxTrials, n)
	}
	return &State{Config: cfg}, nil
}

// rng is the random source of trial n: a function of the seed and n only.
func (s *State) rng(n int) *rand.Rand {
	return rand.New(rand.NewPCG(s.Config.Seed, uint64(n)+1))
}

// Trial returns a trial by ID.
func (s *State) Trial(id string) *Trial {
	for _, t := range s.Trials {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (s *State) running() int {
	n := 0
	for _, t := range s.Trials {
		if t.Status == Running {
			n++
		}
	}
	return n
}

// score turns a metric value into "higher is better".
func (s *State) score(v float64) float64 {
	if s.Config.Maximize {
		return v
	}
	return -v
}

// Step applies ev (nil: none, e.g. at the start or after a restart) and
// returns the actions to take, filling the free parallelism slots.
func (s *State) Step(ev *Event) []Action {
	var out []Action
	if ev != nil {
		out = s.apply(ev)
	}
	if s.Finished {
		return out
	}
	for s.running() < s.Config.Parallelism {
		a, ok := s.next()
		if !ok {
			break
		}
		out = append(out, a)
	}
	if s.running() == 0 && !s.canContinue() {
		s.Finished = true
		out = append(out, Action{Kind: Finish})
	}
	return out
}

func (s *State) apply(ev *Event) []Action {
	t := s.Trial(ev.Trial)
	if t == nil || t.Status != Running {
		return nil // stale or repeated: events are idempotent
	}
	switch ev.Kind {
	case Failure:
		t.Status = Failed
	case Progress:
		return s.progress(t, ev)
	case Completed:
		sc := s.score(ev.Value)
		if t.Scores == nil {
			t.Scores = map[int]float64{}
		}
		t.Scores[t.Rung], t.Score, t.Scored = sc, sc, true
		t.Status = Done
		if (s.Config.Searcher == ASHA || s.Config.Searcher == Hyperband) && t.Epochs < s.Config.MaxEpochs {
			t.Status = Paused
		}
	}
	return nil
}

// next picks the next job to run, if any.
func (s *State) next() (Action, bool) {
	switch s.Config.Searcher {
	case ASHA:
		return s.nextASHA()
	case Hyperband:
		return s.nextHyperband()
	}
	if len(s.Trials) >= s.Config.MaxTrials {
		return Action{}, false
	}
	n := len(s.Trials)
	var params map[string]string
	switch s.Config.Searcher {
	case Grid:
		g := s.Config.Space.Grid(n + 1)
		if n >= len(g) {
			return Action{}, false
		}
		params = g[n]
	case TPE:
		params = s.suggestTPE(n)
	default:
		params = s.Config.Space.Sample(s.rng(n))
	}
	return s.start(params, s.Config.MaxEpochs, 0, 0), true
}

// start creates trial number len(Trials).
func (s *State) start(params map[string]string, epochs, rung, bracket int) Action {
	t := &Trial{ID: fmt.Sprintf("t%03d", len(s.Trials)), Params: params, Status: Running, Epochs: epochs,
		Rung: rung, Seq: 1, Bracket: bracket}
	s.Trials = append(s.Trials, t)
	return Action{Kind: Start, Trial: t.ID, Params: params, Epochs: epochs, Seq: 1}
}

// resume continues a paused trial up to epochs (its next rung).
func (s *State) resume(t *Trial, epochs int) Action {
	t.Status, t.Epochs, t.Rung, t.Seq = Running, epochs, t.Rung+1, t.Seq+1
	return Action{Kind: Continue, Trial: t.ID, Params: t.Params, Epochs: epochs, Seq: t.Seq}
}

// canContinue reports whether work remains that is not waiting on a
// running trial.
func (s *State) canContinue() bool {
	cp := *s
	cp.Trials = slices.Clone(s.Trials)
	for i, t := range cp.Trials {
		c := *t
		cp.Trials[i] = &c
	}
	_, ok := cp.next()
	return ok
}

// Best returns the best scored trial (nil when none).
func (s *State) Best() *Trial {
	var best *Trial
	for _, t := range s.Trials {
		if !t.Scored || t.Status == Failed {
			continue
		}
		if best == nil || t.Epochs > best.Epochs || (t.Epochs == best.Epochs && t.Score > best.Score) {
			best = t
		}
	}
	return best
}
