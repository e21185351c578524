package traineragent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
)

// formatOf maps an artifact's file name to its format.
func formatOf(name string) registryv1.ModelFormat {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".onnx":
		return registryv1.ModelFormat_MODEL_FORMAT_ONNX
	case ".pt", ".pth":
		return registryv1.ModelFormat_MODEL_FORMAT_PYTORCH
	case ".bmaas":
		return registryv1.ModelFormat_MODEL_FORMAT_NATIVE
	}
	return registryv1.ModelFormat_MODEL_FORMAT_OTHER
}

// registerOutputs registers the files in BMAAS_OUTPUT_DIR as the model
// version: one file is the artifact; among several, an .onnx file is the
// artifact and the rest a bundle named in the label bundle_sha256;
// without one, a tar.gz of the directory, a PyTorch archive
// (model.tar.gz, format PYTORCH) when it holds a .pt or .pth file (a
// serving runtime gets it unpacked), else of format OTHER. The last
// metrics line's metrics go into the version, and signature.json, when
// there, its signature.
func (w *worker) registerOutputs(sk *sink, rt *schedulerv1.ProcessRuntime, dv *registryv1.DatasetVersion,
	dir string, metrics map[string]float64) (int64, error) {
	files, err := listFiles(dir)
	if err != nil {
		return 0, fmt.Errorf("list outputs: %w", err)
	}
	files = withoutSignature(files)
	sig, err := readSignature(dir)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("the command left no files in BMAAS_OUTPUT_DIR; nothing to register in model %s", w.a.GetSpec().GetModel())
	}
	spec := &registryv1.ModelVersionSpec{Metrics: metrics, Hyperparameters: rt.Hyperparameters,
		Description: "trained by job " + w.a.JobId,
		Lineage:     &registryv1.Lineage{JobId: w.a.JobId, Dataset: rt.Dataset, DatasetVersion: dv.GetVersion()},
		Labels:      map[string]string{"job": w.a.JobId}, Signature: sig}
	artifact := ""
	for _, f := range files {
		if strings.EqualFold(filepath.Ext(f), ".onnx") {
			artifact = f
			break
		}
	}
	switch {
	case len(files) == 1:
		artifact = files[0]
	case artifact != "":
		tmp := filepath.Join(w.dir, "bundle.tar.gz")
		if err := writeTarGz(tmp, dir, func(rel string) bool { return rel != artifact && rel != signatureFile }); err != nil {
			return 0, fmt.Errorf("archive outputs: %w", err)
		}
		sha, err := w.uploadBundleFile(tmp)
		if err != nil {
			return 0, err
		}
		spec.Labels["bundle_sha256"] = sha
		sk.logf("outputs besides %s kept as bundle %s", artifact, sha)
	default:
		tmp := filepath.Join(w.dir, "output.tar.gz")
		if err := writeTarGz(tmp, dir, func(rel string) bool { return rel != signatureFile }); err != nil {
			return 0, fmt.Errorf("archive outputs: %w", err)
		}
		spec.Format, spec.Filename = registryv1.ModelFormat_MODEL_FORMAT_OTHER, "output.tar.gz"
		if slices.ContainsFunc(files, func(f string) bool { return formatOf(f) == registryv1.ModelFormat_MODEL_FORMAT_PYTORCH }) {
			spec.Format, spec.Filename = registryv1.ModelFormat_MODEL_FORMAT_PYTORCH, "model.tar.gz"
		}
		return w.registerFile(sk, spec, tmp)
	}
	spec.Format, spec.Filename = formatOf(artifact), filepath.Base(artifact)
	return w.registerFile(sk, spec, filepath.Join(dir, artifact))
}

func (w *worker) registerFile(sk *sink, spec *registryv1.ModelVersionSpec, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	return w.register(sk, spec, f)
}

func (w *worker) uploadBundleFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	ctx, cancel := contextFor(w)
	defer cancel()
	b, err := w.s.registry().uploadBundle(ctx, "outputs.tar.gz", f)
	if err != nil {
		return "", fmt.Errorf("upload output bundle: %w", err)
	}
	return b.Sha256, nil
}
