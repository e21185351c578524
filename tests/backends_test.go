//go:build integration

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bmaas/bmaas/services/traineragent/endpointkeys"
	"github.com/bmaas/bmaas/tests/harness"
)

// TestEmbeddedBackendsAreClosed: bmaas up's etcd listens on a unix socket
// in a directory only its user may enter, and it and NATS refuse clients
// without the credentials generated into the data directory; with them
// (as docs/security.md says), both work.
func TestEmbeddedBackendsAreClosed(t *testing.T) {
	t.Parallel()
	c := harness.Start(t)
	ctx := t.Context()

	require.Len(t, c.Addrs.EtcdEndpoints, 1)
	sock, ok := strings.CutPrefix(c.Addrs.EtcdEndpoints[0], "unix://")
	require.True(t, ok, "etcd is not on a unix socket: %v", c.Addrs.EtcdEndpoints)
	st, err := os.Stat(filepath.Dir(sock))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "the socket's directory")
	for _, f := range []string{c.Addrs.Etcd.PasswordFile, c.Addrs.NATS.PasswordFile} {
		st, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
		require.True(t, strings.HasPrefix(f, c.Config.DataDir), "%s is not in the data directory", f)
	}

	// etcd: no user, a wrong password, then the generated one.
	anon, err := clientv3.New(clientv3.Config{Endpoints: c.Addrs.EtcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer anon.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = anon.Get(cctx, "/bmaas/", clientv3.WithPrefix())
	require.Error(t, err, "etcd answered a client without credentials")
	_, err = anon.Put(cctx, endpointkeys.Key("iris", "fake"), "x")
	require.Error(t, err, "etcd took a write without credentials")
	_, err = clientv3.New(clientv3.Config{Endpoints: c.Addrs.EtcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: "root", Password: "guess"})
	require.Error(t, err, "etcd took a wrong password")
	resp, err := c.EtcdClient(t).Get(ctx, "/bmaas/v1/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Positive(t, resp.Count, "membership keys are there")

	// NATS: no user, then the generated one with JetStream.
	_, err = nats.Connect(c.Addrs.NATSURL, nats.MaxReconnects(0))
	require.ErrorContains(t, err, "Authorization Violation")
	_, err = nats.Connect(c.Addrs.NATSURL, nats.UserInfo(c.Addrs.NATS.User, "guess"), nats.MaxReconnects(0))
	require.ErrorContains(t, err, "Authorization Violation")
	js, err := c.NATSConn(t).JetStream()
	require.NoError(t, err)
	_, err = js.StreamInfo("BMAAS_EVENTS")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(c.Addrs.NATSURL, "nats://127.0.0.1:"), c.Addrs.NATSURL)

	// Another user of the host cannot even reach etcd's socket.
	setpriv, err := exec.LookPath("setpriv")
	if os.Geteuid() != 0 || err != nil {
		t.Log("not root or no setpriv: the other-user check is skipped")
		return
	}
	out, err := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c",
		"import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", sock).CombinedOutput()
	require.Error(t, err, "user nobody connected to etcd's socket")
	require.Contains(t, string(out), "Permission denied")
}
