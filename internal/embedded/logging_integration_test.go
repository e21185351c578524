//go:build integration

package embedded

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestEmbeddedNATSLogsToSlog: a client refused for a wrong password is
// an error the embedded server logs to the process's logger; a start
// with the generated password warns of nothing.
func TestEmbeddedNATSLogsToSlog(t *testing.T) {
	t.Parallel()
	h := &captured{min: slog.LevelInfo}
	n, err := StartNATS(NATSConfig{StoreDir: t.TempDir(), User: "bmaas", Password: "secret", Logger: slog.New(h)})
	require.NoError(t, err)
	t.Cleanup(n.Close)
	nc, err := nats.Connect(n.ClientURL(), nats.UserInfo("bmaas", "secret"))
	require.NoError(t, err, "the password still works behind its hash")
	nc.Close()
	_, err = nats.Connect(n.ClientURL(), nats.UserInfo("bmaas", "wrong"), nats.MaxReconnects(0))
	require.Error(t, err)
	require.Eventually(t, func() bool {
		r, ok := h.find("authentication error")
		return ok && r.Level == slog.LevelError
	}, 5*time.Second, 10*time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		require.NotContains(t, r.Message, "Plaintext passwords")
	}
}

// TestEmbeddedEtcdLogsToSlogAndReportsItsStop: the member logs into the
// process's logger, and Stopped tells when its server stops on its own.
func TestEmbeddedEtcdLogsToSlogAndReportsItsStop(t *testing.T) {
	t.Parallel()
	h := &captured{min: slog.LevelDebug}
	e, err := StartEtcd(t.Context(), EtcdConfig{Dir: t.TempDir(), Fast: true, Logger: slog.New(h)})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	require.Eventually(t, func() bool {
		_, ok := h.find("ready to serve client requests")
		return ok
	}, 10*time.Second, 10*time.Millisecond, "with debug on, etcd's informational lines are logged")
	select {
	case <-e.Stopped():
		t.Fatal("stopped before its stop")
	default:
	}
	e.e.Server.Stop() // as a fatal error stops it, without Close
	select {
	case <-e.Stopped():
	case <-time.After(10 * time.Second):
		t.Fatal("Stopped did not tell")
	}
}
