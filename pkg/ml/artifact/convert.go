package artifact

import (
	"fmt"

	mlv1 "github.com/bmaas/bmaas/api/bmaas/ml/v1"
	"github.com/bmaas/bmaas/pkg/ml/gbdt"
	"github.com/bmaas/bmaas/pkg/ml/linear"
	"github.com/bmaas/bmaas/pkg/ml/mlp"
	"github.com/bmaas/bmaas/pkg/ml/preprocess"
)

// PipelineToProto converts a fitted pipeline.
func PipelineToProto(p *preprocess.Pipeline) *mlv1.Pipeline {
	out := &mlv1.Pipeline{Features: p.Features}
	for _, in := range p.Inputs {
		out.Inputs = append(out.Inputs, &mlv1.PipelineInput{Name: in.Name, Categorical: in.Categorical, Levels: in.Levels})
	}
	for _, s := range p.Steps {
		var ps *mlv1.PipelineStep
		switch s := s.(type) {
		case *preprocess.Impute:
			ps = &mlv1.PipelineStep{Step: &mlv1.PipelineStep_Impute{Impute: &mlv1.ImputeStep{Fill: s.Fill}}}
		case *preprocess.Scale:
			ps = &mlv1.PipelineStep{Step: &mlv1.PipelineStep_Scale{Scale: &mlv1.ScaleStep{Offset: s.Offset, Mul: s.Mul}}}
		case *preprocess.OneHot:
			sizes := make([]int32, len(s.Sizes))
			for i, n := range s.Sizes {
				sizes[i] = int32(n)
			}
			ps = &mlv1.PipelineStep{Step: &mlv1.PipelineStep_OneHot{OneHot: &mlv1.OneHotStep{Sizes: sizes}}}
		case *preprocess.PCA:
			ps = &mlv1.PipelineStep{Step: &mlv1.PipelineStep_Pca{Pca: &mlv1.PCAStep{Mean: s.Mean, Components: s.Components, K: int32(s.K), ExplainedVarianceRatio: s.ExplainedVarianceRatio}}}
		}
		out.Steps = append(out.Steps, ps)
	}
	return out
}

// maxWidth bounds the width of any intermediate matrix of a loaded
// pipeline, so that a hostile artifact cannot demand huge buffers.
const maxWidth = 1 << 20

