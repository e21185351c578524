// Package serving loads a model version and serves it over the Open
// Inference Protocol (KServe v2): the native .bmaas format through
// pkg/ml/artifact and ONNX through a pure-Go runtime, with dynamic
// batching of concurrent requests.
//
// A native tabular model takes one tensor named "input", shaped [rows,
// features] in its signature's column order, FP32 or FP64, and answers
// "predictions" (class labels as BYTES for a classifier, FP64 values for a
// regressor) and, for a classifier, "probabilities" FP64 [rows, classes].
// An ONNX model takes its graph's one input (FP32, [rows, features]) and
// answers its graph's one output (FP32, [rows, k]); when its version's
// signature names the classes of that output and says whether it holds
// logits or probabilities (Options.Classes, Options.Logits), it answers
// "predictions" and "probabilities" as a native classifier does.
package serving

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bmaas/bmaas/pkg/apierr"
)

// Formats of a model file.
const (
	FormatNative = "native"
	FormatONNX   = "onnx"
)

// Datatypes of the protocol this package reads and writes.
const (
	FP32  = "FP32"
	FP64  = "FP64"
	BYTES = "BYTES"
)

// TensorSpec describes one input or output tensor; -1 is a variable size.
type TensorSpec struct {
	Name     string
	Datatype string
	Shape    []int64
}

// Batching configures dynamic batching; MaxBatchSize <= 1 turns it off.
type Batching struct {
	// MaxBatchSize is the most rows one model call predicts.
	MaxBatchSize int
	// MaxQueueDelay is the longest a request waits for others to join.
	MaxQueueDelay time.Duration
	// Workers run batches in parallel and split a batch's rows between
	// the idle ones (default GOMAXPROCS).
	Workers int
}

// Options describe the model being loaded.
type Options struct {
	// Name is the v2 model name (the deployment's name).
	Name string
	// Version is the registry's version number.
	Version  int64
	Format   string
	Batching Batching
	// Classes name the classes of an ONNX model's one output, in order,
	// when it is a classifier's (one value per class); Logits says its
	// values are logits, made probabilities by a softmax, else they are
	// probabilities already. See ClassesOf. A native model knows its own.
	Classes []string
	Logits  bool
}

// backend predicts rows (rows × Features() values, row-major) into out
// (rows × Outputs() values). It must be safe for concurrent use.
type backend interface {
	Features() int
	Outputs() int
	Predict(x []float64, rows int, out []float64) error
	close()
}

// Model is a loaded, ready model.
type Model struct {
	Name     string
	Version  int64
	Platform string
	Inputs   []TensorSpec
	Outputs  []TensorSpec
	// labels (classifiers) name the classes of probabilities.
	labels []string
	// outFP32 makes the one output FP32 (ONNX); otherwise FP64.
	outFP32 bool
	be      backend
	batcher *batcher
	ready   atomic.Bool
}

// ErrFormat is an unknown or unreadable model file.
var ErrFormat = errors.New("unsupported model format")

// Load reads a model file in opts.Format (native or onnx; by the file's
// extension when empty) and returns it ready to serve.
func Load(path string, opts Options) (*Model, error) {
	format := opts.Format
	if format == "" {
		format = FormatNative
		if strings.HasSuffix(path, ".onnx") {
			format = FormatONNX
		}
	}
	var (
		m   *Model
		err error
	)
	switch strings.ToLower(format) {
	case FormatNative, "model_format_native":
		m, err = loadNative(path)
	case FormatONNX, "model_format_onnx":
		m, err = loadONNX(path, opts)
	default:
		return nil, fmt.Errorf("%w: %q", ErrFormat, format)
	}
	if err != nil {
		return nil, err
	}
	m.Name, m.Version = opts.Name, opts.Version
	m.batcher = newBatcher(m.be, opts.Batching)
	m.ready.Store(true)
	return m, nil
}

// VersionString is the version as the protocol names it.
func (m *Model) VersionString() string { return strconv.FormatInt(m.Version, 10) }

// Ready reports whether the model serves requests.
func (m *Model) Ready() bool { return m.ready.Load() }

// Close stops the batcher; requests after it fail.
func (m *Model) Close() {
	m.ready.Store(false)
	m.batcher.close()
	m.be.close()
}

// Features is the number of input columns.
func (m *Model) Features() int { return m.be.Features() }

// checkVersion accepts "" or the model's own version.
func (m *Model) checkVersion(v string) error {
	if v == "" || v == m.VersionString() {
		return nil
	}
	return apierr.NotFound("model version", m.Name+"/"+v)
}
