package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestExitBoundFollowsTheServersBound: a command that sets no bound has
// main's default; a server's bound (which grows while a task with a long
// grace runs) replaces it, with a margin, when it is longer.
func TestExitBoundFollowsTheServersBound(t *testing.T) {
	t.Parallel()
	b := NewExitBound(10 * time.Second)
	ctx := WithExitBound(context.Background(), b)
	require.Equal(t, 10*time.Second, b.Now())
	server := 4500 * time.Millisecond
	setExitBound(ctx, func() time.Duration { return server })
	require.Equal(t, 10*time.Second, b.Now())
	server = 64500 * time.Millisecond
	require.Equal(t, server+exitMargin, b.Now())
	setExitBound(context.Background(), func() time.Duration { return time.Hour }) // no bound to set: nothing happens
	require.Equal(t, server+exitMargin, b.Now())
}
