//go:build integration

package embedded

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A start whose probed port was taken in the meantime retries on new ports.
func TestStartEtcdRetriesATakenPort(t *testing.T) {
	t.Parallel()
	// Hold a port and ask for exactly it: the bind fails with EADDRINUSE,
	// the error that makes a start on probed ports try new ones.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = StartEtcd(t.Context(), EtcdConfig{Dir: t.TempDir(), ClientAddr: l.Addr().String(), PeerAddr: "127.0.0.1:0", Fast: true})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("start on a taken client port: want EADDRINUSE (the error a retry looks for), got %v", err)
	}
	e, err := StartEtcd(t.Context(), EtcdConfig{Dir: t.TempDir(), Fast: true})
	if err != nil {
		t.Fatalf("start on free ports: %v", err)
	}
	e.Close()
}
