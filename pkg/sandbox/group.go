package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupWrite is one limit file to write.
type cgroupWrite struct {
	cpu        bool // in the cpu directory (v1), else the memory one
	file, data string
	optional   bool // absent when the kernel lacks the feature (swap accounting)
}

// cfsPeriod is the CPU quota's period in microseconds.
const cfsPeriod = 100000

// limitWrites returns the files that set l on a v1 or v2 cgroup. A CPU
// millicore is cfsPeriod/1000 microseconds of CPU time per period.
func limitWrites(v2 bool, l Limits) []cgroupWrite {
	var out []cgroupWrite
	mem := strconv.FormatInt(l.MemoryBytes, 10)
	quota := strconv.FormatInt(max(1000, l.CPUMillis*cfsPeriod/1000), 10)
	switch {
	case v2:
		if l.MemoryBytes > 0 {
			out = append(out, cgroupWrite{file: "memory.max", data: mem},
				cgroupWrite{file: "memory.swap.max", data: "0", optional: true})
		}
		if l.CPUMillis > 0 {
			out = append(out, cgroupWrite{cpu: true, file: "cpu.max", data: quota + " " + strconv.Itoa(cfsPeriod)})
		}
	default:
		if l.MemoryBytes > 0 {
			out = append(out, cgroupWrite{file: "memory.limit_in_bytes", data: mem},
				cgroupWrite{file: "memory.memsw.limit_in_bytes", data: mem, optional: true})
		}
		if l.CPUMillis > 0 {
			out = append(out, cgroupWrite{cpu: true, file: "cpu.cfs_period_us", data: strconv.Itoa(cfsPeriod)},
				cgroupWrite{cpu: true, file: "cpu.cfs_quota_us", data: quota})
		}
	}
	return out
}

// group is one task's cgroup.
type group struct {
	v2       bool
	mem, cpu string // cpu is "" or mem on v2
}

// create makes a cgroup for a command named name, with limits l, as
// name@pid: the sweep of a later process finds what a killed one left.
// A name taken (by a command of another runner in this process) gets a
// suffix: a directory that exists is never taken over, as it may be about
// to get processes.
func (c *cgroups) create(name string, l Limits) (*group, error) {
	var g *group
	for i := 0; g == nil; i++ {
		n := fmt.Sprintf("%s@%d", name, os.Getpid())
		if i > 0 {
			n = fmt.Sprintf("%s.%d@%d", name, i, os.Getpid())
		}
		var err error
		if g, err = c.mkdir(n); err != nil && (!errors.Is(err, os.ErrExist) || i == 100) {
			return nil, err
		}
	}
	for _, w := range limitWrites(c.v2, l) {
		dir := g.mem
		if w.cpu {
			if g.cpu == "" {
				continue
			}
			dir = g.cpu
		}
		err := os.WriteFile(filepath.Join(dir, w.file), []byte(w.data), 0o644)
		if err != nil && !(w.optional && errors.Is(err, os.ErrNotExist)) {
			_ = g.remove()
			return nil, fmt.Errorf("cgroup %s: %w", w.file, err)
		}
	}
	return g, nil
}

// mkdir makes the group's directories; os.ErrExist when one exists.
func (c *cgroups) mkdir(name string) (*group, error) {
	g := &group{v2: c.v2, mem: filepath.Join(c.mem, name)}
	if c.cpu != "" {
		g.cpu = filepath.Join(c.cpu, name)
	}
	var made []string
	for _, d := range g.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil {
			for _, m := range made {
				_ = os.Remove(m)
			}
			return nil, fmt.Errorf("cgroup %s: %w", d, err)
		}
		made = append(made, d)
	}
	return g, nil
}

// dirs are the group's directories, memory first.
func (g *group) dirs() []string {
	if g.cpu == "" || g.cpu == g.mem {
		return []string{g.mem}
	}
	return []string{g.mem, g.cpu}
}

// enter moves pid (and the children it forks later) into the group.
func (g *group) enter(pid int) error {
	for _, d := range g.dirs() {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move pid %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

// pids lists the group's processes.
func (g *group) pids() []int {
	p, _ := readPids(filepath.Join(g.mem, "cgroup.procs"))
	return p
}

// usage reports whether the OOM killer killed a process of the group and
// the group's peak memory use (0 when the kernel does not say).
func (g *group) usage() (oomKilled bool, peak int64) {
	events, peakFile := "memory.oom_control", "memory.max_usage_in_bytes"
	if g.v2 {
		events, peakFile = "memory.events", "memory.peak"
	}
	b, _ := os.ReadFile(filepath.Join(g.mem, events))
	if n, ok := field(string(b), "oom_kill"); ok && n > 0 {
		oomKilled = true
	}
	b, _ = os.ReadFile(filepath.Join(g.mem, peakFile))
	peak, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return oomKilled, peak
}

// field returns the value of key in "key value" lines.
func field(s, key string) (int64, bool) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, err := strconv.ParseInt(f[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// remove kills what is left in the group and removes it; it polls for a
// few seconds while the kernel reaps the group's processes.
func (g *group) remove() error {
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range g.dirs() {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			for _, p := range g.pids() {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func readPids(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}
