//go:build integration

package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/pkg/apierr"
)

// A write over etcd's request limit (refused by the server, or by the
// client's gRPC send limit) is ResourceExhausted with a message for users,
// not etcd's text.
func TestCommitTooLargeIsResourceExhausted(t *testing.T) {
	t.Parallel()
	s := New(testenv.EtcdClient(t))
	for name, size := range map[string]int{"over the server's limit": 1700 << 10, "over the client's send limit": 3 << 20} {
		t.Run(name, func(t *testing.T) {
			key := Key("test", strings.ReplaceAll(name, " ", "-"))
			_, err := s.Commit(t.Context(), nil, PutRaw(key, make([]byte, size), 0))
			require.ErrorIs(t, err, apierr.ErrResourceExhausted)
			st := status.Convert(apierr.ToStatus(err))
			require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
			require.Contains(t, st.Message(), "too large to store")
			require.NotContains(t, st.Message(), "etcdserver")
			require.NotContains(t, st.Message(), "rpc error")
		})
	}
}
