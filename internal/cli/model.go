package cli

import (
	"context"
	"fmt"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func modelCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Manage models, their versions and aliases",
	}
	cmd.AddCommand(modelCreateCommand(g), modelListCommand(g), modelGetCommand(g),
		modelUpdateCommand(g), modelDeleteCommand(g), versionCommand(g), aliasCommand(g), modelDecisionsCommand(g),
		modelPolicyCommand(g))
	return cmd
}

var taskTypes = map[string]registryv1.TaskType{
	"binary":     registryv1.TaskType_TASK_TYPE_BINARY_CLASSIFICATION,
	"multiclass": registryv1.TaskType_TASK_TYPE_MULTICLASS_CLASSIFICATION,
	"regression": registryv1.TaskType_TASK_TYPE_REGRESSION,
	"other":      registryv1.TaskType_TASK_TYPE_OTHER,
}

func parseTaskType(s string) (registryv1.TaskType, error) {
	if s == "" {
		return registryv1.TaskType_TASK_TYPE_UNSPECIFIED, nil
	}
	if t, ok := taskTypes[strings.ToLower(s)]; ok {
		return t, nil
	}
	return 0, usageErrorf("--task-type must be binary, multiclass, regression or other, not %q", s)
}

func taskTypeName(t registryv1.TaskType) string {
	for name, v := range taskTypes {
		if v == t {
			return name
		}
	}
	return "-"
}

func modelCreateCommand(g *globals) *cobra.Command {
	var description, taskType string
	var labels []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a model",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			tt, err := parseTaskType(taskType)
			if err != nil {
				return err
			}
			lbl, err := parseKV("label", labels)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{
					Name: a[0], Description: description, TaskType: tt, Labels: lbl}})
				if err != nil {
					return err
				}
				return printModel(g.printer(cmd.OutOrStdout()), resp.GetModel())
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the model is for")
	cmd.Flags().StringVar(&taskType, "task-type", "", "binary, multiclass, regression or other")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	return cmd
}

func modelListCommand(g *globals) *cobra.Command {
	var labels []string
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List models (all pages)",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := labelSelector(labels)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				req := &registryv1.ListModelsRequest{PageSize: pageSize, LabelSelector: sel}
				items, err := allPages(ctx, c, func(ctx context.Context, token string) ([]*registryv1.Model, string, error) {
					req.PageToken = token
					resp, err := c.ListModels(ctx, req)
					return resp.GetModels(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				all := &registryv1.ListModelsResponse{Models: items}
				return g.printer(cmd.OutOrStdout()).print(all, func(t *table) {
					t.row("NAME", "TASK", "VERSIONS", "LATEST", "ALIASES", "LABELS", "UPDATED")
					for _, m := range all.GetModels() {
						t.row(m.GetName(), taskTypeName(m.GetTaskType()), fmt.Sprint(m.GetVersionCount()), latestString(m.GetLatestVersion()),
							joinMap(m.GetAliases()), joinMap(m.GetLabels()), formatTime(m.GetUpdateTime()))
					}
				})
			})
		},
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only models with label key=value (repeatable)")
	cmd.Flags().Int32Var(&pageSize, "page-size", 0, "models fetched per request (0: server default)")
	return cmd
}

func modelGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a model",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.GetModel(ctx, &registryv1.GetModelRequest{Name: a[0]})
				if err != nil {
					return err
				}
				return printModel(g.printer(cmd.OutOrStdout()), resp.GetModel())
			})
		},
	}
}

func modelUpdateCommand(g *globals) *cobra.Command {
	var description, taskType string
	var labels []string
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a model's description, task type or labels",
		Long: "Change a model's description, task type or labels. --label k=v sets a label\n" +
			"and --label k- removes it; other labels are kept. The update is conditional on\n" +
			"the model being unchanged since it was read (a concurrent change fails with Aborted).",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			tt, err := parseTaskType(taskType)
			if err != nil {
				return err
			}
			var paths []string
			for flag, path := range map[string]string{"description": "description", "task-type": "task_type", "label": "labels"} {
				if cmd.Flags().Changed(flag) {
					paths = append(paths, path)
				}
			}
			if len(paths) == 0 {
				return usageErrorf("nothing to update: give --description, --task-type or --label")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				cur, err := c.GetModel(ctx, &registryv1.GetModelRequest{Name: a[0]})
				if err != nil {
					return err
				}
				m := cur.GetModel()
				lbl, err := applyLabels(m.GetLabels(), labels)
				if err != nil {
					return err
				}
				resp, err := c.UpdateModel(ctx, &registryv1.UpdateModelRequest{
					Model: &registryv1.Model{Name: a[0], Description: description, TaskType: tt,
						Labels: lbl, Etag: m.GetEtag()},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
				})
				if err != nil {
					return err
				}
				return printModel(g.printer(cmd.OutOrStdout()), resp.GetModel())
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "new description")
	cmd.Flags().StringVar(&taskType, "task-type", "", "binary, multiclass, regression or other")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "set key=value, or remove with key- (repeatable)")
	return cmd
}

func modelDeleteCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a model (with --force, its versions too)",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				if _, err := c.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: a[0], Force: force}); err != nil {
					return err
				}
				return done(g, cmd, "model %q deleted", a[0])
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete the model's versions and artifacts too")
	return cmd
}

// printModel prints one model as a key/value list or as json/yaml.
func printModel(p *printer, m *registryv1.Model) error {
	return p.print(m, func(t *table) {
		t.row("Name:", m.GetName())
		t.row("Description:", orDash(m.GetDescription()))
		t.row("Task type:", taskTypeName(m.GetTaskType()))
		t.row("Labels:", joinMap(m.GetLabels()))
		t.row("Aliases:", joinMap(m.GetAliases()))
		t.row("Versions:", fmt.Sprint(m.GetVersionCount()))
		t.row("Latest version:", latestString(m.GetLatestVersion()))
		t.row("Created:", formatTime(m.GetCreateTime()))
		t.row("Updated:", formatTime(m.GetUpdateTime()))
	})
}

func latestString(v int64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

// done prints a confirmation line in table mode; json and yaml print nothing
// so scripts parse only data.
func done(g *globals, cmd *cobra.Command, format string, a ...any) error {
	if g.output != "table" {
		return nil
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", a...)
	return err
}
