package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The data directory's locks, taken before anything else touches the
// directory (the embedded etcd removes an existing socket file before it
// listens: a second instance would steal the first one's). They are
// flock(2) locks, which the kernel drops with the process, so a crashed
// holder never leaves a stale lock; each lock file holds its holder's pid.
//
//   - bmaas up owns the whole directory: bmaas.lock, exclusive.
//   - bmaas serve shares bmaas.lock (so no bmaas up runs on its directory)
//     and holds a lock per service exclusively: bmaas-<target>-<node>.lock,
//     and bmaas-trainer-agent.lock (an agent's tasks are in <data-dir>/agent
//     whatever its node). A second instance of a service is refused, while
//     the control services and the agent of one machine, or the control
//     services of several machines on shared storage, may share the
//     directory.
const dirLockName = "bmaas.lock"

// dataDirLock is a held set of lock files.
type dataDirLock struct{ files []*os.File }

// Release drops the locks.
func (l *dataDirLock) Release() {
	for _, f := range l.files {
		_ = f.Close()
	}
	l.files = nil
}

// lockDataDir takes the locks of a process on dir: the whole directory
// when embedded (bmaas up), else a shared one and one per target.
func lockDataDir(dir string, embedded bool, node string, targets []string) (*dataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	l := &dataDirLock{}
	if embedded {
		f, err := tryLock(filepath.Join(dir, dirLockName), syscall.LOCK_EX)
		if err != nil {
			return nil, inUse(dir, err, holdersOfDir(dir))
		}
		l.files = append(l.files, f)
		return l, writePid(f)
	}
	f, err := tryLock(filepath.Join(dir, dirLockName), syscall.LOCK_SH)
	if err != nil {
		return nil, inUse(dir, err, "bmaas up, "+pidOf(filepath.Join(dir, dirLockName)))
	}
	l.files = append(l.files, f)
	for _, t := range targets {
		name, what := targetLock(t, node)
		path := filepath.Join(dir, name)
		f, err := tryLock(path, syscall.LOCK_EX)
		if err != nil {
			l.Release()
			return nil, inUse(dir, err, what+", "+pidOf(path))
		}
		l.files = append(l.files, f)
		if err := writePid(f); err != nil {
			l.Release()
			return nil, err
		}
	}
	return l, nil
}

// targetLock is the name of a service's lock file and what it guards.
func targetLock(target, node string) (name, what string) {
	if target == TargetTrainerAgent {
		return "bmaas-" + target + ".lock", "the " + target
	}
	return "bmaas-" + target + "-" + strings.ReplaceAll(node, string(filepath.Separator), "_") + ".lock",
		"the " + target + " of node " + node
}

// tryLock opens path and locks it without waiting; errLocked says another
// process holds it.
func tryLock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

var errLocked = errors.New("locked")

func inUse(dir string, err error, holder string) error {
	if !errors.Is(err, errLocked) {
		return err
	}
	return fmt.Errorf("data directory %s is in use by another bmaas process (%s): stop it or choose another --data-dir",
		dir, holder)
}

// writePid replaces the lock file's content with this process's pid.
func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// pidOf reads the pid a lock file names, for messages.
func pidOf(path string) string {
	b, err := os.ReadFile(path)
	if s := strings.TrimSpace(string(b)); err == nil && s != "" {
		if _, err := strconv.Atoi(s); err == nil {
			return "pid " + s
		}
	}
	return "pid unknown"
}

// holdersOfDir names who holds bmaas.lock: a bmaas up (exclusively, its
// pid in the file) or bmaas serve processes (shared, their pids in their
// own lock files).
func holdersOfDir(dir string) string {
	path := filepath.Join(dir, dirLockName)
	f, err := tryLock(path, syscall.LOCK_SH)
	if err != nil {
		return "bmaas up, " + pidOf(path)
	}
	_ = f.Close()
	names, _ := filepath.Glob(filepath.Join(dir, "bmaas-*.lock"))
	var pids []string
	for _, n := range names {
		if p := pidOf(n); p != "pid unknown" && !slices.Contains(pids, p) && alive(p) {
			pids = append(pids, p)
		}
	}
	if len(pids) == 0 {
		return "bmaas serve"
	}
	return "bmaas serve, " + strings.Join(pids, ", ")
}

// alive says whether the process of "pid N" still exists.
func alive(p string) bool {
	pid, err := strconv.Atoi(strings.TrimPrefix(p, "pid "))
	if err != nil {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
