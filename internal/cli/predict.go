package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	gatewayv1 "github.com/bmaas/bmaas/api/bmaas/gateway/v1"
	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/api/inference"
)

func predictCommand(g *globals) *cobra.Command {
	var dep, input, version string
	var header, noHeader bool
	var columns []string
	cmd := &cobra.Command{
		Use:   "predict --deployment NAME --input ROWS.json|ROWS.csv [--no-header] [--columns A,B,...]",
		Short: "Send rows to a deployment (KServe v2 gRPC) and print its predictions",
		Long: "Send rows to a deployment over the KServe v2 gRPC protocol and print the predictions and,\n" +
			"for classifiers, the class probabilities: one answer per row sent, or an error.\n\n" +
			"--input is JSON, {\"instances\": [[5.1, 3.5, 1.4, 0.2], ...]} or a plain array of rows, or\n" +
			"CSV. '-' reads standard input. A CSV has a header row by default (--header): its columns\n" +
			"are picked by name in the model's signature order, and other columns (the target, say)\n" +
			"are ignored. For a model whose signature names no columns (an uploaded ONNX file, say)\n" +
			"--columns names the CSV columns to send, in order; without it the CSV must hold exactly\n" +
			"the model's features. With --no-header every row is values, taken in order.",
		Example: "  bmaas predict --deployment bc --input examples/datasets/breast_cancer.csv\n" +
			"  bmaas predict --deployment bc --input rows.csv --no-header\n" +
			"  bmaas predict --deployment bc --input rows.json",
		Args: args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dep == "" || input == "" {
				return usageErrorf("--deployment and --input are required")
			}
			if header && noHeader {
				return usageErrorf("give --header or --no-header, not both")
			}
			if noHeader && len(columns) > 0 {
				return usageErrorf("--columns picks columns by the names of a header row; it cannot go with --no-header")
			}
			in, err := readRows(cmd, input, !noHeader)
			if err != nil {
				return err
			}
			if in.rows != nil && (noHeader || len(columns) > 0) {
				return usageErrorf("--no-header and --columns apply to CSV input, not JSON")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				res, err := predictRows(ctx, c, dep, version, in, columns)
				if err != nil {
					return err
				}
				return res.print(g, cmd.OutOrStdout())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dep, "deployment", "", "the deployment (its v2 model name)")
	f.StringVar(&input, "input", "", "rows to predict: a .json or .csv file, '-' for standard input")
	f.StringVar(&version, "version", "", "ask for this model version (default: whichever the deployment routes to)")
	f.BoolVar(&header, "header", false, "the CSV's first row names its columns (the default)")
	f.BoolVar(&noHeader, "no-header", false, "the CSV has no header row: every row is values, in the model's order")
	f.StringSliceVar(&columns, "columns", nil, "the CSV columns to send, in order (default: the names in the model's signature)")
	return cmd
}

func readRows(cmd *cobra.Command, path string, header bool) (*rowsInput, error) {
	if path == "-" {
		return parseRows("stdin", cmd.InOrStdin(), header)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRows(path, f, header)
}

// predictRows asks ModelMetadata for the input tensor, maps the rows to
// it (CSV columns by the registered signature) and calls ModelInfer.
func predictRows(ctx context.Context, c *client, dep, version string, in *rowsInput, columns []string) (*prediction, error) {
	ic := inference.NewGRPCInferenceServiceClient(c.conn)
	md, err := ic.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: dep, Version: version})
	if err != nil {
		return nil, noDeployment(ctx, c, dep, err)
	}
	if len(md.GetInputs()) != 1 || len(md.Inputs[0].GetShape()) != 2 || md.Inputs[0].Shape[1] <= 0 {
		return nil, fmt.Errorf("deployment %q takes %d inputs; predict sends one [rows, features] tensor", dep, len(md.GetInputs()))
	}
	spec := md.Inputs[0]
	var labels []string
	if sig := signatureOf(ctx, c, dep, md); sig != nil {
		if ins := sig.GetInputs(); len(ins) == 1 && len(columns) == 0 {
			columns = ins[0].GetColumns()
		}
		for _, o := range sig.GetOutputs() {
			if len(o.GetLabels()) > 0 {
				labels = o.GetLabels()
			}
		}
	}
	x, rows, err := in.matrix(columns, int(spec.Shape[1]))
	if err != nil {
		return nil, usageErrorf("--input: %v", err)
	}
	t := &inference.ModelInferRequest_InferInputTensor{Name: spec.Name, Datatype: "FP64",
		Shape: []int64{int64(rows), spec.Shape[1]}, Contents: &inference.InferTensorContents{Fp64Contents: x}}
	resp, err := ic.ModelInfer(ctx, &inference.ModelInferRequest{ModelName: dep, ModelVersion: version,
		Inputs: []*inference.ModelInferRequest_InferInputTensor{t}})
	if err != nil {
		return nil, err
	}
	p := newPrediction(resp, labels)
	if n := p.rows(); n != rows {
		return nil, fmt.Errorf("deployment %q answered %d predictions for the %d rows sent", dep, n, rows)
	}
	return p, nil
}

