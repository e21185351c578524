package sandbox

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A host with cgroup v1 per controller and a cgroup2 holding only hugetlb.
const hybridMountinfo = `22 1 0:20 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridCgroup = `9:name=systemd:/
4:memory:/process_api/7123
2:cpuacct:/
1:cpu:/
0::/
`

func TestParseCgroupsHybrid(t *testing.T) {
	t.Parallel()
	ms := parseMountinfo(hybridMountinfo)
	require.Equal(t, []cgroupMount{
		{root: "/", point: "/sys/fs/cgroup/cpu", controllers: []string{"cpu"}},
		{root: "/", point: "/sys/fs/cgroup/cpuacct", controllers: []string{"cpuacct"}},
		{root: "/", point: "/sys/fs/cgroup/memory", controllers: []string{"memory"}},
		{root: "/", point: "/sys/fs/cgroup/systemd"},
		{root: "/", point: "/sys/fs/cgroup/unified", v2: true},
	}, ms)
	own := parseProcCgroup(hybridCgroup)
	require.Equal(t, map[string]string{"name=systemd": "/", "memory": "/process_api/7123", "cpuacct": "/", "cpu": "/", "": "/"}, own)
	require.Equal(t, "/sys/fs/cgroup/memory/process_api/7123", ownDir(ms[2], own["memory"]))
}

func TestParseCgroupsV2InContainer(t *testing.T) {
	t.Parallel()
	// A container sees its own cgroup as the mount's root.
	ms := parseMountinfo("612 600 0:30 /kubepods/pod1/c1 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate\n")
	require.Equal(t, []cgroupMount{{root: "/kubepods/pod1/c1", point: "/sys/fs/cgroup", v2: true}}, ms)
	own := parseProcCgroup("0::/kubepods/pod1/c1/agent\n")
	require.Equal(t, "/sys/fs/cgroup/agent", ownDir(ms[0], own[""]))
	// Combined v1 controllers.
	ms = parseMountinfo("35 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n")
	require.Equal(t, []string{"cpu", "cpuacct"}, ms[0].controllers)
	require.Equal(t, map[string]string{"cpu": "/a", "cpuacct": "/a"}, parseProcCgroup("3:cpu,cpuacct:/a\n"))
}

func TestLimitWrites(t *testing.T) {
	t.Parallel()
	l := Limits{MemoryBytes: 64 << 20, CPUMillis: 1500}
	require.Equal(t, []cgroupWrite{
		{file: "memory.limit_in_bytes", data: "67108864"},
		{file: "memory.memsw.limit_in_bytes", data: "67108864", optional: true},
		{cpu: true, file: "cpu.cfs_period_us", data: "100000"},
		{cpu: true, file: "cpu.cfs_quota_us", data: "150000"},
	}, limitWrites(false, l))
	require.Equal(t, []cgroupWrite{
		{file: "memory.max", data: "67108864"},
		{file: "memory.swap.max", data: "0", optional: true},
		{cpu: true, file: "cpu.max", data: "150000 100000"},
	}, limitWrites(true, l))
	require.Empty(t, limitWrites(true, Limits{}), "no request, no limit")
	require.Equal(t, "1000", limitWrites(false, Limits{CPUMillis: 1})[1].data, "the kernel's smallest quota")
}

func TestField(t *testing.T) {
	t.Parallel()
	n, ok := field("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill")
	require.True(t, ok)
	require.Equal(t, int64(1), n)
	n, ok = field("low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\n", "oom_kill")
	require.True(t, ok)
	require.Equal(t, int64(2), n)
	_, ok = field("max 1\n", "oom_kill")
	require.False(t, ok)
}

func TestParentOf(t *testing.T) {
	t.Parallel()
	p, ok := parentOf("123 (a) b (c) S 45 123 123 0 -1")
	require.True(t, ok)
	require.Equal(t, 45, p)
	_, ok = parentOf("garbage")
	require.False(t, ok)
}
