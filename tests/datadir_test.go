//go:build integration

package tests

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/internal/testenv"
	"github.com/bmaas/bmaas/tests/harness"
)

// shutdownBound is how soon after SIGTERM any bmaas process has exited:
// its 5 s shutdown bound and a margin for a loaded machine.
const shutdownBound = 7 * time.Second

// rawProcess is the bmaas binary run without waiting for it to be ready.
type rawProcess struct {
	cmd    *exec.Cmd
	out    testenv.Buffer
	exited chan struct{}
	err    error
}

func startRaw(t *testing.T, args ...string) *rawProcess {
	t.Helper()
	p := &rawProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(harness.Binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("output of bmaas %v:\n%s", args, p.output())
		}
	})
	return p
}

func (p *rawProcess) output() string { return p.out.String() }

// waitExit waits up to d for the process to exit and returns its error.
func (p *rawProcess) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("bmaas still runs %s later:\n%s", d, p.output())
		return nil
	}
}

// TestSecondUpOnDataDirFailsFast starts `bmaas up` twice on one data
// directory: the second fails at once, naming the directory and the first
// process, and leaves the first one (and its etcd sockets) alone.
func TestSecondUpOnDataDirFailsFast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := harness.StartProcess(t, "up", "--data-dir", dir, "--embedded.fast-election")
	sock := filepath.Join(dir, "run", "etcd.sock")
	before, err := os.Stat(sock)
	require.NoError(t, err)

	second := startRaw(t, "up", "--data-dir", dir, "--embedded.fast-election",
		"--grpc-addr", harness.FreeAddr(t), "--http-addr", harness.FreeAddr(t))
	err = second.waitExit(t, 10*time.Second)
	require.Error(t, err, "the second process must fail")
	out := second.output()
	require.Contains(t, out, dir, "the error names the data directory")
	require.Contains(t, out, "pid "+strconv.Itoa(first.Cmd.Process.Pid), "the error names the process holding it")

	after, err := os.Stat(sock)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after), "the first process's etcd socket is still its own")
	resp, err := http.Get("http://" + first.HTTP + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the first process still serves")
}

// TestSigtermStopsBlockedStart blocks `bmaas up` in its start (the
// embedded etcd waits for its database's file lock, held here) and checks
// that SIGTERM still stops it within the shutdown bound.
func TestSigtermStopsBlockedStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := harness.StartProcess(t, "up", "--data-dir", dir, "--embedded.fast-election")
	require.NoError(t, p.Interrupt())

	db, err := os.OpenFile(filepath.Join(dir, "etcd", "member", "snap", "db"), os.O_RDWR, 0)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, syscall.Flock(int(db.Fd()), syscall.LOCK_EX))

	blocked := startRaw(t, "up", "--data-dir", dir, "--embedded.fast-election",
		"--grpc-addr", harness.FreeAddr(t), "--http-addr", harness.FreeAddr(t))
	// etcd listens on its socket before it opens its database.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "run", "etcd.sock"))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "etcd never started:\n%s", blocked.output())
	select {
	case <-blocked.exited:
		t.Fatalf("bmaas exited before the signal: %v\n%s", blocked.err, blocked.output())
	default:
	}
	start := time.Now()
	require.NoError(t, blocked.cmd.Process.Signal(syscall.SIGTERM))
	_ = blocked.waitExit(t, shutdownBound)
	t.Logf("stopped %s after SIGTERM", time.Since(start))
}
