//go:build integration

package events

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/testenv"
)

// ReadRange reads one subject's messages up to the last stored when it
// was called, stops when told, and reads nothing of a missing stream or
// an empty subject.
func TestReadRange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	js, err := jetstream.New(testenv.NATSConn(t))
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	require.NoError(t, err)
	for i := range 5 {
		_, err := js.Publish(ctx, "r.a", []byte{byte(i)})
		require.NoError(t, err)
		_, err = js.Publish(ctx, "r.b", []byte{byte(10 + i)})
		require.NoError(t, err)
	}
	read := func(stream, subject string, stopAt int) []byte {
		var got []byte
		err := ReadRange(ctx, js, stream, subject, jetstream.OrderedConsumerConfig{}, func(data []byte, _ uint64) (bool, error) {
			got = append(got, data...)
			return len(got) != stopAt, nil
		})
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []byte{0, 1, 2, 3, 4}, read("R", "r.a", -1))
	require.Equal(t, []byte{0, 10, 1}, read("R", "r.>", 3))
	require.Empty(t, read("R", "r.none", -1))
	require.Empty(t, read("NOPE", "x.>", -1))
}
