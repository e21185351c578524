package evaluator

import "context"

// lead drives experiments while this replica leads.
func (e *Evaluator) lead(ctx context.Context, term int64) {
	<-ctx.Done()
}

// consumeVersions evaluates versions as they become READY.
func (e *Evaluator) consumeVersions(ctx context.Context) { <-ctx.Done() }
