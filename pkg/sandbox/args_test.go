package sandbox

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var testSystem = []hostEntry{{path: "/usr"}, {path: "/etc"}, {path: "/sys"}, {path: "/bin", target: "usr/bin"}, {path: "/lib", target: "usr/lib"}}

func TestMountArgsOrderAndMasks(t *testing.T) {
	t.Parallel()
	l := layout{
		system:   testSystem,
		writable: []string{"/var/lib/bmaas/agent/job1/rank-0-attempt-0"},
		readOnly: []string{"/srv/code"},
		masks: []maskEntry{
			{path: "/var/lib/bmaas", dir: true},       // holds the task dir: masked before it is bound
			{path: "/etc/bmaas/token"},                // a file in a bound system dir
			{path: "/srv/code/.secrets", dir: true},   // a directory in a read-only bind
			{path: "/home/alice/token"},               // in nothing the sandbox shows: left out
			{path: "/srv/code/inner/key"},             // deeper than its bind
			{path: "/var/lib/bmaas/agent", dir: true}, // between the mask and the bind
		},
		devices: []string{"/dev/nvidia1", "/dev/nvidiactl"},
	}
	got := strings.Join(mountArgs(l), " ")
	want := strings.Join([]string{
		"--ro-bind /usr /usr", "--ro-bind /etc /etc", "--ro-bind /sys /sys", "--symlink usr/bin /bin", "--symlink usr/lib /lib",
		"--proc /proc", "--dev /dev", "--tmpfs /tmp",
		"--dev-bind /dev/nvidia1 /dev/nvidia1", "--dev-bind /dev/nvidiactl /dev/nvidiactl",
		"--perms 0755 --dir /srv/code --ro-bind /srv/code /srv/code",
		"--perms 0111 --tmpfs /var/lib/bmaas", "--ro-bind /dev/null /etc/bmaas/token", "--perms 0111 --tmpfs /srv/code/.secrets",
		"--ro-bind /dev/null /srv/code/inner/key", "--perms 0111 --tmpfs /var/lib/bmaas/agent",
		"--perms 0755 --dir /var/lib/bmaas/agent/job1/rank-0-attempt-0 --bind /var/lib/bmaas/agent/job1/rank-0-attempt-0 /var/lib/bmaas/agent/job1/rank-0-attempt-0",
	}, " ")
	require.Equal(t, want, got)
	require.NotContains(t, got, "alice")
}

func TestMountArgsMaskEqualToBindWins(t *testing.T) {
	t.Parallel()
	// A read-only directory that is itself secret stays hidden.
	got := mountArgs(layout{readOnly: []string{"/srv/data"}, masks: []maskEntry{{path: "/srv/data", dir: true}}})
	require.Equal(t, []string{"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--perms", "0755", "--dir", "/srv/data", "--ro-bind", "/srv/data", "/srv/data", "--perms", "0111", "--tmpfs", "/srv/data"}, got)
}

func TestMountArgsMaskUnderTmpIsLeftOut(t *testing.T) {
	t.Parallel()
	// /tmp is a fresh tmpfs: nothing of the host's /tmp shows unless bound.
	got := mountArgs(layout{masks: []maskEntry{{path: "/tmp/agent", dir: true}, {path: "/tmp/token"}}})
	require.Equal(t, []string{"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"}, got)
}

func TestBwrapArgs(t *testing.T) {
	t.Parallel()
	l := layout{system: testSystem, writable: []string{"/w"}}
	for _, d := range []*drop{nil, {setpriv: "/usr/bin/setpriv", uid: 65534, gid: 65533}} {
		s := strings.Join(bwrapArgs(l, d, 3, 4, -1, "/w/code", "/usr/bin/python3", []string{"train.py", "--", "x"}), " ")
		for _, want := range []string{"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
			"--die-with-parent", "--new-session", "--info-fd 3", "--block-fd 4", "--bind /w /w"} {
			require.Contains(t, s, want)
		}
		require.NotContains(t, s, "--unshare-net", "the network stays the host's")
		require.NotContains(t, s, "--unshare-all")
		require.NotContains(t, s, "--setenv", "the environment travels in bwrap's own, not in its arguments")
		if d == nil {
			require.Contains(t, s, "--unshare-user")
			require.NotContains(t, s, "--cap-add")
			require.True(t, strings.HasSuffix(s, "--chdir /w/code -- /usr/bin/python3 train.py -- x"), s)
			continue
		}
		require.NotContains(t, s, "--unshare-user", "root's bwrap maps no user: setpriv drops to the task's")
		require.Contains(t, s, "--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID")
		require.True(t, strings.HasSuffix(s, "--chdir /w/code -- /usr/bin/setpriv --reuid=65534 --regid=65533 --clear-groups "+
			"--inh-caps=-all --no-new-privs -- /usr/bin/python3 train.py -- x"), s)
	}
}

func TestGPUDevices(t *testing.T) {
	t.Parallel()
	all := func(string) bool { return true }
	require.Empty(t, GPUDevices(nil, all), "no GPU, no device")
	require.Equal(t, []string{"/dev/nvidia0", "/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"},
		GPUDevices([]int32{0, 3}, all))
	some := func(p string) bool { return p == "/dev/nvidia2" || p == "/dev/nvidiactl" || p == "/dev/nvidia-uvm" }
	require.Equal(t, []string{"/dev/nvidia2", "/dev/nvidiactl", "/dev/nvidia-uvm"}, GPUDevices([]int32{2}, some))
	require.Empty(t, GPUDevices([]int32{0, 1}, func(string) bool { return false }), "fake GPUs have no device nodes")
}

func TestSystemPath(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/usr/bin/python3": true, "/opt/venv/bin/python": true, "/etc/passwd": true, "/bin/sh": true, "/lib64/ld.so": true,
		"/home/u/venv/bin/python": false, "/usrx/bin": false, "/sys/fs": false, "/tmp/x": false, "/": false,
	} {
		require.Equal(t, want, SystemPath(p), p)
	}
}
