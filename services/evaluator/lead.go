package evaluator

import "context"

// lead drives experiments while this replica leads.
func (e *Evaluator) lead(ctx context.Context, _ int64) {
	<-ctx.Done()
}