// PipelineFromProto converts and validates a pipeline.
func PipelineFromProto(pp *mlv1.Pipeline) (*preprocess.Pipeline, error) {
	if pp == nil || len(pp.Inputs) == 0 {
		return nil, fmt.Errorf("%w: pipeline without inputs", ErrInvalid)
	}
	p := &preprocess.Pipeline{Features: pp.Features}
	seen := map[string]bool{}
	for i, in := range pp.Inputs {
		if in.GetName() == "" || seen[in.GetName()] {
			return nil, fmt.Errorf("%w: input %d: empty or duplicate name", ErrInvalid, i)
		}
		seen[in.GetName()] = true
		p.Inputs = append(p.Inputs, preprocess.Input{Name: in.GetName(), Categorical: in.GetCategorical(), Levels: in.GetLevels()})
	}
	width := len(p.Inputs)
	for i, s := range pp.Steps {
		switch s := s.GetStep().(type) {
		case *mlv1.PipelineStep_Impute:
			if i != 0 || len(s.Impute.Fill) != width {
				return nil, fmt.Errorf("%w: impute step %d: must come first with %d values", ErrInvalid, i, width)
			}
			p.Steps = append(p.Steps, &preprocess.Impute{Fill: s.Impute.Fill})
		case *mlv1.PipelineStep_Scale:
			if len(s.Scale.Offset) != width || len(s.Scale.Mul) != width {
				return nil, fmt.Errorf("%w: scale step %d: want %d values", ErrInvalid, i, width)
			}
			p.Steps = append(p.Steps, &preprocess.Scale{Offset: s.Scale.Offset, Mul: s.Scale.Mul})
		case *mlv1.PipelineStep_OneHot:
			if len(s.OneHot.Sizes) != width || width != len(p.Inputs) {
				return nil, fmt.Errorf("%w: one-hot step %d: want %d sizes, on the inputs", ErrInvalid, i, width)
			}
			oh := &preprocess.OneHot{Sizes: make([]int, width)}
			total := 0
			for j, n := range s.OneHot.Sizes {
				if n < 0 || n > maxWidth || (n > 0) != p.Inputs[j].Categorical {
					return nil, fmt.Errorf("%w: one-hot step %d: size %d for column %q", ErrInvalid, i, n, p.Inputs[j].Name)
				}
				oh.Sizes[j] = int(n)
				total += max(int(n), 1)
			}
			if total > maxWidth {
				return nil, fmt.Errorf("%w: one-hot step %d: %d columns", ErrInvalid, i, total)
			}
			p.Steps = append(p.Steps, oh)
			width = total
		case *mlv1.PipelineStep_Pca:
			k := int(s.Pca.K)
			if k <= 0 || k > maxWidth || len(s.Pca.Mean) != width || len(s.Pca.Components) != k*width {
				return nil, fmt.Errorf("%w: pca step %d: shapes do not match width %d", ErrInvalid, i, width)
			}
			p.Steps = append(p.Steps, &preprocess.PCA{Mean: s.Pca.Mean, Components: s.Pca.Components, K: k, ExplainedVarianceRatio: s.Pca.ExplainedVarianceRatio})
			width = k
		default:
			return nil, fmt.Errorf("%w: pipeline step %d: unknown kind", ErrInvalid, i)
		}
	}
	for j, in := range p.Inputs {
		if in.Categorical && !hasOneHot(p) {
			return nil, fmt.Errorf("%w: categorical input %q without one-hot encoding", ErrInvalid, p.Inputs[j].Name)
		}
	}
	if len(p.Features) != width {
		return nil, fmt.Errorf("%w: pipeline names %d features, produces %d", ErrInvalid, len(p.Features), width)
	}
	p.Prepare()
	return p, nil
}

func hasOneHot(p *preprocess.Pipeline) bool {
	for _, s := range p.Steps {
		if _, ok := s.(*preprocess.OneHot); ok {
			return true
		}
	}
	return false
}

// EstimatorToProto sets the estimator of m.
func EstimatorToProto(e Estimator, m *mlv1.Model) error {
	switch e := e.(type) {
	case *linear.Model:
		m.Estimator = &mlv1.Model_Linear{Linear: &mlv1.LinearModel{Features: int32(e.Features), Coef: e.Coef, Intercept: e.Intercept, Link: mlv1.Link(e.Link + 1)}}
	case *mlp.Net:
		sizes := make([]int32, len(e.Sizes))
		for i, s := range e.Sizes {
			sizes[i] = int32(s)
		}
		m.Estimator = &mlv1.Model_Mlp{Mlp: &mlv1.MLPModel{Sizes: sizes, Activation: mlv1.Activation(e.Activation + 1), Output: mlv1.OutputFunction(e.Output + 1), Params: e.Params}}
	case *gbdt.Model:
		g := &mlv1.GBDTModel{Objective: mlv1.Objective(e.Objective + 1), Features: int32(e.Features), K: int32(e.K), Base: e.Base}
		for _, t := range e.Trees {
			g.Trees = append(g.Trees, TreeToProto(t))
		}
		m.Estimator = &mlv1.Model_Gbdt{Gbdt: g}
	default:
		return fmt.Errorf("artifact: unknown estimator %T", e)
	}
	return nil
}

// TreeToProto converts a tree.
func TreeToProto(t gbdt.Tree) *mlv1.Tree {
	return &mlv1.Tree{Feature: t.Feature, Threshold: t.Threshold, Left: t.Left, Right: t.Right, Value: t.Value}
}

