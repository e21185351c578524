package gpu

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Owner names the job a process belongs to (false when none does).
type Owner func(pid uint32) (job string, ok bool)

// taskCgroup matches the cgroup name the agent gives a task's sandbox,
// "<job>-r<rank>-a<attempt>" (after the node's name and a dash), with the
// sandbox's ".<n>" and "@<pid>" suffixes.
var taskCgroup = regexp.MustCompile(`^(.+)-r\d+-a\d+(?:\.\d+)?(?:@\d+)?$`)

// CgroupOwner finds a process's job from its cgroup (/proc/<pid>/cgroup):
// every process of a sandboxed task, its children included, lives in the
// task's cgroup, named after node, job, rank and attempt. A process
// outside a task's cgroup (a task run without one) has no owner.
func CgroupOwner(node string) Owner {
	return func(pid uint32) (string, bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			return "", false
		}
		return ownerFromCgroup(node, string(b))
	}
}

// ownerFromCgroup reads the job from the content of /proc/<pid>/cgroup.
func ownerFromCgroup(node, content string) (string, bool) {
	for line := range strings.SplitSeq(content, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for elem := range strings.SplitSeq(parts[2], "/") {
			rest, ok := strings.CutPrefix(elem, node+"-")
			if !ok {
				continue
			}
			if m := taskCgroup.FindStringSubmatch(rest); m != nil {
				return m[1], true
			}
		}
	}
	return "", false
}
