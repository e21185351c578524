//go:build integration

package gateway

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/internal/testenv"
)

// TestPayloadBatchesFitAMessage: records are gathered into messages no
// larger than a NATS message may be, and a record that could not fit any
// is logged without its bodies, marked truncated, instead of lost (with
// the batch it was in).
func TestPayloadBatchesFitAMessage(t *testing.T) {
	t.Parallel()
	nc := testenv.NATSConn(t)
	p := newPayloadLog(prometheus.NewRegistry())
	p.maxMsg = 64 << 10
	require.NoError(t, p.start(t.Context(), nc, Config{PayloadMaxAge: time.Hour, PayloadMaxBytes: 1 << 30}))
	body := bytes.Repeat([]byte("x"), 20<<10)
	for i := range 10 {
		p.q <- &gatewayv1.PayloadRecord{Deployment: "a", RequestId: string(rune('a' + i)), Request: body}
	}
	p.q <- &gatewayv1.PayloadRecord{Deployment: "a", RequestId: "huge", Request: bytes.Repeat([]byte("y"), 200<<10)}

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var got []*gatewayv1.PayloadRecord
	msgs := 0
	require.Eventually(t, func() bool { return testutil.ToFloat64(p.published) == 11 }, 10*time.Second, 10*time.Millisecond)
	cons, err := js.OrderedConsumer(t.Context(), payloadStream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(500 * time.Millisecond))
		if errors.Is(err, jetstream.ErrNoMessages) || err != nil {
			break
		}
		require.LessOrEqual(t, len(msg.Data()), 64<<10)
		b := &gatewayv1.PayloadBatch{}
		require.NoError(t, proto.Unmarshal(msg.Data(), b))
		got = append(got, b.Records...)
		msgs++
	}
	require.Len(t, got, 11)
	require.GreaterOrEqual(t, msgs, 4, "three 20 KiB records at most per 64 KiB message")
	last := got[10]
	require.Equal(t, "huge", last.RequestId)
	require.True(t, last.Truncated)
	require.Empty(t, last.Request)
	require.False(t, got[0].Truncated)
	require.Equal(t, 1.0, testutil.ToFloat64(p.truncated))
	require.Zero(t, testutil.ToFloat64(p.dropped))
}
