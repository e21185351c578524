package cli

import (
	"context"
	"errors"
	"io"
	"path/filepath"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
)

// specFlags are the version metadata flags shared by upload and import.
type specFlags struct {
	format, description string
	metrics, params     []string
	labels              []string
}

func (s *specFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.format, "format", "", "native, onnx, pytorch or other (default: detected from the file)")
	f.StringVar(&s.description, "description", "", "what this version is")
	f.StringArrayVar(&s.metrics, "metric", nil, "metric name=number (repeatable)")
	f.StringArrayVar(&s.params, "param", nil, "hyperparameter key=value (repeatable)")
	f.StringArrayVar(&s.labels, "label", nil, "label key=value (repeatable)")
}

// spec builds the version spec; detect, when not nil, guesses the format
// if --format was not given.
func (s *specFlags) spec(detect func() (registryv1.ModelFormat, error)) (*registryv1.ModelVersionSpec, error) {
	spec := &registryv1.ModelVersionSpec{Description: s.description}
	var err error
	switch {
	case s.format != "":
		spec.Format, err = parseFormat(s.format)
	case detect != nil:
		spec.Format, err = detect()
	}
	if err != nil {
		return nil, err
	}
	if spec.Metrics, err = parseMetrics("metric", s.metrics); err != nil {
		return nil, err
	}
	if spec.Hyperparameters, err = parseKV("param", s.params); err != nil {
		return nil, err
	}
	if spec.Labels, err = parseKV("label", s.labels); err != nil {
		return nil, err
	}
	return spec, nil
}

func versionUploadCommand(g *globals) *cobra.Command {
	var sf specFlags
	cmd := &cobra.Command{
		Use:   "upload NAME FILE",
		Short: "Upload a model file as a new version (streamed, sha256-verified)",
		Args:  args("NAME FILE", 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			return uploadVersion(g, cmd, a[0], a[1], &sf)
		},
	}
	sf.register(cmd)
	return cmd
}

func versionImportCommand(g *globals) *cobra.Command {
	var sf specFlags
	var serverPath string
	cmd := &cobra.Command{
		Use:   "import NAME {FILE | --server-path PATH}",
		Short: "Register an existing model file (ONNX, PyTorch, ...) as a new version",
		Long: "Register an existing model file as a new version. With FILE the file is uploaded\n" +
			"like `version upload`. With --server-path the registry reads the file from its own\n" +
			"host instead (an absolute path there), and nothing is uploaded.",
		Args: func(cmd *cobra.Command, a []string) error {
			if serverPath != "" {
				return args("NAME with --server-path", 1)(cmd, a)
			}
			return args("NAME FILE, or NAME --server-path PATH", 2)(cmd, a)
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if serverPath == "" {
				return uploadVersion(g, cmd, a[0], a[1], &sf)
			}
			if !filepath.IsAbs(serverPath) {
				return usageErrorf("--server-path %q must be an absolute path on the server", serverPath)
			}
			spec, err := sf.spec(nil)
			if err != nil {
				return err
			}
			spec.Filename = filepath.Base(serverPath)
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				resp, err := c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{
					Model: a[0], SourcePath: serverPath, Spec: spec})
				if err != nil {
					return renameField(err, "source_path", "--server-path")
				}
				return printVersion(g.printer(cmd.OutOrStdout()), resp.GetVersion())
			})
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&serverPath, "server-path", "", "absolute path of the file on the registry's host")
	return cmd
}

// uploadVersion hashes path, then streams it to CreateModelVersion: a
// header with the sha256 and size, then 1 MiB chunks.
func uploadVersion(g *globals, cmd *cobra.Command, model, path string, sf *specFlags) error {
	spec, err := sf.spec(func() (registryv1.ModelFormat, error) { return DetectFormat(path) })
	if err != nil {
		return err
	}
	lf, err := openUpload(path, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer lf.Close()
	spec.Filename = lf.name
	return g.withClient(cmd, func(ctx context.Context, c *client) error {
		ctx, cancel := c.transfer(ctx, cmd)
		defer cancel()
		stream, err := c.CreateModelVersion(ctx)
		if err != nil {
			return err
		}
		header := &registryv1.CreateModelVersionRequest{Payload: &registryv1.CreateModelVersionRequest_Header{
			Header: &registryv1.CreateModelVersionHeader{Model: model, Spec: spec, Sha256: lf.sha256, SizeBytes: lf.size}}}
		err = stream.Send(header)
		if err == nil {
			err = lf.send(cmd.ErrOrStderr(), func(b []byte) error {
				return stream.Send(&registryv1.CreateModelVersionRequest{
					Payload: &registryv1.CreateModelVersionRequest_Chunk{Chunk: b}})
			})
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err // a local error or a broken connection: the deferred cancel aborts the upload
		}
		resp, err := stream.CloseAndRecv() // after io.EOF, this carries the server's reason
		if err != nil {
			return err
		}
		return printVersion(g.printer(cmd.OutOrStdout()), resp.GetVersion())
	})
}
