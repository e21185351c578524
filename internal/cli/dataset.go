package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
)

func datasetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dataset",
		Aliases: []string{"datasets"},
		Short:   "Manage datasets (CSV files with an inferred schema)",
	}
	cmd.AddCommand(datasetUploadCommand(g), datasetListCommand(g), datasetGetCommand(g),
		datasetDownloadCommand(g), datasetDeleteCommand(g), datasetFromPayloadsCommand(g))
	return cmd
}

func datasetUploadCommand(g *globals) *cobra.Command {
	var description string
	var labels []string
	cmd := &cobra.Command{
		Use:   "upload NAME FILE",
		Short: "Upload a CSV file as a new version of a dataset (created on first upload)",
		Args:  args("NAME FILE", 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			lbl, err := parseKV("label", labels)
			if err != nil {
				return err
			}
			lf, err := openUpload(a[1], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer lf.Close()
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				stream, err := c.UploadDataset(ctx)
				if err != nil {
					return err
				}
				err = stream.Send(&registryv1.UploadDatasetRequest{Payload: &registryv1.UploadDatasetRequest_Header{
					Header: &registryv1.UploadDatasetHeader{Name: a[0], Description: description, Labels: lbl,
						Filename: lf.name, Sha256: lf.sha256}}})
				if err == nil {
					err = lf.send(cmd.ErrOrStderr(), func(b []byte) error {
						return stream.Send(&registryv1.UploadDatasetRequest{
							Payload: &registryv1.UploadDatasetRequest_Chunk{Chunk: b}})
					})
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				resp, err := stream.CloseAndRecv()
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp, func(t *table) {
					datasetVersionRows(t, resp.GetVersion())
				})
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the dataset holds")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	return cmd
}

func datasetListCommand(g *globals) *cobra.Command {
	var labels []string
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List datasets (all pages)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := labelSelector(labels)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &registryv1.ListDatasetsRequest{PageSize: pageSize, LabelSelector: sel}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*registryv1.Dataset, string, error) {
					req.PageToken = token
					resp, err := c.ListDatasets(ctx, req)
					return resp.GetDatasets(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &registryv1.ListDatasetsResponse{Datasets: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					t.row("NAME", "LATEST", "ROWS", "COLUMNS", "SIZE", "DESCRIPTION", "UPDATED")
					for _, d := range all.GetDatasets() {
						l := d.GetLatest()
						t.row(d.GetName(), latestString(d.GetLatestVersion()), fmt.Sprint(l.GetStats().GetRows()),
							fmt.Sprint(len(l.GetStats().GetColumns())), humanSize(l.GetSizeBytes()),
							orDash(d.GetDescription()), formatTime(d.GetUpdateTime()))
					}
				})
			})
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only datasets with label key=value (repeatable)")
	cmd.Flags().Int32Var(&pageSize, "page-size", 0, "datasets fetched per request (0: server default)")
	return cmd
}

func datasetGetCommand(g *globals) *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "get NAME[@VERSION]",
		Short: "Show a dataset version and its schema (default: the latest)",
		Args:  args("NAME[@VERSION]", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, ref, err := datasetRef(a[0], version)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.GetDatasetVersion(ctx, &registryv1.GetDatasetVersionRequest{Dataset: name, Version: ref})
				if err != nil {
					return err
				}
				return g.printer(cmd.OutOrStdout()).print(resp.GetVersion(), func(t *table) {
					datasetVersionRows(t, resp.GetVersion())
				})
			})
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "the version to show (a number or latest)")
	return cmd
}

func datasetDownloadCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download NAME[@VERSION] -o FILE",
		Short: "Download a dataset version's CSV (streamed, sha256-verified)",
		Args:  args("NAME[@VERSION]", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, ref, err := datasetRef(a[0], "")
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				stream, err := c.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: name, Version: ref})
				if err != nil {
					return err
				}
				first, err := stream.Recv()
				if err != nil {
					return eofIsError(err)
				}
				v := first.GetVersion()
				if v == nil {
					return errMissingHeader
				}
				path := out
				if path == "" {
					path = fmt.Sprintf("%s-v%d.csv", v.GetDataset(), v.GetVersion())
				}
				return receive(cmd, path, v.GetSha256(), v.GetSizeBytes(), func() ([]byte, error) {
					msg, err := stream.Recv()
					return msg.GetChunk(), err
				}, fmt.Sprintf("%s@%d", v.GetDataset(), v.GetVersion()))
			})
		},
	}
	outputFileFlag(cmd, &out, "NAME-vVERSION.csv")
	return cmd
}

func datasetDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a dataset and all its versions",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.DeleteDataset(ctx, &registryv1.DeleteDatasetRequest{Name: a[0]}); err != nil {
					return err
				}
				return done(g, cmd, "dataset %q deleted", a[0])
			})
		},
	}
}

// datasetRef parses NAME[@VERSION] (or NAME with --version); dataset
// versions are numbers or `latest`, there are no dataset aliases.
func datasetRef(arg, flag string) (name, ref string, err error) {
	name, ref, err = refArg(arg)
	if err != nil {
		return "", "", err
	}
	if flag != "" {
		if ref != Latest || arg != name {
			return "", "", usageErrorf("give the version once: %s@VERSION or --version", name)
		}
		ref = flag
	}
	if ref != Latest && !isVersionNumber(ref) {
		return "", "", usageErrorf("dataset version %q must be a number or latest", ref)
	}
	return name, ref, nil
}

// datasetVersionRows prints a dataset version's summary and schema.
func datasetVersionRows(t *table, v *registryv1.DatasetVersion) {
	st := v.GetStats()
	t.row(fmt.Sprintf("Dataset: %s@%d", v.GetDataset(), v.GetVersion()))
	t.row(fmt.Sprintf("File: %s, %s, %d rows, sha256 %s, created %s", orDash(v.GetFilename()),
		humanSize(v.GetSizeBytes()), st.GetRows(), shortDigest(v.GetSha256()), formatTime(v.GetCreateTime())))
	t.row("")
	schemaRows(t, st.GetColumns())
}

// schemaRows prints the inferred schema: one row per column.
func schemaRows(t *table, cols []*commonv1.ColumnStats) {
	t.row("COLUMN", "KIND", "COUNT", "MISSING", "MEAN", "STD", "MIN", "MAX")
	for _, c := range cols {
		if c.GetKind() == commonv1.ValueKind_VALUE_KIND_NUMERIC {
			t.row(c.GetName(), "numeric", fmt.Sprint(c.GetCount()), fmt.Sprint(c.GetMissing()),
				formatFloat(c.GetMean()), formatFloat(c.GetStd()), formatFloat(c.GetMin()), formatFloat(c.GetMax()))
			continue
		}
		kind := "categorical"
		if c.GetDistinct() > 0 {
			kind = fmt.Sprintf("categorical(%d)", c.GetDistinct())
		}
		t.row(c.GetName(), kind, fmt.Sprint(c.GetCount()), fmt.Sprint(c.GetMissing()), "-", "-", "-", "-")
	}
}
