// Package artifact is the native engine's model file: a versioned
// protobuf (bmaas.ml.v1.Model) holding the preprocessing pipeline, the
// fitted estimator, the input/output signature, the training statistics,
// the metrics and the hyperparameters. Load validates every shape, so a
// corrupt or hostile file is an error, never a panic; a Predictor applies
// exactly the training pipeline and allocates nothing per call in steady
// state.
package artifact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	commonv1 "github.com/bmaas/bmaas/api/bmaas/common/v1"
	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
	"google.golang.org/protobuf/proto"
)

// FormatVersion is the version written by this package.
const FormatVersion = 1

// Magic starts every model file.
var Magic = []byte("BMAASML\x00")

var (
	// ErrInvalid: the bytes are not a valid model artifact.
	ErrInvalid = errors.New("invalid model artifact")
	// ErrVersion: the artifact's format version is not supported.
	ErrVersion = errors.New("unsupported model format version")
	// ErrSignature: prediction input does not match the signature.
	ErrSignature = preprocess.ErrSchema
)

// Estimator is a fitted model on the pipeline's features.
type Estimator interface {
	NumFeatures() int
	NumOutputs() int
	// Predict writes rows × NumOutputs values for x (rows × NumFeatures).
	Predict(x []float64, rows int, out []float64)
}

// Model is a loaded artifact.
type Model struct {
	// Proto is the whole artifact; its pipeline and estimator are decoded
	// into the fields below.
	Proto     *mlv1.Model
	Pipeline  *preprocess.Pipeline
	Estimator Estimator
}

// New assembles a model from its parts and fills in the signature. The
// proto's other fields (algorithm, task, labels, metrics, stats...) are
// kept.
func New(meta *mlv1.Model, p *preprocess.Pipeline, e Estimator) (*Model, error) {
	meta.FormatVersion = FormatVersion
	meta.Pipeline = PipelineToProto(p)
	if err := EstimatorToProto(e, meta); err != nil {
		return nil, err
	}
	meta.Signature = signature(meta, p, e)
	m := &Model{Proto: meta, Pipeline: p, Estimator: e}
	if _, err := fromProto(meta); err != nil {
		return nil, err
	}
	return m, nil
}

func signature(meta *mlv1.Model, p *preprocess.Pipeline, e Estimator) *commonv1.Signature {
	in := &commonv1.TensorSpec{Name: "features", Datatype: commonv1.DataType_DATA_TYPE_FP64, Shape: []int64{-1, int64(len(p.Inputs))}}
	for _, i := range p.Inputs {
		in.Columns = append(in.Columns, i.Name)
	}
	sig := &commonv1.Signature{Inputs: []*commonv1.TensorSpec{in}}
	if meta.Task == mlv1.Task_TASK_CLASSIFICATION {
		sig.Outputs = append(sig.Outputs,
			&commonv1.TensorSpec{Name: "predictions", Datatype: commonv1.DataType_DATA_TYPE_STRING, Shape: []int64{-1}, Labels: meta.Labels},
			&commonv1.TensorSpec{Name: "probabilities", Datatype: commonv1.DataType_DATA_TYPE_FP64, Shape: []int64{-1, int64(e.NumOutputs())}, Labels: meta.Labels})
	} else {
		sig.Outputs = append(sig.Outputs, &commonv1.TensorSpec{Name: "predictions", Datatype: commonv1.DataType_DATA_TYPE_FP64,
			Shape: []int64{-1, int64(e.NumOutputs())}, Columns: []string{meta.Target}})
	}
	return sig
}

// Marshal encodes the model with the magic header.
func (m *Model) Marshal() ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(nil), Magic...), b...), nil
}

// Save writes the model to a file.
func (m *Model) Save(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Unmarshal decodes and validates an artifact.
func Unmarshal(b []byte) (*Model, error) {
	if !bytes.HasPrefix(b, Magic) {
		return nil, fmt.Errorf("%w: missing magic header", ErrInvalid)
	}
	var pm mlv1.Model
	if err := proto.Unmarshal(b[len(Magic):], &pm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return fromProto(&pm)
}

// Read decodes an artifact from r (at most limit bytes; 0: 1 GiB).
func Read(r io.Reader, limit int64) (*Model, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, limit)
	}
	return Unmarshal(b)
}

// Load reads an artifact file.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

func fromProto(pm *mlv1.Model) (*Model, error) {
	if pm.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrVersion, pm.FormatVersion, FormatVersion)
	}
	p, err := PipelineFromProto(pm.Pipeline)
	if err != nil {
		return nil, err
	}
	e, err := EstimatorFromProto(pm)
	if err != nil {
		return nil, err
	}
	if e.NumFeatures() != p.NumFeatures() {
		return nil, fmt.Errorf("%w: estimator takes %d features, pipeline gives %d", ErrInvalid, e.NumFeatures(), p.NumFeatures())
	}
	switch pm.Task {
	case mlv1.Task_TASK_CLASSIFICATION:
		if len(pm.Labels) != e.NumOutputs() || len(pm.Labels) < 2 {
			return nil, fmt.Errorf("%w: %d labels for %d outputs", ErrInvalid, len(pm.Labels), e.NumOutputs())
		}
	case mlv1.Task_TASK_REGRESSION:
	default:
		return nil, fmt.Errorf("%w: task %v", ErrInvalid, pm.Task)
	}
	return &Model{Proto: pm, Pipeline: p, Estimator: e}, nil
}

// IsClassifier reports whether the model predicts classes.
func (m *Model) IsClassifier() bool { return m.Proto.Task == mlv1.Task_TASK_CLASSIFICATION }

// Labels are the class labels in output order (classifiers).
func (m *Model) Labels() []string { return m.Proto.Labels }

// Inputs are the input column names in order.
func (m *Model) Inputs() []string {
	out := make([]string, len(m.Pipeline.Inputs))
	for i, in := range m.Pipeline.Inputs {
		out[i] = in.Name
	}
	return out
}

// NumOutputs is the number of values predicted per row.
func (m *Model) NumOutputs() int { return m.Estimator.NumOutputs() }
