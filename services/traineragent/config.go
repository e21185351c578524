package traineragent

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/bmaas/bmaas/pkg/gpu"
	"github.com/bmaas/bmaas/pkg/sandbox"
)

// Config configures the trainer agent: it registers its node and runs the
// training tasks the scheduler assigns to it.
type Config struct {
	// Node is the node's name (default: the host name).
	Node string `yaml:"node"`
	// Host is the address other workers reach this node at (rendezvous).
	Host string `yaml:"host"`
	// CPUMillis and MemoryBytes are what the node offers (default: the machine's).
	CPUMillis   int64 `yaml:"cpu_millis"`
	MemoryBytes int64 `yaml:"memory_bytes"`
	// Labels are k=v pairs separated by commas.
	Labels string `yaml:"labels"`
	Pool   string `yaml:"pool"`
	// FakeGPUs simulates this many GPUs instead of asking NVML.
	FakeGPUs int `yaml:"fake_gpus"`
	// FakeGPUMemory is each simulated GPU's memory in bytes.
	FakeGPUMemory int64 `yaml:"fake_gpu_memory"`
	// WorkDir holds the tasks' files (default: <data dir>/agent).
	WorkDir string `yaml:"work_dir"`
	// DataDir is the process's data directory, set by the caller.
	DataDir string `yaml:"-"`
	// Python runs commands named python or python3.
	Python string `yaml:"python"`
	// CheckpointInterval is how often a process job's checkpoint directory
	// is looked at, and uploaded when it changed.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// FlushInterval bounds how often a running task's status is written.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// LeaseTTL is the node lease's time to live.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// SingleProcess, set by bmaas up, says the agent shares its process
	// with etcd and the scheduler (see runNode).
	SingleProcess bool `yaml:"-"`
	// StopGrace is the time between SIGTERM and SIGKILL when a task stops,
	// unless its job sets termination_grace_seconds; replicas always
	// take it.
	StopGrace time.Duration `yaml:"stop_grace"`
	// ReplicaDrain bounds the removal of a stopping replica's endpoint
	// from the routing table, before the replica is told to stop.
	ReplicaDrain time.Duration `yaml:"replica_drain"`
	// MaxExtractBytes and MaxExtractEntries bound what one code bundle or
	// checkpoint unpacks to: total file bytes, files and directories.
	MaxExtractBytes   int64 `yaml:"max_extract_bytes"`
	MaxExtractEntries int64 `yaml:"max_extract_entries"`
	// Sandbox confines process tasks: "bwrap" (bubblewrap), or "none"
	// (development only: a task runs as the agent, sees its files and
	// secrets, and has no memory or CPU limit).
	Sandbox string `yaml:"sandbox"`
	// Bwrap is bubblewrap's path (or name on PATH).
	Bwrap string `yaml:"bwrap"`
	// Seccomp runs sandboxed tasks under pkg/sandbox's seccomp filter
	// (mounts, namespaces, keyrings, eBPF, io_uring and the like refused).
	Seccomp bool `yaml:"seccomp"`
	// SandboxUID and SandboxGID run process tasks when the agent runs as
	// root; an agent that is not root runs them as itself. Every task
	// shares them: each sees only its own directory, and only its own
	// processes (own PID namespace).
	SandboxUID int `yaml:"sandbox_uid"`
	SandboxGID int `yaml:"sandbox_gid"`
	// ReplicaBinary runs model-server replicas as sandboxed child
	// processes (`ReplicaBinary replica --config FILE`): the bmaas binary.
	// bmaas up and bmaas serve default it to their own executable; when
	// empty, replicas run inside the agent's process (tests of the agent).
	ReplicaBinary string `yaml:"replica_binary"`
	// ModelCacheBytes bounds the node's model cache (<work dir>/model-cache):
	// least recently used artifacts no task holds are evicted above it;
	// 0 means unbounded.
	ModelCacheBytes int64 `yaml:"model_cache_bytes"`
	// Secrets are files and directories, besides the data and work
	// directories, that no task may see (the token file, TLS keys); set
	// by the caller.
	Secrets []string `yaml:"-"`
}

