package evaluator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/apierr"
	"github.com/bmaas/bmaas/pkg/chunkstream"
	"github.com/bmaas/bmaas/pkg/ml/artifact"
	"github.com/bmaas/bmaas/pkg/ml/dataset"
)

// errServed stops the download of a version that evaluates through its
// serving runtime: the evaluator needs its header only.
var errServed = errors.New("evaluated through its serving runtime")

// loadModel downloads a READY version's artifact and decodes it when it
// evaluates in process (NATIVE); for any other format it returns the
// version alone (no model): it is evaluated through its serving runtime.
func (e *Evaluator) loadModel(ctx context.Context, model, ref string) (*registryv1.ModelVersion, *artifact.Model, error) {
	reg, err := e.registry()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := reg.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: model, Version: ref})
	if err != nil {
		return nil, nil, err
	}
	var v *registryv1.ModelVersion
	var buf bytes.Buffer
	err = chunkstream.RecvAll(func() ([]byte, error) {
		msg, err := stream.Recv()
		if mv := msg.GetVersion(); mv != nil {
			v = mv
			if v.Format != registryv1.ModelFormat_MODEL_FORMAT_NATIVE {
				return nil, errServed
			}
		}
		return msg.GetChunk(), err
	}, &chunkstream.Limited{W: &buf, Max: e.cfg.MaxModelBytes})
	if errors.Is(err, errServed) {
		return v, nil, nil
	}
	if errors.Is(err, chunkstream.ErrTooLarge) {
		return nil, nil, apierr.Exhausted("artifact of %s@%s exceeds %d bytes", model, ref, e.cfg.MaxModelBytes)
	}
	if err != nil {
		return nil, nil, err
	}
	if v == nil {
		return nil, nil, fmt.Errorf("download %s@%s: no version header", model, ref)
	}
	m, err := artifact.Unmarshal(buf.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("decode %s@%d: %w", model, v.Version, err)
	}
	return v, m, nil
}

// loadDataset downloads a dataset version ("" or 0 for the latest) and
// parses it.
func (e *Evaluator) loadDataset(ctx context.Context, name, ref string) (*registryv1.DatasetVersion, *dataset.Frame, error) {
	if ref == "" || ref == "0" {
		ref = "latest"
	}
	reg, err := e.registry()
	if err != nil {
		return nil, nil, err
	}
	stream, err := reg.DownloadDataset(ctx, &registryv1.DownloadDatasetRequest{Dataset: name, Version: ref})
	if err != nil {
		return nil, nil, err
	}
	var dv *registryv1.DatasetVersion
	var buf bytes.Buffer
	err = chunkstream.RecvAll(func() ([]byte, error) {
		msg, err := stream.Recv()
		if v := msg.GetVersion(); v != nil {
			dv = v
		}
		return msg.GetChunk(), err
	}, &chunkstream.Limited{W: &buf, Max: e.cfg.MaxDatasetBytes})
	if errors.Is(err, chunkstream.ErrTooLarge) {
		return nil, nil, apierr.Exhausted("dataset %s exceeds %d bytes", name, e.cfg.MaxDatasetBytes)
	}
	if err != nil {
		return nil, nil, err
	}
	if dv == nil {
		return nil, nil, fmt.Errorf("download dataset %s: no version header", name)
	}
	f, err := dataset.Read(&buf, dataset.ReadOptions{})
	if err != nil {
		return nil, nil, apierr.Invalid("dataset", "%s version %d: %v", name, dv.Version, err)
	}
	return dv, f, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
