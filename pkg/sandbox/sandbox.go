// Package sandbox runs a command confined with bubblewrap (bwrap): as an
// unprivileged user, in its own PID, IPC, UTS, cgroup and mount
// namespaces (the network is the host's), with the system read-only, a
// fresh /proc, /dev and /tmp, only the directories and devices it is
// given, chosen paths masked, and only the environment it is given.
//
// A root caller runs bwrap as root, so that it can bind directories
// whose parents only root may pass, and the command as Config.UID/GID
// through setpriv (no groups, no capabilities, no new privileges). Any
// other caller runs bwrap as itself in a user namespace; the command
// keeps the caller's uid.
//
// Memory and CPU are limited by a cgroup per command (v2, else v1
// memory and cpu) under the caller's own, else by RLIMIT_AS. The command
// is confined before it runs: bwrap reports its child's pid on an info
// pipe and waits on a block pipe until the caller has moved that child.
package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Mechanisms.
const (
	// Bwrap confines commands with bubblewrap.
	Bwrap = "bwrap"
	// None runs commands as the caller's user with its whole file
	// system and no limits: for development only.
	None = "none"
)

// Config configures a Runner.
type Config struct {
	// Mechanism is Bwrap or None.
	Mechanism string
	// Bwrap is bubblewrap's path or name on PATH.
	Bwrap string
	// UID and GID run the commands when the caller is root (neither may
	// be 0); otherwise the commands run as the caller's user.
	UID, GID int
	// Cgroup names the directory under the caller's own cgroup that
	// holds the commands' cgroups (default "sandbox").
	Cgroup string
	// NoSeccomp runs the commands without the seccomp filter
	// (seccomp.go).
	NoSeccomp bool
}

// Limits bound a command's resources; zero is no limit.
type Limits struct {
	MemoryBytes int64
	// CPUMillis is in thousandths of a CPU.
	CPUMillis int64
}

// Spec is one command to run.
type Spec struct {
	// Name names the command's cgroup; unique among those running.
	Name string
	// Path is the command's absolute path; Args its arguments.
	Path string
	Args []string
	// Env is the command's whole environment ("K=V").
	Env []string
	// Dir is the working directory, absolute, visible in the sandbox.
	Dir string
	// Writable and ReadOnly are host directories the sandbox shows at
	// the same paths.
	Writable, ReadOnly []string
	// Mask are paths the command must not see (data directories,
	// secrets); a path that does not exist is ignored.
	Mask []string
	// Devices are device nodes bound in (GPUs).
	Devices []string
	// NoNetwork runs the command in a network namespace of its own with
	// only a loopback interface: it reaches nothing outside.
	NoNetwork bool
	Limits    Limits
	Stdout    io.Writer
	Stderr    io.Writer
}

// Runner starts commands in sandboxes.
type Runner struct {
	cfg   Config
	bwrap string
	err   error    // why commands cannot run (bwrap missing or unusable)
	cg    *cgroups // nil: RLIMIT_AS
	cgErr error
	drop  *drop // nil: the caller's own user, in a user namespace
	sys   []hostEntry
	extra []string
	// seccomp is the filter's program (nil: none).
	seccomp []byte
}

// New detects bwrap, the namespaces it needs and the cgroup hierarchy.
// A missing or unusable bwrap is not an error here: Err reports it and
// Start returns it. On cgroup v2, when the caller's cgroup holds
// processes, they move to a "leaf" child so that the memory and cpu
// controllers can be enabled for the commands' cgroups.
func New(cfg Config) (*Runner, error) {
	switch cfg.Mechanism {
	case Bwrap, None:
	default:
		return nil, fmt.Errorf("mechanism %q: want %s or %s", cfg.Mechanism, Bwrap, None)
	}
	if cfg.Cgroup == "" {
		cfg.Cgroup = "sandbox"
	}
	r := &Runner{cfg: cfg}
	if cfg.Mechanism == None {
		return r, nil
	}
	if os.Geteuid() == 0 {
		if cfg.UID <= 0 || cfg.GID <= 0 {
			return nil, fmt.Errorf("uid %d, gid %d: a sandbox does not run as root", cfg.UID, cfg.GID)
		}
		r.drop = &drop{uid: cfg.UID, gid: cfg.GID}
	}
	closeOnExec()
	r.sys, r.extra = probeSystem()
	if !cfg.NoSeccomp {
		var err error
		if r.seccomp, err = seccompFilter(); err != nil && !errors.Is(err, errNoSeccomp) {
			return nil, fmt.Errorf("seccomp filter: %w", err)
		}
	}
	r.err = r.findTools()
	if r.err == nil {
		r.err = r.probe()
	}
	if r.cg, r.cgErr = detectCgroups(cfg.Cgroup); r.cgErr != nil && os.Geteuid() != 0 {
		r.cgErr = fmt.Errorf("not root: %w", r.cgErr)
	}
	return r, nil
}

// Err is why commands cannot run; nil when they can.
func (r *Runner) Err() error { return r.err }

