package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is a started command.
type Process struct {
	cmd   *exec.Cmd
	limit int64
	// sandboxed: pid is bwrap's child, the sandbox's init (its PID 1),
	// whose death ends every process of the sandbox; else pid leads the
	// command's process group.
	sandboxed bool
	pid       int
	pidfd     int // the sandbox's init, -1 when none
	group     *group

	mu   sync.Mutex
	done bool
}

// Start starts s. In a sandbox the command runs only once the sandbox is
// in its cgroup (or under its rlimit): bwrap reports its child's pid on
// an info pipe and waits on a block pipe that Start closes after moving
// that child.
func (r *Runner) Start(s Spec) (*Process, error) {
	if r.cfg.Mechanism == None {
		return r.startPlain(s)
	}
	if r.err != nil {
		return nil, r.err
	}
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer func() { _ = infoR.Close() }()
	defer func() { _ = infoW.Close() }()
	blockR, blockW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer func() { _ = blockR.Close() }()
	defer func() { _ = blockW.Close() }()
	l := layout{system: r.sys, extraRO: r.extra, writable: cleanAll(s.Writable), readOnly: cleanAll(s.ReadOnly),
		masks: masks(s.Mask), devices: s.Devices, noNetwork: s.NoNetwork}
	filter, err := r.seccompFile()
	if err != nil {
		return nil, err
	}
	fd := -1
	if filter != nil {
		defer func() { _ = filter.Close() }()
		fd = 5
	}
	cmd := exec.Command(r.bwrap, bwrapArgs(l, r.drop, 3, 4, fd, s.Dir, s.Path, s.Args)...)
	cmd.Dir, cmd.Env = "/", nonNil(s.Env)
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	cmd.ExtraFiles = []*os.File{infoW, blockR}
	if filter != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, filter)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	var g *group
	if r.cg != nil {
		if g, err = r.cg.create(s.Name, s.Limits); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		removeGroup(g)
		return nil, fmt.Errorf("start bwrap: %w", err)
	}
	_ = infoW.Close()
	_ = blockR.Close()
	p := &Process{cmd: cmd, limit: s.Limits.MemoryBytes, sandboxed: true, pidfd: -1, group: g}
	if err := p.confine(infoR, g, s.Limits); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		p.close()
		return nil, err
	}
	_ = blockW.Close() // the command runs
	return p, nil
}

// confine reads the sandbox's init from bwrap and puts it in g, or under
// RLIMIT_AS without one.
func (p *Process) confine(info *os.File, g *group, l Limits) error {
	var msg struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(info).Decode(&msg); err != nil || msg.ChildPid <= 0 {
		return fmt.Errorf("bwrap did not start the sandbox (its error is in the output): %v", err)
	}
	p.pid = msg.ChildPid
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of the sandbox: %w", err)
	}
	p.pidfd = fd
	if g != nil {
		return g.enter(p.pid)
	}
	if l.MemoryBytes > 0 {
		lim := &unix.Rlimit{Cur: uint64(l.MemoryBytes), Max: uint64(l.MemoryBytes)}
		if err := unix.Prlimit(p.pid, unix.RLIMIT_AS, lim, nil); err != nil {
			return fmt.Errorf("limit the sandbox's address space: %w", err)
		}
	}
	return nil
}

// startPlain runs s unconfined, in its own process group.
func (r *Runner) startPlain(s Spec) (*Process, error) {
	if s.NoNetwork {
		return nil, errors.New("no network: without a sandbox (--trainer-agent.sandbox=none) a command keeps the host's network")
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir, cmd.Env = s.Dir, nonNil(s.Env)
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Path, err)
	}
	return &Process{cmd: cmd, pid: cmd.Process.Pid, pidfd: -1}, nil
}

// Pid is the sandbox's init (bwrap's child) as the host sees it, or the
// unconfined command's.
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the command and every process it started, but not
// to the sandbox's init (which would take them all down at once).
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if !p.sandboxed {
		_ = syscall.Kill(-p.pid, sig)
		return
	}
	var pids []int
	if p.group != nil {
		pids = p.group.pids()
	} else {
		pids = descendants(p.pid)
	}
	for _, q := range pids {
		if q != p.pid {
			_ = syscall.Kill(q, sig)
		}
	}
}

// Kill ends the command and everything it started at once.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if !p.sandboxed {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		return
	}
	// The kernel ends a PID namespace with its init.
	_ = unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0)
	if p.group != nil {
		for _, q := range p.group.pids() {
			_ = syscall.Kill(q, syscall.SIGKILL)
		}
	}
}

// Wait waits for the command, makes sure nothing it started is left, and
// removes its cgroup. The error is exec's: an *exec.ExitError when it
// exited non-zero (bwrap exits 128+n when the command died of signal n).
func (p *Process) Wait() (Result, error) {
	err := p.cmd.Wait()
	res := Result{ExitCode: p.cmd.ProcessState.ExitCode(), LimitBytes: p.limit}
	if p.group != nil {
		res.OOMKilled, res.PeakBytes = p.group.usage()
	}
	p.mu.Lock()
	p.done = true
	if !p.sandboxed {
		// Members of the group that outlived its leader.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.mu.Unlock()
	if cerr := p.close(); cerr != nil && err == nil {
		err = cerr
	}
	return res, err
}

// close releases the pidfd and removes the cgroup.
func (p *Process) close() error {
	if p.pidfd >= 0 {
		_ = unix.Close(p.pidfd)
		p.pidfd = -1
	}
	if p.group == nil {
		return nil
	}
	return p.group.remove()
}

func removeGroup(g *group) {
	if g != nil {
		_ = g.remove()
	}
}

func cleanAll(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Clean(p)
	}
	return out
}

// nonNil keeps an empty environment empty (exec reads nil as "inherit").
func nonNil(env []string) []string {
	if env == nil {
		return []string{}
	}
	return env
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		q, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if pp, ok := parentOf(string(b)); ok {
			children[pp] = append(children[pp], q)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := children[queue[0]]
		queue = append(queue[1:], c...)
		out = append(out, c...)
	}
	return out
}

// parentOf returns the parent pid from a /proc/<pid>/stat line:
// "pid (comm) state ppid ...", where comm may hold spaces and parens.
func parentOf(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return 0, false
	}
	var state byte
	var ppid int
	if _, err := fmt.Sscanf(stat[i+2:], "%c %d", &state, &ppid); err != nil {
		return 0, false
	}
	return ppid, true
}