// noDeployment turns the data plane's NotFound for the deployment itself
// (KServe v2 calls it a model, which reads as if the registered model were
// missing) into one that says no deployment has that name and lists the
// deployments there are. Other errors pass unchanged.
func noDeployment(ctx context.Context, c *client, dep string, err error) error {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.NotFound ||
		(s.Message() != fmt.Sprintf("model %q not found", dep) && s.Message() != fmt.Sprintf("deployment %q not found", dep)) {
		return err
	}
	there := "there are no deployments"
	if resp, lerr := c.deployments().ListDeployments(ctx, &gatewayv1.ListDeploymentsRequest{}); lerr == nil && len(resp.GetDeployments()) > 0 {
		names := make([]string, 0, len(resp.GetDeployments()))
		for _, d := range resp.GetDeployments() {
			names = append(names, d.GetName())
		}
		more := ""
		if resp.GetNextPageToken() != "" {
			more = ", ..."
		}
		there = "deployments: " + strings.Join(names, ", ") + more
	}
	return &statusError{s: status.Newf(codes.NotFound, "no deployment named %q (%s); serve a model with: "+
		"bmaas deploy create --model MODEL@REF --name %s", dep, there, dep)}
}

// signatureOf returns the registered signature of the version a
// deployment serves, or nil when it cannot be had (then CSV columns are
// taken in file order).
func signatureOf(ctx context.Context, c *client, dep string, md *inference.ModelMetadataResponse) *commonv1.Signature {
	d, err := c.deployments().GetDeployment(ctx, &gatewayv1.GetDeploymentRequest{Name: dep})
	if err != nil {
		return nil
	}
	model, _, err := ParseRef(d.GetDeployment().GetModel())
	if err != nil {
		return nil
	}
	version := latestString(d.GetDeployment().GetStatus().GetVersion())
	if len(md.GetVersions()) > 0 {
		version = md.Versions[0]
	}
	v, err := c.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: model, Version: version})
	if err != nil {
		return nil
	}
	return v.GetVersion().GetSignature()
}

// prediction is the answer of a deployment, as printed.
type prediction struct {
	ModelName    string `json:"model_name" yaml:"model_name"`
	ModelVersion string `json:"model_version" yaml:"model_version"`
	// Predictions are labels (classifiers) or numbers.
	Predictions   []any       `json:"predictions" yaml:"predictions"`
	Labels        []string    `json:"labels,omitempty" yaml:"labels,omitempty"`
	Probabilities [][]float64 `json:"probabilities,omitempty" yaml:"probabilities,omitempty"`
	// Outputs holds other output tensors by name, as rows.
	Outputs map[string][][]float64 `json:"outputs,omitempty" yaml:"outputs,omitempty"`
}

func newPrediction(resp *inference.ModelInferResponse, labels []string) *prediction {
	p := &prediction{ModelName: resp.GetModelName(), ModelVersion: resp.GetModelVersion()}
	for _, o := range resp.GetOutputs() {
		c := o.GetContents()
		switch {
		case o.Name == "predictions" && len(c.GetBytesContents()) > 0:
			for _, b := range c.BytesContents {
				p.Predictions = append(p.Predictions, string(b))
			}
		case o.Name == "predictions":
			for _, v := range c.GetFp64Contents() {
				p.Predictions = append(p.Predictions, v)
			}
		case o.Name == "probabilities":
			p.Probabilities = tensorRows(c, o.Shape)
			if len(labels) > 0 && len(p.Probabilities) > 0 && len(labels) == len(p.Probabilities[0]) {
				p.Labels = labels
			}
		default:
			if p.Outputs == nil {
				p.Outputs = map[string][][]float64{}
			}
			p.Outputs[o.Name] = tensorRows(c, o.Shape)
		}
	}
	return p
}

// tensorRows turns a [rows, k] (or [rows]) tensor into rows of k values.
func tensorRows(c *inference.InferTensorContents, shape []int64) [][]float64 {
	vals := c.GetFp64Contents()
	if len(vals) == 0 {
		for _, v := range c.GetFp32Contents() {
			vals = append(vals, float64(v))
		}
	}
	k := 1
	if len(shape) == 2 && shape[1] > 0 {
		k = int(shape[1])
	}
	out := make([][]float64, 0, len(vals)/k)
	for i := 0; i+k <= len(vals); i += k {
		out = append(out, vals[i:i+k])
	}
	return out
}

// print writes the prediction as a table (one row per input row), JSON
// or YAML.
func (p *prediction) print(g *globals, w io.Writer) error {
	switch g.output {
	case "json":
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	t := newTable(w)
	header := []string{"ROW"}
	if p.Predictions != nil {
		header = append(header, "PREDICTION")
	}
	if len(p.Probabilities) > 0 {
		for j := range p.Probabilities[0] {
			name := strconv.Itoa(j)
			if p.Labels != nil {
				name = p.Labels[j]
			}
			header = append(header, "P("+name+")")
		}
	}
	names := sortedKeys(p.Outputs)
	for _, n := range names {
		header = append(header, n)
	}
	t.row(header...)
	for r := range p.rows() {
		cells := []string{strconv.Itoa(r + 1)}
		if p.Predictions != nil {
			cells = append(cells, cell(p.Predictions, r))
		}
		if r < len(p.Probabilities) {
			for _, v := range p.Probabilities[r] {
				cells = append(cells, strconv.FormatFloat(v, 'g', 6, 64))
			}
		}
		for _, n := range names {
			cells = append(cells, floatsString(p.Outputs[n], r))
		}
		t.row(cells...)
	}
	return t.flush()
}

// rows is the number of input rows the answer covers.
func (p *prediction) rows() int {
	n := max(len(p.Predictions), len(p.Probabilities))
	for _, o := range p.Outputs {
		n = max(n, len(o))
	}
	return n
}

func cell(vs []any, r int) string {
	if r >= len(vs) {
		return "-"
	}
	if f, ok := vs[r].(float64); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprint(vs[r])
}

func floatsString(rows [][]float64, r int) string {
	if r >= len(rows) {
		return "-"
	}
	parts := make([]string, len(rows[r]))
	for i, v := range rows[r] {
		parts[i] = strconv.FormatFloat(v, 'g', 6, 64)
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
