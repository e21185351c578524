package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
)

func TestSampled(t *testing.T) {
	dep := func(pl *gatewayv1.PayloadLogging) *gatewayv1.Deployment {
		return &gatewayv1.Deployment{PayloadLogging: pl}
	}
	req, resp := sampled(dep(nil))
	require.False(t, req || resp, "off")
	req, resp = sampled(dep(&gatewayv1.PayloadLogging{SampleRate: 1}))
	require.True(t, req && resp, "neither part named: both")
	req, resp = sampled(dep(&gatewayv1.PayloadLogging{SampleRate: 1, Response: true}))
	require.False(t, req)
	require.True(t, resp)
	n := 0
	for range 4000 {
		if r, _ := sampled(dep(&gatewayv1.PayloadLogging{SampleRate: 0.25})); r {
			n++
		}
	}
	require.InDelta(t, 1000, n, 150, "a quarter")
}

// A record goes to the queue with what it kept; a full queue drops it
// and counts it; a nil call does nothing.
func TestPayloadCall(t *testing.T) {
	p := newPayloadLog(prometheus.NewRegistry())
	p.q = make(chan *gatewayv1.PayloadRecord, 1)
	c := &payloadCall{p: p, rec: &gatewayv1.PayloadRecord{RequestId: "r1", Request: []byte("in")}, keepReq: true}
	c.answered(200, []byte("out"))
	c.done(nil)
	r := <-p.q
	require.Equal(t, int32(200), r.Status)
	require.Empty(t, r.Response, "the response was not asked for")
	require.Equal(t, []byte("in"), r.Request)

	full := &payloadCall{p: p, rec: &gatewayv1.PayloadRecord{}, keepResp: true}
	p.q <- &gatewayv1.PayloadRecord{}
	full.appendResponse([]byte("data: x\n\n"))
	full.done(nil)
	require.Equal(t, 1.0, testutil.ToFloat64(p.dropped))

	var none *payloadCall
	none.answered(200, nil)
	none.appendResponse(nil)
	none.done(nil)
}