// Describe returns log attributes saying how commands are confined:
// mechanism, cgroup (v1, v2 or rlimit), uid, and why no cgroup is used.
func (r *Runner) Describe() []any {
	if r.cfg.Mechanism == None {
		return []any{"mechanism", None, "uid", os.Geteuid()}
	}
	uid := os.Geteuid()
	if r.drop != nil {
		uid = r.drop.uid
	}
	out := []any{"mechanism", Bwrap, "cgroup", r.LimitMode(), "uid", uid, "seccomp", r.Seccomp()}
	if r.cgErr != nil {
		out = append(out, "cgroup_err", r.cgErr)
	}
	if r.err != nil {
		out = append(out, "err", r.err)
	}
	return out
}

// LimitMode says how commands' limits are enforced: "v1" or "v2" (a
// cgroup: the kernel kills a command over its memory), "rlimit"
// (RLIMIT_AS: its allocations fail), or "none" (unconfined).
func (r *Runner) LimitMode() string {
	switch {
	case r.cfg.Mechanism == None:
		return None
	case r.cg != nil:
		return r.cg.mode()
	}
	return "rlimit"
}

// Own gives dir and everything below it to the sandbox's user, when it is
// not the caller's.
func (r *Runner) Own(dir string) error {
	if r.drop == nil || r.cfg.Mechanism == None {
		return nil
	}
	uid, gid := r.drop.uid, r.drop.gid
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// probeSystem lists the system paths as the host has them, and the
// directory of /etc/resolv.conf's target when it lies elsewhere (e.g.
// /run/systemd/resolve).
func probeSystem() ([]hostEntry, []string) {
	var sys []hostEntry
	for _, p := range systemPaths {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.Mode()&fs.ModeSymlink != 0:
			if t, err := os.Readlink(p); err == nil {
				sys = append(sys, hostEntry{path: p, target: t})
			}
		case fi.IsDir():
			sys = append(sys, hostEntry{path: p})
		}
	}
	var extra []string
	if t, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && !SystemPath(t) {
		extra = append(extra, filepath.Dir(t))
	}
	return sys, extra
}

// masks resolves the paths to mask; those that do not exist are dropped.
func masks(paths []string) []maskEntry {
	var out []maskEntry
	for _, p := range paths {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			continue
		}
		fi, err := os.Stat(real)
		if err != nil {
			continue
		}
		out = append(out, maskEntry{path: real, dir: fi.IsDir()})
	}
	return out
}

// closeOnExec marks the descriptors this process inherited without
// close-on-exec (those it opens itself have it), so that none leaks into
// a sandbox: bwrap passes on whatever it gets.
func closeOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// findTools finds bwrap and, for a root caller, setpriv, which must lie
// in the system directories the sandbox shows.
func (r *Runner) findTools() error {
	var err error
	if r.bwrap, err = exec.LookPath(r.cfg.Bwrap); err != nil {
		return fmt.Errorf("bwrap %q not found (Debian package bubblewrap): %w", r.cfg.Bwrap, err)
	}
	if r.drop == nil {
		return nil
	}
	if r.drop.setpriv, err = exec.LookPath("setpriv"); err != nil {
		return fmt.Errorf("setpriv not found (Debian package util-linux): %w", err)
	}
	if r.drop.setpriv, err = filepath.EvalSymlinks(r.drop.setpriv); err != nil || !SystemPath(r.drop.setpriv) {
		return fmt.Errorf("setpriv %s: not in the system directories a sandbox shows (%v)", r.drop.setpriv, err)
	}
	return nil
}

// probe runs a trivial sandbox: bwrap may be present while the
// namespaces it needs are not allowed.
func (r *Runner) probe() error {
	filter, err := r.seccompFile()
	if err != nil {
		return err
	}
	fd := -1
	if filter != nil {
		defer func() { _ = filter.Close() }()
		fd = 3
	}
	args := bwrapArgs(layout{extraRO: []string{"/"}}, r.drop, -1, -1, fd, "/", r.bwrap, []string{"--version"})
	cmd := exec.Command(r.bwrap, args...)
	cmd.Dir, cmd.Env = "/", []string{}
	if filter != nil {
		cmd.ExtraFiles = []*os.File{filter}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bwrap cannot make a sandbox here (namespaces not allowed?): %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// seccompFile is the read end of a pipe holding the seccomp filter for
// one bwrap (nil without a filter); the caller closes it.
func (r *Runner) seccompFile() (*os.File, error) {
	if r.seccomp == nil {
		return nil, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// A few hundred bytes: the pipe holds them all before bwrap reads.
	_, err = pw.Write(r.seccomp)
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = pr.Close()
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	return pr, nil
}

// Seccomp says whether commands run under the seccomp filter.
func (r *Runner) Seccomp() bool { return r.seccomp != nil }

// Result is how a command ended.
type Result struct {
	ExitCode int
	// OOMKilled: the kernel killed a process of the command for going
	// over its memory limit.
	OOMKilled bool
	// PeakBytes is the cgroup's peak memory use (0 when unknown).
	PeakBytes  int64
	LimitBytes int64
}
