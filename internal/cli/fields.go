package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// commandFields says, per command (its path below bmaas), what the user
// typed for each API field a server's error may name, so that the error
// points at the command line: `bmaas dataset upload Bad_Name f.csv` fails
// with `NAME: "Bad_Name" must match ...`, not `header.name: ...`, and a
// file the server cannot read is named by its path, not as `chunk`.
var commandFields = map[string]fieldNames{
	"dataset upload": {"header": "$1", "header.name": "NAME", "header.labels": "--label",
		"header.sha256": "$1", "chunk": "$1", "sha256": "$1"},
	"dataset get":      {"name": "NAME", "dataset": "NAME", "version": "VERSION"},
	"dataset download": {"name": "NAME", "dataset": "NAME", "version": "VERSION"},
	"dataset delete":   {"name": "NAME"},
	"dataset list":     {"label_selector": "--label"},

	"model create":     modelFields,
	"model get":        modelFields,
	"model update":     modelFields,
	"model delete":     modelFields,
	"model list":       {"label_selector": "--label"},
	"model decisions":  {"model": "NAME"},
	"model policy get": {"model": "NAME"},
	"model policy set": {"policy.model": "NAME", "policy.promotion.target_alias": "--alias",
		"policy.promotion.primary_metric": "--metric", "policy.promotion.direction": "--direction",
		"policy.promotion.min_improvement": "--min-gain", "policy.promotion.min_relative_improvement": "--min-relative-gain",
		"policy.promotion.guards": "--guard", "etag": "NAME"},

	"model version upload": {"header": "$1", "header.model": "NAME", "header.sha256": "$1", "header.size_bytes": "$1",
		"chunk": "$1", "sha256": "$1", "spec.format": "--format", "spec.metrics": "--metric", "spec.labels": "--label",
		"spec.description": "--description"},
	"model version import": {"model": "NAME", "source_path": "--server-path", "sha256": "--server-path",
		"chunk": "--server-path", "spec.format": "--format", "spec.metrics": "--metric", "spec.labels": "--label",
		"spec.description": "--description"},
	"model version get":      versionFields,
	"model version delete":   versionFields,
	"model version download": versionFields,
	"model version list":     {"model": "NAME", "page_size": "--page-size"},

	"model alias set":   aliasFields,
	"model alias unset": aliasFields,
	"model alias get":   aliasFields,
	"model alias list":  {"model": "NAME"},

	"train": {"name": "--dataset", "dataset": "--dataset", "version": "--dataset", "model.name": "--model",
		"spec.name": "--name", "spec.model": "--model", "spec.workers": "--workers", "spec.priority": "--priority",
		"spec.max_restarts": "--max-restarts", "spec.timeout_seconds": "--job-timeout",
		"spec.checkpoint_interval": "--checkpoint-interval", "spec.pool": "--pool",
		"spec.termination_grace_seconds": "--termination-grace", "spec.labels": "--label",
		"spec.builtin.algorithm": "--algorithm", "spec.builtin.hyperparameters": "--param",
		"spec.builtin.dataset": "--dataset", "spec.builtin.dataset_version": "--dataset",
		"spec.builtin.target_column": "--target", "spec.builtin.test_fraction": "--test-fraction",
		"spec.builtin.validation_fraction": "--validation-fraction", "spec.process.command": "--command",
		"spec.process.dataset_version": "--dataset", "spec.resources.cpu_millis": "--cpu",
		"spec.resources.memory_bytes": "--memory", "spec.resources.gpus": "--gpus",
		"spec.resources.gpu_model": "--gpu-model", "spec.node_selector": "--node-selector", "spec.project": "--project"},
	"job list": {"project": "--project", "label_selector": "--label", "page_size": "--page-size"},
}

var (
	modelFields = fieldNames{"name": "NAME", "model": "NAME", "model.name": "NAME", "model.labels": "--label",
		"model.description": "--description", "model.task_type": "--task-type"}
	versionFields = fieldNames{"model": "NAME", "version": "REF"}
	aliasFields   = fieldNames{"model": "NAME", "alias": "ALIAS", "version": "VERSION", "expected_version": "VERSION"}
)

// renameFields wraps the commands of commandFields so that their errors
// name what the user typed.
func renameFields(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
		m, ok := commandFields[path]
		if !ok || c.RunE == nil {
			return
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, a []string) error {
			return m.rename(run(cmd, a), a)
		}
	}
	walk(root)
}