// TreeFromProto converts a tree (unvalidated).
func TreeFromProto(t *mlv1.Tree) gbdt.Tree {
	return gbdt.Tree{Feature: t.GetFeature(), Threshold: t.GetThreshold(), Left: t.GetLeft(), Right: t.GetRight(), Value: t.GetValue()}
}

// EstimatorFromProto converts and validates the estimator of m.
func EstimatorFromProto(m *mlv1.Model) (Estimator, error) {
	switch e := m.GetEstimator().(type) {
	case *mlv1.Model_Linear:
		l := e.Linear
		d, k := int(l.Features), len(l.Intercept)
		if d <= 0 || k == 0 || len(l.Coef) != d*k || l.Link < mlv1.Link_LINK_IDENTITY || l.Link > mlv1.Link_LINK_SOFTMAX ||
			(l.Link == mlv1.Link_LINK_LOGIT && k != 1) || (l.Link == mlv1.Link_LINK_SOFTMAX && k < 2) {
			return nil, fmt.Errorf("%w: linear model shapes", ErrInvalid)
		}
		return &linear.Model{Features: d, Coef: l.Coef, Intercept: l.Intercept, Link: linear.Link(l.Link - 1)}, nil
	case *mlv1.Model_Mlp:
		p := e.Mlp
		if len(p.Sizes) < 2 || p.Activation < mlv1.Activation_ACTIVATION_RELU || p.Activation > mlv1.Activation_ACTIVATION_GELU ||
			p.Output < mlv1.OutputFunction_OUTPUT_FUNCTION_IDENTITY || p.Output > mlv1.OutputFunction_OUTPUT_FUNCTION_SOFTMAX {
			return nil, fmt.Errorf("%w: mlp layers or functions", ErrInvalid)
		}
		sizes := make([]int, len(p.Sizes))
		total := 0
		for i, s := range p.Sizes {
			if s <= 0 || s > maxWidth {
				return nil, fmt.Errorf("%w: mlp layer size %d", ErrInvalid, s)
			}
			sizes[i] = int(s)
			if i > 0 {
				total += sizes[i-1]*sizes[i] + sizes[i]
			}
			if total > len(p.Params) {
				return nil, fmt.Errorf("%w: mlp has %d parameters, layers need more", ErrInvalid, len(p.Params))
			}
		}
		out := mlp.Output(p.Output - 1)
		last := sizes[len(sizes)-1]
		if total != len(p.Params) || (out == mlp.SigmoidOutput && last != 1) || (out == mlp.Softmax && last < 2) {
			return nil, fmt.Errorf("%w: mlp parameters do not match its layers", ErrInvalid)
		}
		return &mlp.Net{Sizes: sizes, Activation: mlp.Activation(p.Activation - 1), Output: out, Params: p.Params}, nil
	case *mlv1.Model_Gbdt:
		g := e.Gbdt
		k, d := int(g.K), int(g.Features)
		obj := gbdt.Objective(g.Objective - 1)
		if g.Objective < mlv1.Objective_OBJECTIVE_REGRESSION || g.Objective > mlv1.Objective_OBJECTIVE_MULTICLASS || d <= 0 || k <= 0 || k > maxWidth ||
			len(g.Base) != k || len(g.Trees)%k != 0 || (obj != gbdt.Multiclass && k != 1) || (obj == gbdt.Multiclass && k < 2) {
			return nil, fmt.Errorf("%w: gbdt shapes", ErrInvalid)
		}
		out := &gbdt.Model{Objective: obj, Features: d, K: k, Base: g.Base}
		for i, t := range g.Trees {
			tr := TreeFromProto(t)
			if err := tr.Validate(d); err != nil {
				return nil, fmt.Errorf("%w: tree %d: %v", ErrInvalid, i, err)
			}
			out.Trees = append(out.Trees, tr)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: no estimator", ErrInvalid)
}
