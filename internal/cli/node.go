package cli

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/spf13/cobra"
)

func nodeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "node",
		Aliases: []string{"nodes"},
		Short:   "Show the nodes the trainer agents registered (CPU, memory, GPUs)",
	}
	cmd.AddCommand(nodeListCommand(g), nodeGetCommand(g))
	return cmd
}

// scheduler returns a scheduler client on the same connection: one server
// address serves every service.
func (c *client) scheduler() schedulerv1.SchedulerServiceClient {
	return schedulerv1.NewSchedulerServiceClient(c.conn)
}

func nodeListCommand(g *globals) *cobra.Command {
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes with their capacity, what is allocated, GPUs, pool and labels, then each GPU's use",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &schedulerv1.ListNodesRequest{PageSize: pageSize}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*schedulerv1.Node, string, error) {
					req.PageToken = token
					resp, err := c.scheduler().ListNodes(ctx, req)
					return resp.GetNodes(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &schedulerv1.ListNodesResponse{Nodes: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					nodeRows(t, all.GetNodes())
					gpuRows(t, all.GetNodes(), true)
				})
			})
		},
	}
	cmd.Flags().Int32Var(&pageSize, "page-size", 0, "nodes fetched per request (0: server default)")
	return cmd
}

func nodeGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show one node and its GPUs: model, memory, what is allocated, used and utilisation",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.scheduler().GetNode(ctx, &schedulerv1.GetNodeRequest{Name: a[0]})
				if err != nil {
					return err
				}
				n := resp.GetNode()
				return g.printer(cmd.OutOrStdout()).print(n, func(t *table) {
					nodeRows(t, []*schedulerv1.Node{n})
					gpuRows(t, []*schedulerv1.Node{n}, false)
				})
			})
		},
	}
}

// gpuRows prints, after a blank line, one row per GPU of nodes: model,
// memory, the memory assignments hold on it (whole GPU or shares), the
// memory in use and the utilisation the agent last reported; the node's
// name first when withNode, the UUID last otherwise. Nothing without GPUs.
func gpuRows(t *table, nodes []*schedulerv1.Node, withNode bool) {
	head := []string{"GPU", "MODEL", "MEMORY", "ALLOCATED", "USED", "UTIL"}
	if withNode {
		head = append([]string{"NODE"}, head...)
	} else {
		head = append(head, "UUID")
	}
	printed := false
	for _, n := range nodes {
		for _, gpu := range n.GetGpus() {
			if !printed {
				t.row("")
				t.row(head...)
				printed = true
			}
			model := gpu.GetModel()
			if gpu.GetFake() {
				model += " (fake)"
			}
			row := []string{fmt.Sprint(gpu.GetIndex()), model, humanSize(gpu.GetMemoryBytes()),
				humanSize(gpu.GetAllocatedMemoryBytes()), humanSize(gpu.GetUsedMemoryBytes()), fmt.Sprintf("%d%%", gpu.GetUtilizationPercent())}
			if withNode {
				row = append([]string{n.GetName()}, row...)
			} else {
				row = append(row, orDash(gpu.GetUuid()))
			}
			t.row(row...)
		}
	}
}

// nodeRows prints the node table: capacity, then what is allocated of it.
func nodeRows(t *table, nodes []*schedulerv1.Node) {
	t.row("NAME", "POOL", "CPU", "MEMORY", "GPUS", "ALLOCATED", "LABELS", "REGISTERED")
	for _, n := range nodes {
		alloc := fmt.Sprintf("cpu %s, mem %s", formatCPU(n.GetAllocatedCpuMillis()), humanSize(n.GetAllocatedMemoryBytes()))
		if len(n.GetGpus()) > 0 {
			alloc += fmt.Sprintf(", gpu %d/%d", n.GetAllocatedGpus(), len(n.GetGpus()))
			var held, total int64
			for _, gpu := range n.GetGpus() {
				held, total = held+gpu.GetAllocatedMemoryBytes(), total+gpu.GetMemoryBytes()
			}
			if held > 0 {
				alloc += fmt.Sprintf(", gpu mem %s/%s", humanSize(held), humanSize(total))
			}
		}
		t.row(n.GetName(), orDash(n.GetPool()), formatCPU(n.GetCpuMillis()), humanSize(n.GetMemoryBytes()),
			gpuSummary(n.GetGpus()), alloc, joinMap(n.GetLabels()), formatTime(n.GetRegisterTime()))
	}
}

// gbInName matches a memory size already in a GPU's model name ("H100 80GB HBM3").
var gbInName = regexp.MustCompile(`\d+\s*GB`)

// gpuSummary groups a node's GPUs by model: "2x H100 80GB", or
// "1x A100 40GB, 1x T4 15GB"; simulated GPUs are marked "(fake)".
func gpuSummary(gpus []*schedulerv1.Gpu) string {
	if len(gpus) == 0 {
		return "-"
	}
	counts := map[string]int{}
	for _, gpu := range gpus {
		name := strings.TrimSpace(strings.TrimPrefix(gpu.GetModel(), "NVIDIA "))
		if name == "" {
			name = "GPU"
		}
		if gb := math.Round(float64(gpu.GetMemoryBytes()) / (1 << 30)); gb > 0 && !gbInName.MatchString(name) {
			name = fmt.Sprintf("%s %.0fGB", name, gb)
		}
		if gpu.GetFake() {
			name += " (fake)"
		}
		counts[name]++
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%dx %s", counts[n], n)
	}
	return strings.Join(parts, ", ")
}

// formatCPU prints millicores as cores: 1500 -> "1.5", 250 -> "0.25".
func formatCPU(millis int64) string {
	return strconv.FormatFloat(float64(millis)/1000, 'f', -1, 64)
}

// parseCPU parses a CPU quantity in the Kubernetes form: cores ("2",
// "0.5") or millicores ("500m"). It returns millicores.
func parseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil || v < 0 {
			return 0, usageErrorf("--cpu %q: expected cores (2, 0.5) or millicores (500m)", s)
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || v > 1e9 {
		return 0, usageErrorf("--cpu %q: expected cores (2, 0.5) or millicores (500m)", s)
	}
	if milli := v * 1000; milli != math.Trunc(milli) {
		return 0, usageErrorf("--cpu %q: finer than a millicore", s)
	}
	return int64(v * 1000), nil
}

// memoryUnits are the suffixes of a memory quantity: binary (Ki, Mi, ...)
// and decimal (k, M, G, ...), as Kubernetes writes them; a trailing B
// (GiB, GB) is accepted too.
var memoryUnits = map[string]float64{
	"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
}

var quantityRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([kKMGTP]i?)?B?$`)

// parseMemory parses a memory quantity ("1Gi", "512Mi", "1.5G", "1048576")
// into bytes.
func parseMemory(s string) (int64, error) {
	m := quantityRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, usageErrorf("--memory %q: expected bytes with an optional unit (512Mi, 1Gi, 2G)", s)
	}
	unit, ok := memoryUnits[m[2]]
	if !ok {
		return 0, usageErrorf("--memory %q: unknown unit %q", s, m[2])
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	b := math.Round(v * unit)
	if b > math.MaxInt64/2 {
		return 0, usageErrorf("--memory %q: too large", s)
	}
	return int64(b), nil
}
