package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
)

func versionCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "version",
		Aliases: []string{"versions"},
		Short:   "Manage model versions (NAME@REF: a number, an alias or latest)",
	}
	cmd.AddCommand(versionUploadCommand(g), versionImportCommand(g), versionListCommand(g),
		versionGetCommand(g), versionDownloadCommand(g), versionDeleteCommand(g))
	return cmd
}

func versionListCommand(g *globals) *cobra.Command {
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list NAME",
		Short: "List the versions of a model (all pages)",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &registryv1.ListModelVersionsRequest{Model: a[0], PageSize: pageSize}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*registryv1.ModelVersion, string, error) {
					req.PageToken = token
					resp, err := c.ListModelVersions(ctx, req)
					return resp.GetVersions(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &registryv1.ListModelVersionsResponse{Versions: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					versionRows(t, all.GetVersions())
				})
			})
		},
	}
	cmd.Flags().Int32Var(&pageSize, "page-size", 0, "versions fetched per request (0: server default)")
	return cmd
}

func versionGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME[@REF]",
		Short: "Show a model version (plain NAME means NAME@latest)",
		Args:  args("NAME[@REF]", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, ref, err := refArg(a[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: name, Version: ref})
				if err != nil {
					return err
				}
				return printVersion(g.printer(cmd.OutOrStdout()), resp.GetVersion())
			})
		},
	}
}

func versionDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME@REF",
		Short: "Delete a model version and its artifact",
		Args:  args("NAME@REF", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, ref, err := refArg(a[0])
			if err != nil {
				return err
			}
			if !strings.Contains(a[0], "@") {
				return usageErrorf("name the version to delete explicitly: %s@VERSION", name)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: name, Version: ref}); err != nil {
					return err
				}
				return done(g, cmd, "model version %s@%s deleted", name, ref)
			})
		},
	}
}

// versionRows prints versions as a table with a header.
func versionRows(t *table, vs []*registryv1.ModelVersion) {
	t.row("MODEL", "VERSION", "STATUS", "FORMAT", "SIZE", "SHA256", "ALIASES", "CREATED")
	for _, v := range vs {
		t.row(v.GetModel(), fmt.Sprint(v.GetVersion()), statusName(v.GetStatus()), formatName(v.GetFormat()),
			humanSize(v.GetSizeBytes()), shortDigest(v.GetSha256()), orDash(strings.Join(sorted(v.GetAliases()), ",")),
			formatTime(v.GetCreateTime()))
	}
}

// printVersion prints one version as a key/value list or as json/yaml.
func printVersion(p *printer, v *registryv1.ModelVersion) error {
	return p.print(v, func(t *table) {
		t.row("Model:", v.GetModel())
		t.row("Version:", fmt.Sprint(v.GetVersion()))
		status := statusName(v.GetStatus())
		if v.GetStatusMessage() != "" {
			status += " (" + v.GetStatusMessage() + ")"
		}
		t.row("Status:", status)
		t.row("Format:", formatName(v.GetFormat()))
		t.row("Description:", orDash(v.GetDescription()))
		t.row("File:", orDash(v.GetFilename()))
		t.row("Size:", fmt.Sprintf("%s (%d bytes)", humanSize(v.GetSizeBytes()), v.GetSizeBytes()))
		t.row("SHA256:", orDash(v.GetSha256()))
		t.row("Aliases:", orDash(strings.Join(sorted(v.GetAliases()), ",")))
		t.row("Metrics:", joinMap(v.GetMetrics()))
		t.row("Hyperparameters:", joinMap(v.GetHyperparameters()))
		t.row("Labels:", joinMap(v.GetLabels()))
		if l := v.GetLineage(); l != nil {
			t.row("Lineage:", lineageString(l))
		}
		if s := v.GetSignature(); s != nil {
			t.row("Inputs:", fmt.Sprint(len(s.GetInputs())))
			t.row("Outputs:", fmt.Sprint(len(s.GetOutputs())))
		}
		t.row("Created:", formatTime(v.GetCreateTime()))
		t.row("Updated:", formatTime(v.GetUpdateTime()))
	})
}

func lineageString(l *registryv1.Lineage) string {
	var parts []string
	add := func(k, v string) {
		if v != "" && v != "0" {
			parts = append(parts, k+"="+v)
		}
	}
	add("job", l.GetJobId())
	add("experiment", l.GetExperimentId())
	if l.GetDataset() != "" {
		add("dataset", fmt.Sprintf("%s@%d", l.GetDataset(), l.GetDatasetVersion()))
	}
	add("parent", fmt.Sprint(l.GetParentVersion()))
	return orDash(strings.Join(parts, ","))
}

func statusName(s registryv1.VersionStatus) string {
	switch s {
	case registryv1.VersionStatus_VERSION_STATUS_PENDING:
		return "PENDING"
	case registryv1.VersionStatus_VERSION_STATUS_READY:
		return "READY"
	case registryv1.VersionStatus_VERSION_STATUS_FAILED:
		return "FAILED"
	}
	return "-"
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