// RegisterFlags registers the flags under the `trainer-agent.` prefix; it
// holds the only defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Node, "trainer-agent.node", host, "name of this node")
	fs.StringVar(&c.Host, "trainer-agent.host", "127.0.0.1", "address other workers reach this node at")
	fs.Int64Var(&c.CPUMillis, "trainer-agent.cpu-millis", int64(runtime.NumCPU())*1000, "CPU the node offers, in millicores")
	fs.Int64Var(&c.MemoryBytes, "trainer-agent.memory-bytes", machineMemory(), "memory the node offers, in bytes")
	fs.StringVar(&c.Labels, "trainer-agent.labels", "", "node labels, k=v,k=v")
	fs.StringVar(&c.Pool, "trainer-agent.pool", "default", "pool the node belongs to")
	fs.IntVar(&c.FakeGPUs, "trainer-agent.fake-gpus", 0, "simulate this many GPUs instead of using NVML")
	c.FakeGPUMemory = gpu.DefaultFakeMemory
	fs.Func("trainer-agent.fake-gpu-memory", "memory of each simulated GPU: bytes, or with a unit (24Gi, 16GiB, 80GB) (default 16Gi)",
		func(v string) error {
			b, err := humanize.ParseBytes(v)
			if err != nil || b > math.MaxInt64 {
				return fmt.Errorf("expected bytes with an optional unit (24Gi, 16GiB), got %q", v)
			}
			c.FakeGPUMemory = int64(b)
			return nil
		})
	fs.StringVar(&c.WorkDir, "trainer-agent.work-dir", "", "directory for task files (default <data-dir>/agent)")
	fs.StringVar(&c.Python, "trainer-agent.python", "/usr/bin/python3", "interpreter for commands named python or python3")
	fs.DurationVar(&c.CheckpointInterval, "trainer-agent.checkpoint-interval", 5*time.Second,
		"how often a process job's checkpoint directory is uploaded when it changed")
	fs.DurationVar(&c.FlushInterval, "trainer-agent.flush-interval", time.Second, "how often a running task's progress is reported")
	fs.DurationVar(&c.LeaseTTL, "trainer-agent.lease-ttl", 5*time.Second, "time to live of the node's lease")
	fs.DurationVar(&c.StopGrace, "trainer-agent.stop-grace", 3*time.Second,
		"time between SIGTERM and SIGKILL when a task stops, unless its job sets its own (termination_grace_seconds)")
	fs.DurationVar(&c.ReplicaDrain, "trainer-agent.replica-drain", 2*time.Second,
		"bound of a stopping replica's removal from the routing table, before it is told to stop")
	// 16 GiB: above registry.max-artifact-bytes (10 GiB), as a checkpoint
	// of model weights hardly compresses.
	fs.Int64Var(&c.MaxExtractBytes, "trainer-agent.max-extract-bytes", 16<<30,
		"most bytes one code bundle or checkpoint may unpack to; a task whose archive holds more fails")
	fs.Int64Var(&c.MaxExtractEntries, "trainer-agent.max-extract-entries", 100_000,
		"most files and directories one code bundle or checkpoint may hold")
	fs.StringVar(&c.Sandbox, "trainer-agent.sandbox", sandbox.Bwrap,
		"how process tasks are confined: bwrap (bubblewrap), or none (development only: no isolation, no limits)")
	fs.StringVar(&c.Bwrap, "trainer-agent.bwrap", "bwrap", "bubblewrap's path (Debian package bubblewrap)")
	fs.BoolVar(&c.Seccomp, "trainer-agent.seccomp", true,
		"run sandboxed tasks under a seccomp filter that refuses mounts, new namespaces, keyrings, eBPF, io_uring, perf events and administrators' calls")
	fs.StringVar(&c.ReplicaBinary, "trainer-agent.replica-binary", "",
		"bmaas binary that runs model-server replicas as sandboxed processes (default: this bmaas binary)")
	fs.Int64Var(&c.ModelCacheBytes, "trainer-agent.model-cache-bytes", 20<<30,
		"bound of the node's model cache in bytes: least recently used artifacts no task holds are evicted above it (0: unbounded)")
	fs.IntVar(&c.SandboxUID, "trainer-agent.sandbox-uid", 65534, "uid process tasks run as when the agent is root (nobody)")
	fs.IntVar(&c.SandboxGID, "trainer-agent.sandbox-gid", 65534, "gid process tasks run as when the agent is root (nogroup)")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Node == "" || strings.ContainsAny(c.Node, "/ \t\n"):
		return fmt.Errorf("trainer-agent.node: %q must be non-empty without '/' or spaces", c.Node)
	case c.CPUMillis <= 0:
		return fmt.Errorf("trainer-agent.cpu-millis: must be positive, got %d", c.CPUMillis)
	case c.MemoryBytes <= 0:
		return fmt.Errorf("trainer-agent.memory-bytes: must be positive, got %d", c.MemoryBytes)
	case c.FakeGPUs < 0:
		return fmt.Errorf("trainer-agent.fake-gpus: must not be negative, got %d", c.FakeGPUs)
	case c.FakeGPUs > 0 && c.FakeGPUMemory <= 0:
		return fmt.Errorf("trainer-agent.fake-gpu-memory: must be positive, got %d", c.FakeGPUMemory)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("trainer-agent.checkpoint-interval: must be positive, got %s", c.CheckpointInterval)
	case c.FlushInterval <= 0:
		return fmt.Errorf("trainer-agent.flush-interval: must be positive, got %s", c.FlushInterval)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("trainer-agent.lease-ttl: must be at least 1s, got %s", c.LeaseTTL)
	case c.StopGrace <= 0 || c.StopGrace > MaxStopGrace:
		return fmt.Errorf("trainer-agent.stop-grace: must be within (0, %s], got %s", MaxStopGrace, c.StopGrace)
	case c.ReplicaDrain <= 0:
		return fmt.Errorf("trainer-agent.replica-drain: must be positive, got %s", c.ReplicaDrain)
	case c.MaxExtractBytes <= 0:
		return fmt.Errorf("trainer-agent.max-extract-bytes: must be positive, got %d", c.MaxExtractBytes)
	case c.MaxExtractEntries <= 0:
		return fmt.Errorf("trainer-agent.max-extract-entries: must be positive, got %d", c.MaxExtractEntries)
	case c.Sandbox != sandbox.Bwrap && c.Sandbox != sandbox.None:
		return fmt.Errorf("trainer-agent.sandbox: must be %s or %s, got %q", sandbox.Bwrap, sandbox.None, c.Sandbox)
	case c.Sandbox == sandbox.Bwrap && c.Bwrap == "":
		return fmt.Errorf("trainer-agent.bwrap: must name bubblewrap's binary")
	case c.ModelCacheBytes < 0:
		return fmt.Errorf("trainer-agent.model-cache-bytes: must not be negative (0: unbounded), got %d", c.ModelCacheBytes)
	case c.SandboxUID <= 0 || c.SandboxUID > maxID:
		return fmt.Errorf("trainer-agent.sandbox-uid: must be within 1 and %d (not root), got %d", maxID, c.SandboxUID)
	case c.SandboxGID <= 0 || c.SandboxGID > maxID:
		return fmt.Errorf("trainer-agent.sandbox-gid: must be within 1 and %d (not root), got %d", maxID, c.SandboxGID)
	}
	_, err := parseLabels(c.Labels)
	return err
}

// MaxStopGrace is the longest time between SIGTERM and SIGKILL, the
// agent's default and a job's own alike.
const MaxStopGrace = time.Hour

// maxID is the largest uid or gid (2^32-2: -1 means "unchanged").
const maxID = 1<<32 - 2

// DefaultConfig returns the flag defaults (for tests and embedding).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// workDir is where the tasks' files go.
func (c *Config) workDir() string {
	switch {
	case c.WorkDir != "":
		return c.WorkDir
	case c.DataDir != "":
		return filepath.Join(c.DataDir, "agent")
	}
	return filepath.Join(os.TempDir(), "bmaas-agent-"+c.Node)
}

// modelCacheDir is where the node's model cache lives.
func (c *Config) modelCacheDir() string { return filepath.Join(c.workDir(), "model-cache") }

// parseLabels parses "k=v,k=v".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("trainer-agent.labels: %q is not k=v", part)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// machineMemory reads MemTotal from /proc/meminfo; 1 GiB if unknown.
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 1 << 30
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 1 << 30
}
