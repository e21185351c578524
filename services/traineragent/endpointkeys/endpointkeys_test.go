package endpointkeys_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	"github.com/bmaas/bmaas/pkg/store"
	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
)

func TestKeyRoundTrip(t *testing.T) {
	t.Parallel()
	key := endpointkeys.Key("iris", "01J9ZQ")
	require.Equal(t, store.Key("endpoints", "iris", "01J9ZQ"), key)
	require.Regexp(t, "^"+endpointkeys.Of("iris"), key)
	dep, replica, ok := endpointkeys.Parse(key)
	require.True(t, ok)
	require.Equal(t, []string{"iris", "01J9ZQ"}, []string{dep, replica})
}

// A project's deployment has its own keys: no prefix of the default
// project's deployment of the project's name.
func TestKeysOfProjectDeployments(t *testing.T) {
	t.Parallel()
	key := endpointkeys.Key("vision/detect", "01J9ZQ")
	require.Equal(t, store.Key("endpoints", "vision:detect", "01J9ZQ"), key)
	require.NotRegexp(t, "^"+endpointkeys.Of("vision"), key)
	dep, replica, ok := endpointkeys.Parse(key)
	require.True(t, ok)
	require.Equal(t, []string{"vision/detect", "01J9ZQ"}, []string{dep, replica})
}

func TestMalformedKeysRefused(t *testing.T) {
	t.Parallel()
	for _, k := range []string{
		"", "/bmaas/v1/endpoints/", "/bmaas/v1/endpoints/iris", "/bmaas/v1/endpoints/iris/",
		"/bmaas/v1/endpoints//r", "/bmaas/v1/endpoints/iris/r/x", "/bmaas/v2/endpoints/iris/r", "endpoints/iris/r",
	} {
		_, _, ok := endpointkeys.Parse(k)
		require.False(t, ok, "key %q", k)
	}
}

func TestValueRoundTrip(t *testing.T) {
	t.Parallel()
	ep := &gatewayv1.Endpoint{Deployment: "iris", Replica: "01J9ZQ", Model: "iris", Version: 3,
		Address: "10.0.0.1:4000", LaneAddress: "10.0.0.1:4001", Node: "n1", Token: "t"}
	b, err := endpointkeys.Encode(ep)
	require.NoError(t, err)
	got, err := endpointkeys.Decode(b)
	require.NoError(t, err)
	require.True(t, proto.Equal(ep, got))
}

func TestInvalidValuesRefused(t *testing.T) {
	t.Parallel()
	for name, ep := range map[string]*gatewayv1.Endpoint{
		"no address":       {Deployment: "iris", Token: "t"},
		"no replica token": {Deployment: "iris", Address: "10.0.0.1:4000"},
	} {
		_, err := endpointkeys.Encode(ep)
		require.ErrorIs(t, err, endpointkeys.ErrInvalid, name)
		b, err := proto.Marshal(ep)
		require.NoError(t, err)
		_, err = endpointkeys.Decode(b)
		require.ErrorIs(t, err, endpointkeys.ErrInvalid, name)
		require.ErrorContains(t, err, name)
	}
	_, err := endpointkeys.Decode([]byte{0xff})
	require.ErrorIs(t, err, endpointkeys.ErrInvalid)
}
