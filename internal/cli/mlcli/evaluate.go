package mlcli

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/metrics"
	"github.com/spf13/cobra"
)

func evaluateCommand() *cobra.Command {
	var model, data string
	cmd := &cobra.Command{
		Use:     "evaluate --model MODEL.bmaas --data FILE.csv",
		Short:   "Score a model on labelled rows",
		Example: "  bmaas ml evaluate --model iris.bmaas --data test.csv",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := artifact.Load(model)
			if err != nil {
				return err
			}
			f, err := readForModel(data, m)
			if err != nil {
				return err
			}
			labels, values, err := targetOf(f, m)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			out := make([]float64, f.NumRows()*m.NumOutputs())
			if err := m.NewPredictor().PredictFrame(f, out); err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			var ms map[string]float64
			if m.IsClassifier() {
				ms = metrics.Classification(labels, out, m.NumOutputs())
			} else {
				ms = metrics.Regression(values, out)
			}
			if done, err := printData(cmd, cmd.OutOrStdout(), evaluateResult{Rows: f.NumRows(), Metrics: ms}); done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d rows\n", f.NumRows())
			printMetrics(cmd.OutOrStdout(), "metrics", ms)
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model artifact")
	cmd.Flags().StringVar(&data, "data", "", "CSV with the model's input columns and its target")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func predictCommand() *cobra.Command {
	var model, data, outPath string
	cmd := &cobra.Command{
		Use:   "predict --model MODEL.bmaas --data ROWS.csv [--out PREDICTIONS.csv]",
		Short: "Predict rows of a CSV file; writes CSV (prediction, then class probabilities), or -o json|yaml",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := artifact.Load(model)
			if err != nil {
				return err
			}
			f, err := readForModel(data, m)
			if err != nil {
				return err
			}
			k := m.NumOutputs()
			out := make([]float64, f.NumRows()*k)
			if err := m.NewPredictor().PredictFrame(f, out); err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			dst := cmd.OutOrStdout()
			if outPath != "" {
				fh, err := os.Create(outPath)
				if err != nil {
					return err
				}
				defer fh.Close()
				dst = fh
			}
			if outputFormat(cmd) != "table" {
				_, err := printData(cmd, dst, predictResult(m, out, f.NumRows()))
				return err
			}
			w := csv.NewWriter(dst)
			header := []string{"prediction"}
			if m.IsClassifier() {
				for _, l := range m.Labels() {
					header = append(header, "p_"+l)
				}
			}
			_ = w.Write(header)
			classes := make([]int, f.NumRows())
			if m.IsClassifier() {
				artifact.Classes(out, k, classes)
			}
			rec := make([]string, len(header))
			for r := range f.NumRows() {
				row := out[r*k : (r+1)*k]
				if m.IsClassifier() {
					rec[0] = m.Labels()[classes[r]]
					for j, p := range row {
						rec[j+1] = strconv.FormatFloat(p, 'g', 6, 64)
					}
				} else {
					rec[0] = strconv.FormatFloat(row[0], 'g', -1, 64)
				}
				_ = w.Write(rec)
			}
			w.Flush()
			return w.Error()
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model artifact")
	cmd.Flags().StringVar(&data, "data", "", "CSV with the model's input columns")
	cmd.Flags().StringVar(&outPath, "out", "", "write predictions there instead of stdout")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

// evaluateResult is what ml evaluate prints with -o json|yaml.
type evaluateResult struct {
	Rows    int                `json:"rows" yaml:"rows"`
	Metrics map[string]float64 `json:"metrics" yaml:"metrics"`
}

// predictOutput is what ml predict prints with -o json|yaml: one
// prediction per row and, for a classifier, its class probabilities.
type predictOutput struct {
	Predictions   []any       `json:"predictions" yaml:"predictions"`
	Labels        []string    `json:"labels,omitempty" yaml:"labels,omitempty"`
	Probabilities [][]float64 `json:"probabilities,omitempty" yaml:"probabilities,omitempty"`
}

func predictResult(m *artifact.Model, out []float64, rows int) predictOutput {
	k := m.NumOutputs()
	var p predictOutput
	if !m.IsClassifier() {
		for r := range rows {
			p.Predictions = append(p.Predictions, out[r*k])
		}
		return p
	}
	classes := make([]int, rows)
	artifact.Classes(out, k, classes)
	p.Labels = m.Labels()
	for r := range rows {
		p.Predictions = append(p.Predictions, m.Labels()[classes[r]])
		p.Probabilities = append(p.Probabilities, out[r*k:(r+1)*k])
	}
	return p
}
