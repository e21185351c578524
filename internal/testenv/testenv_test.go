//go:build integration

package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestServersStart(t *testing.T) {
	t.Parallel()
	c := EtcdClient(t)
	_, err := c.Put(t.Context(), "/k", "v")
	require.NoError(t, err)
	resp, err := c.Get(t.Context(), "/k")
	require.NoError(t, err)
	require.Equal(t, "v", string(resp.Kvs[0].Value))

	nc := NATSConn(t)
	js, err := nc.JetStream()
	require.NoError(t, err)
	_, err = js.AccountInfo()
	require.NoError(t, err)
}
