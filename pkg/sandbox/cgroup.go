package sandbox

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

// cgroupMount is a cgroup file system mount from /proc/self/mountinfo.
type cgroupMount struct {
	root, point string
	v2          bool
	controllers []string // v1: from the mount options
}

// v1Controllers are the controllers a v1 mount's options may name.
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
	"blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"}

// parseMountinfo returns the cgroup and cgroup2 mounts.
func parseMountinfo(s string) []cgroupMount {
	var out []cgroupMount
	for line := range strings.Lines(s) {
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		m := cgroupMount{root: f[3], point: f[4], v2: g[0] == "cgroup2"}
		if !m.v2 {
			for o := range strings.SplitSeq(g[2], ",") {
				if slices.Contains(v1Controllers, o) {
					m.controllers = append(m.controllers, o)
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// parseProcCgroup maps each v1 controller (and "" for v2) to the
// process's cgroup path, from /proc/self/cgroup.
func parseProcCgroup(s string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(s) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for c := range strings.SplitSeq(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

// ownDir is the directory of the process's cgroup path in mount m.
func ownDir(m cgroupMount, path string) string {
	if m.root != "/" {
		path = strings.TrimPrefix(path, m.root)
	}
	return filepath.Join(m.point, path)
}

// cgroups is where the tasks' cgroups are made: on v1 one directory per
// controller (cpu may be missing), on v2 one for both.
type cgroups struct {
	v2       bool
	mem, cpu string // parent directories; cpu is "" without a cpu controller
}

func (c *cgroups) mode() string {
	if c.v2 {
		return "v2"
	}
	return "v1"
}

// detectCgroups finds a hierarchy with a memory controller the caller can
// use, and makes name under its own cgroup: cgroup v2 when the memory
// controller is enabled for it, else v1 memory (and cpu).
func detectCgroups(name string) (*cgroups, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	mounts, own := parseMountinfo(string(mi)), parseProcCgroup(string(pc))
	var errs []error
	for _, m := range mounts {
		if p, ok := own[""]; ok && m.v2 {
			c, err := setupV2(ownDir(m, p), name)
			if err == nil {
				return c, nil
			}
			errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
		}
	}
	var c cgroups
	for _, m := range mounts {
		for _, ctl := range m.controllers {
			if p, ok := own[ctl]; ok && (ctl == "memory" || ctl == "cpu") && !m.v2 {
				dir := filepath.Join(ownDir(m, p), name)
				if err := makeParent(dir); err != nil {
					errs = append(errs, fmt.Errorf("cgroup v1 %s: %w", ctl, err))
					continue
				}
				if ctl == "memory" {
					c.mem = dir
				} else {
					c.cpu = dir
				}
			}
		}
	}
	if c.mem != "" {
		return &c, nil
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no cgroup hierarchy with a memory controller"))
	}
	return nil, errors.Join(errs...)
}

// setupV2 makes own/name with the memory (and cpu) controllers enabled
// for its children. A cgroup with processes cannot enable controllers for
// its children, so the processes of own move to own/leaf first.
func setupV2(own, name string) (*cgroups, error) {
	b, err := os.ReadFile(filepath.Join(own, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	ctls := strings.Fields(string(b))
	if !slices.Contains(ctls, "memory") {
		return nil, fmt.Errorf("%s: memory controller not enabled", own)
	}
	want := "+memory"
	if slices.Contains(ctls, "cpu") {
		want += " +cpu"
	}
	if err := enable(own, want); errors.Is(err, syscall.EBUSY) {
		if err := moveAll(own, filepath.Join(own, "leaf")); err != nil {
			return nil, err
		}
		err = enable(own, want)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	dir := filepath.Join(own, name)
	if err := makeParent(dir); err != nil {
		return nil, err
	}
	if err := enable(dir, want); err != nil {
		return nil, err
	}
	c := &cgroups{v2: true, mem: dir}
	if strings.Contains(want, "cpu") {
		c.cpu = dir
	}
	return c, nil
}

// makeParent makes dir, the parent of the commands' cgroups, checks that
// cgroups can be made in it (it may exist, made by another user), and
// sweeps it.
func makeParent(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	probe := filepath.Join(dir, "probe-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Remove(probe); err != nil {
		return err
	}
	sweep(dir)
	return nil
}

// sweep removes the cgroups in dir that a process now gone made and
// could not remove (it was killed): their commands died with it (bwrap
// --die-with-parent), so they are empty; one that is not stays.
func sweep(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		i := strings.LastIndexByte(e.Name(), '@')
		pid, err := strconv.Atoi(e.Name()[i+1:])
		if !e.IsDir() || i < 0 || err != nil || pid <= 0 || pidAlive(pid) {
			continue
		}
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func enable(dir, ctls string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(ctls), 0o644)
}

// moveAll moves the processes of cgroup from into cgroup to.
func moveAll(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	pids, err := readPids(filepath.Join(from, "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, p := range pids {
		err := os.WriteFile(filepath.Join(to, "cgroup.procs"), []byte(strconv.Itoa(p)), 0o644)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("move pid %d to %s: %w", p, to, err)
		}
	}
	return nil
}
