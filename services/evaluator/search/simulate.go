package search

// Simulate drives s to the end without a cluster: each job that an action
// starts or continues is run by run, which returns the metric after the
// action's epochs, and jobs complete in the order they were started (as
// with equal-length jobs on Parallelism workers). A continued trial
// resumes from its checkpoint, so it costs only the epochs it adds.
// Simulate returns the epochs spent in all.
func Simulate(s *State, run func(a Action) float64) int {
	trained := map[string]int{}
	var queue []Action
	queue = append(queue, s.Step(nil)...)
	spent := 0
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		switch a.Kind {
		case Start, Continue:
			spent += a.Epochs - trained[a.Trial]
			trained[a.Trial] = a.Epochs
			v := run(a)
			queue = append(queue, s.Step(&Event{Kind: Completed, Trial: a.Trial, Value: v})...)
		case Finish:
			return spent
		}
	}
	return spent
}
