// Package mlcli is the `bmaas ml` command group: train, evaluate and
// predict with the native engine on local files, without a server.
package mlcli

import (
	"fmt"
	"math"
	"strconv"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
	"github.com/spf13/cobra"
)

// Command returns the `ml` command with its subcommands.
func Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ml",
		Short: "Train, evaluate and run native models on local CSV files",
		Long: "The native engine on local files: `ml train` fits a model on a CSV and writes an artifact,\n" +
			"`ml evaluate` scores an artifact on labelled rows, `ml predict` writes predictions as CSV.",
	}
	cmd.AddCommand(trainCommand(), evaluateCommand(), predictCommand())
	return cmd
}

// readForModel reads a CSV with the kinds the model's inputs expect, so a
// bad value is reported with its row and column while reading.
func readForModel(path string, m *artifact.Model) (*dataset.Frame, error) {
	kinds := map[string]dataset.Kind{}
	header, err := headerOf(path)
	if err != nil {
		return nil, err
	}
	for _, in := range m.Pipeline.Inputs {
		if !header[in.Name] {
			return nil, fmt.Errorf("%s: column %q of the model's signature is missing (the model takes %v)", path, in.Name, m.Inputs())
		}
		kinds[in.Name] = dataset.Numeric
		if in.Categorical {
			kinds[in.Name] = dataset.Categorical
		}
	}
	return dataset.ReadFile(path, dataset.ReadOptions{Kinds: kinds})
}

func headerOf(path string) (map[string]bool, error) {
	f, err := dataset.ReadFile(path, dataset.ReadOptions{MaxRows: 1})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range f.Names() {
		out[n] = true
	}
	return out, nil
}

// targetOf maps the target column to class indices (classifiers) or
// values (regressors); an unknown label is an error naming the row.
func targetOf(f *dataset.Frame, m *artifact.Model) ([]int, []float64, error) {
	c, err := f.Col(m.Proto.Target)
	if err != nil {
		return nil, nil, fmt.Errorf("target: %w", err)
	}
	if !m.IsClassifier() {
		if c.Kind != dataset.Numeric {
			return nil, nil, fmt.Errorf("column %q: the target of a regression must be numeric", c.Name)
		}
		for r, v := range c.Num {
			if math.IsNaN(v) {
				return nil, nil, fmt.Errorf("row %d, column %q: missing target", r+1, c.Name)
			}
		}
		return nil, c.Num, nil
	}
	index := map[string]int{}
	for i, l := range m.Labels() {
		index[l] = i
	}
	y := make([]int, c.Len())
	for r := range y {
		if c.IsMissing(r) {
			return nil, nil, fmt.Errorf("row %d, column %q: missing target", r+1, c.Name)
		}
		s := c.String(r)
		i, ok := index[s]
		if !ok && c.Kind == dataset.Numeric {
			i, ok = index[strconv.FormatFloat(c.Num[r], 'g', -1, 64)]
		}
		if !ok {
			return nil, nil, fmt.Errorf("row %d, column %q: label %q unknown to the model (labels %v)", r+1, c.Name, s, m.Labels())
		}
		y[r] = i
	}
	return y, nil, nil
}
