package traineragent

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/bmaas/bmaas/pkg/sandbox"
)

// sandboxPath is PATH in a sandboxed task.
const sandboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// setupSandbox makes the runner that confines process tasks, and says
// how it does. A missing bwrap fails process tasks, not the agent:
// builtin tasks and model-server replicas need no sandbox.
func (s *Service) setupSandbox() error {
	box, err := sandbox.New(sandbox.Config{Mechanism: s.cfg.Sandbox, Bwrap: s.cfg.Bwrap,
		UID: s.cfg.SandboxUID, GID: s.cfg.SandboxGID, Cgroup: "bmaas", NoSeccomp: !s.cfg.Seccomp})
	if err != nil {
		return fmt.Errorf("trainer-agent.sandbox: %w", err)
	}
	s.box = box
	switch {
	case s.cfg.Sandbox == sandbox.None:
		s.log.Warn("TASK SANDBOX OFF: process tasks run as the agent's user, see its files and secrets, and have no memory or CPU limit; for development only",
			"flag", "trainer-agent.sandbox=none")
	case box.Err() != nil:
		s.log.Error("task sandbox unusable; process tasks fail until it is fixed", box.Describe()...)
	default:
		s.log.Info("task sandbox", box.Describe()...)
	}
	if ok, why := s.replicaProcesses(); ok {
		s.log.Info("model-server replicas run as sandboxed processes", "binary", s.cfg.ReplicaBinary)
	} else {
		s.log.Warn("model-server replicas run inside the agent's process, unsandboxed", "why", why)
	}
	return nil
}

// sandboxErr is why a process task cannot run, with what to do about it.
func sandboxErr(err error) error {
	return fmt.Errorf("process tasks run in a sandbox (--trainer-agent.sandbox=bwrap): %w; install Debian's bubblewrap, "+
		"set --trainer-agent.bwrap to its path, or run tasks unconfined with --trainer-agent.sandbox=none", err)
}

// taskPATH is the PATH a process task gets and its command is looked up
// in: the sandbox's, or the agent's own when tasks are not sandboxed.
func (s *Service) taskPATH() string {
	if p := os.Getenv("PATH"); s.cfg.Sandbox == sandbox.None && p != "" {
		return p
	}
	return sandboxPath
}

// sandboxSpec is the sandbox of a process task: its directory writable,
// a workdir read-only, the data and work directories and the secrets
// masked, its GPUs' devices, no network when it asks none, and its
// resource request as limits.
func (w *worker) sandboxSpec(rt *schedulerv1.ProcessRuntime, d taskDirs, path string, out io.Writer) sandbox.Spec {
	var ro []string
	if rt.Workdir != "" {
		ro = append(ro, rt.Workdir)
	}
	if root := commandRoot(path); root != "" && !within(path, w.dir) && !within(path, rt.Workdir) {
		ro = append(ro, root)
	}
	res := w.a.GetSpec().GetResources()
	return sandbox.Spec{
		Name: fmt.Sprintf("%s-%s-r%d-a%d", w.s.cfg.Node, w.a.JobId, w.a.Rank, w.a.Attempt),
		Path: path, Args: rt.Args, Env: w.processEnv(rt, d), Dir: d.cwd,
		Writable: []string{w.dir}, ReadOnly: ro,
		Mask:      append([]string{w.s.cfg.DataDir, w.s.cfg.workDir()}, w.s.cfg.Secrets...),
		Devices:   sandbox.GPUDevices(w.a.GpuIndices, exists),
		NoNetwork: rt.GetNoNetwork(),
		Limits:    sandbox.Limits{MemoryBytes: res.GetMemoryBytes(), CPUMillis: cpuQuota(res)},
		Stdout:    out, Stderr: out,
	}
}

// commandRoot is what a command outside the system directories needs
// bound read-only: its virtual environment (the directory above bin/
// holding pyvenv.cfg), else its own directory.
func commandRoot(path string) string {
	if sandbox.SystemPath(path) {
		return ""
	}
	dir := filepath.Dir(path)
	if venv := filepath.Dir(dir); exists(filepath.Join(venv, "pyvenv.cfg")) {
		return venv
	}
	return dir
}

// lookPath finds command in the directories of pathList, or checks a
// path that names a directory.
func lookPath(command, pathList string) (string, error) {
	if strings.Contains(command, "/") {
		return exec.LookPath(command)
	}
	for _, dir := range filepath.SplitList(pathList) {
		p := filepath.Join(dir, command)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func within(path, dir string) bool {
	return dir != "" && (path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/"))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
