package sandbox

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// systemPaths are bound read-only (directories) or recreated (symlinks)
// as the host has them; absent ones are skipped.
var systemPaths = []string{"/usr", "/etc", "/opt", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// hostEntry is a system path as the host has it: a directory, or a
// symlink to target.
type hostEntry struct {
	path, target string
}

// maskEntry is a path the sandbox must not show: a directory becomes an
// empty tmpfs nobody can list, a file /dev/null (unreadable: nodev).
type maskEntry struct {
	path string
	dir  bool
}

// layout is what a sandbox's file system is made of; the paths are
// absolute and clean.
type layout struct {
	system   []hostEntry
	extraRO  []string // host paths bound read-only by path (resolv.conf's directory)
	writable []string
	readOnly []string
	masks    []maskEntry
	devices  []string
	// noNetwork gives the sandbox a network namespace of its own, with
	// only a loopback interface.
	noNetwork bool
}

// op is one bwrap mount operation at dst.
type op struct {
	dst  string
	args []string
	mask bool // a mask goes after the mounts at its depth, so it wins
	bind bool // a bind (not a fresh tmpfs, proc or dev): what it holds is visible
}

// mountArgs returns bwrap's mount options for l: parents before their
// children, so that a mask (a tmpfs over the data directory) comes
// before the task directory bound inside it, and a bound directory
// comes before the masks inside it.
func mountArgs(l layout) []string {
	var ops []op
	for _, e := range l.system {
		if e.target != "" {
			ops = append(ops, op{dst: e.path, args: []string{"--symlink", e.target, e.path}})
		} else {
			ops = append(ops, op{dst: e.path, args: []string{"--ro-bind", e.path, e.path}, bind: true})
		}
	}
	ops = append(ops, op{dst: "/proc", args: []string{"--proc", "/proc"}},
		op{dst: "/dev", args: []string{"--dev", "/dev"}},
		op{dst: "/tmp", args: []string{"--tmpfs", "/tmp"}})
	for _, p := range l.extraRO {
		ops = append(ops, op{dst: p, args: dirBind("--ro-bind", p), bind: true})
	}
	for _, d := range l.devices {
		ops = append(ops, op{dst: d, args: []string{"--dev-bind", d, d}, bind: true})
	}
	for _, p := range l.writable {
		ops = append(ops, op{dst: p, args: dirBind("--bind", p), bind: true})
	}
	for _, p := range l.readOnly {
		ops = append(ops, op{dst: p, args: dirBind("--ro-bind", p), bind: true})
	}
	mounts := len(ops)
	for _, m := range l.masks {
		if !visible(m.path, ops[:mounts]) {
			continue
		}
		if m.dir {
			ops = append(ops, op{dst: m.path, args: []string{"--perms", "0111", "--tmpfs", m.path}, mask: true})
		} else {
			ops = append(ops, op{dst: m.path, args: []string{"--ro-bind", "/dev/null", m.path}, mask: true})
		}
	}
	sort.SliceStable(ops, func(i, j int) bool {
		di, dj := depth(ops[i].dst), depth(ops[j].dst)
		if di != dj {
			return di < dj
		}
		return !ops[i].mask && ops[j].mask
	})
	var args []string
	for _, o := range ops {
		args = append(args, o.args...)
	}
	return args
}

// dirBind binds directory p at the same path. The directory is made
// first, with its missing parents mode 0755: bwrap would make them 0700,
// which the sandbox's user (not root) could not pass through.
func dirBind(flag, p string) []string {
	if p == "/" {
		return []string{flag, p, p}
	}
	return []string{"--perms", "0755", "--dir", p, flag, p, p}
}

// visible reports whether path would show in the sandbox: it lies in a
// bound directory, or a mount lies inside it (its parents are created).
func visible(path string, ops []op) bool {
	for _, o := range ops {
		if (o.bind && under(path, o.dst)) || (under(o.dst, path) && o.dst != path) {
			return true
		}
	}
	return false
}

// under reports whether path is dir or lies below it.
func under(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(filepath.Clean(p), "/")
}

// drop is the user a root caller's sandbox runs its command as: bwrap
// runs as root (it reaches the bind sources whatever their parents'
// modes) keeping only the capabilities setpriv needs to switch to the
// user, and setpriv switches, clearing groups and capabilities, with no
// new privileges. A caller that is not root runs bwrap as itself in a
// user namespace instead (drop is nil).
type drop struct {
	setpriv  string
	uid, gid int
}

// bwrapArgs is the whole bwrap command line (without bwrap itself): own
// PID, IPC, UTS and cgroup namespaces (and user, unless d drops to a
// user), the host's network unless l has none, the mounts of l, and the
// command, which waits on blockFD before it runs (-1: no info or block
// pipe), under the seccomp filter bwrap reads from seccompFD (-1: none).
func bwrapArgs(l layout, d *drop, infoFD, blockFD, seccompFD int, dir, path string, argv []string) []string {
	args := []string{"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
		"--die-with-parent", "--new-session"}
	if l.noNetwork {
		args = append(args, "--unshare-net")
	}
	if infoFD >= 0 {
		args = append(args, "--info-fd", strconv.Itoa(infoFD))
	}
	if blockFD >= 0 {
		args = append(args, "--block-fd", strconv.Itoa(blockFD))
	}
	if seccompFD >= 0 {
		args = append(args, "--seccomp", strconv.Itoa(seccompFD))
	}
	if d == nil {
		args = append([]string{"--unshare-user"}, args...)
	} else {
		args = append(args, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
	}
	args = append(args, mountArgs(l)...)
	args = append(args, "--chdir", dir, "--")
	if d != nil {
		args = append(args, d.setpriv, "--reuid="+strconv.Itoa(d.uid), "--regid="+strconv.Itoa(d.gid),
			"--clear-groups", "--inh-caps=-all", "--no-new-privs", "--")
	}
	args = append(args, path)
	return append(args, argv...)
}

// GPUDevices returns the device nodes a task on the GPUs of indices
// needs: /dev/nvidiaN for each, and the driver's shared nodes; only those
// exists reports are bound.
func GPUDevices(indices []int32, exists func(string) bool) []string {
	var out []string
	for _, i := range indices {
		out = append(out, "/dev/nvidia"+strconv.Itoa(int(i)))
	}
	if len(indices) > 0 {
		out = append(out, "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
	}
	kept := out[:0]
	for _, d := range out {
		if exists(d) {
			kept = append(kept, d)
		}
	}
	return kept
}

// SystemPath reports whether path lies in the system directories every
// sandbox sees read-only (/usr, /etc, /opt, /bin, /sbin, /lib*).
func SystemPath(path string) bool {
	path = filepath.Clean(path)
	for _, p := range systemPaths {
		if p != "/sys" && under(path, p) {
			return true
		}
	}
	return false
}
