package cli

import (
	"context"
	"sync"
	"time"
)

// ExitBound is how long after SIGINT or SIGTERM the running command may
// take to end before main exits regardless: a fixed default, which a
// server command replaces with its own shutdown bound (which grows while
// a task with a long SIGTERM grace runs) plus a margin.
type ExitBound struct {
	def time.Duration
	mu  sync.Mutex
	fn  func() time.Duration
}

// NewExitBound returns a bound of def until a command sets its own.
func NewExitBound(def time.Duration) *ExitBound { return &ExitBound{def: def} }

// Now is the bound if the signal came now.
func (b *ExitBound) Now() time.Duration {
	b.mu.Lock()
	fn := b.fn
	b.mu.Unlock()
	if fn == nil {
		return b.def
	}
	return max(b.def, fn())
}

func (b *ExitBound) set(fn func() time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fn = fn
}

type exitBoundKey struct{}

// WithExitBound hands b to the commands run with ctx.
func WithExitBound(ctx context.Context, b *ExitBound) context.Context {
	return context.WithValue(ctx, exitBoundKey{}, b)
}

// setExitBound makes the bound of ctx's ExitBound, if any, fn's plus
// exitMargin.
func setExitBound(ctx context.Context, fn func() time.Duration) {
	if b, ok := ctx.Value(exitBoundKey{}).(*ExitBound); ok {
		b.set(func() time.Duration { return fn() + exitMargin })
	}
}

// exitMargin is what a server may take past its own shutdown bound (the
// bound's end itself, the data directory's lock, the last log lines).
const exitMargin = 5500 * time.Millisecond
