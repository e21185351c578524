package serving

import (
	"fmt"
	"sync"

	"github.com/bmaas/bmaas/pkg/ml/artifact"
)

// native predicts with the bmaas engine; predictors (which own scratch
// buffers) are pooled, so a warm predict allocates nothing.
type native struct {
	m    *artifact.Model
	pool sync.Pool
}

func loadNative(path string) (*Model, error) {
	am, err := artifact.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load native model %s: %w", path, err)
	}
	n := &native{m: am}
	n.pool.New = func() any { return am.NewPredictor() }
	feats := int64(len(am.Inputs()))
	m := &Model{Platform: "bmaas_native", be: n,
		Inputs: []TensorSpec{{Name: "input", Datatype: FP64, Shape: []int64{-1, feats}}}}
	if am.IsClassifier() {
		m.labels = am.Labels()
		m.Outputs = []TensorSpec{
			{Name: "predictions", Datatype: BYTES, Shape: []int64{-1}},
			{Name: "probabilities", Datatype: FP64, Shape: []int64{-1, int64(am.NumOutputs())}},
		}
	} else {
		m.Outputs = []TensorSpec{{Name: "predictions", Datatype: FP64, Shape: []int64{-1}}}
	}
	return m, nil
}

// InputColumns are the native model's input columns in order (nil for
// other formats).
func (m *Model) InputColumns() []string {
	if n, ok := m.be.(*native); ok {
		return n.m.Inputs()
	}
	return nil
}

func (n *native) Features() int { return len(n.m.Pipeline.Inputs) }
func (n *native) Outputs() int  { return n.m.NumOutputs() }
func (n *native) close()        {}

func (n *native) Predict(x []float64, rows int, out []float64) error {
	p := n.pool.Get().(*artifact.Predictor)
	err := p.PredictMatrix(x, rows, out)
	n.pool.Put(p)
	return err
}
