package cli

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	schedulerv1 "github.com/bmaas/bmaas/api/bmaas/scheduler/v1"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ensureModel creates the model unless it exists; it reports whether it
// created it.
func ensureModel(ctx context.Context, c *client, name string) (bool, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{
		Name: name, Description: "trained by bmaas train"}})
	if status.Code(err) == codes.AlreadyExists {
		return false, nil
	}
	return err == nil, err
}

// resolveDataset pins the job's dataset to a version (the latest when none
// was given), so a later upload does not change what the job trains on,
// and checks the target column against the schema; a builtin job's target
// defaults to the last column.
func resolveDataset(ctx context.Context, c *client, spec *schedulerv1.JobSpec) error {
	b, p := spec.GetBuiltin(), spec.GetProcess()
	name, version := b.GetDataset(), b.GetDatasetVersion()
	if p != nil {
		name, version = p.GetDataset(), p.GetDatasetVersion()
	}
	if name == "" {
		return nil
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	var v *registryv1.DatasetVersion
	if version == 0 {
		resp, err := c.GetDataset(ctx, &registryv1.GetDatasetRequest{Name: name})
		if err != nil {
			return err
		}
		if version = resp.GetDataset().GetLatestVersion(); version == 0 {
			return usageErrorf("dataset %q has no versions yet", name)
		}
		v = resp.GetDataset().GetLatest()
	} else {
		resp, err := c.GetDatasetVersion(ctx, &registryv1.GetDatasetVersionRequest{
			Dataset: name, Version: strconv.FormatInt(version, 10)})
		if err != nil {
			return err
		}
		v = resp.GetVersion()
	}
	if p != nil {
		p.DatasetVersion = version
		return checkTarget(name, v, p.GetHyperparameters()["target"])
	}
	b.DatasetVersion = version
	if b.TargetColumn == "" {
		if b.TargetColumn = lastColumn(v); b.TargetColumn == "" {
			return usageErrorf("dataset %s@%d has no schema to take the target from: give --target", name, version)
		}
	}
	return checkTarget(name, v, b.GetTargetColumn())
}

// checkTarget fails when target is not a column of v (when v's schema is known).
func checkTarget(name string, v *registryv1.DatasetVersion, target string) error {
	cols := v.GetStats().GetColumns()
	if target == "" || len(cols) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for i, col := range cols {
		names[i] = col.GetName()
	}
	if !slices.Contains(names, target) {
		return usageErrorf("--target %q is not a column of dataset %s@%d (columns: %s)",
			target, name, v.GetVersion(), strings.Join(names, ", "))
	}
	return nil
}

// lastColumn is the default target: the last column of a dataset version.
func lastColumn(v *registryv1.DatasetVersion) string {
	cols := v.GetStats().GetColumns()
	if len(cols) == 0 {
		return ""
	}
	return cols[len(cols)-1].GetName()
}

// checkBundle checks the --bundle directory before anything is sent and,
// when the first argument names a script, that the bundle holds it.
func checkBundle(dir string, args []string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return usageErrorf("--bundle: %v", err)
	}
	if !fi.IsDir() {
		return usageErrorf("--bundle %s is not a directory", dir)
	}
	if len(args) > 0 && !filepath.IsAbs(args[0]) && filepath.Ext(args[0]) != "" && !strings.HasPrefix(args[0], "-") {
		if _, err := os.Stat(filepath.Join(dir, args[0])); err != nil {
			return usageErrorf("%s is not in the bundle %s (the command runs inside it)", args[0], dir)
		}
	}
	return nil
}

// skipInBundle names what is never packed: version control and caches.
func skipInBundle(name string, dir bool) bool {
	switch {
	case dir && (name == ".git" || name == "__pycache__" || name == ".venv" || name == ".mypy_cache"):
		return true
	case !dir && (strings.HasSuffix(name, ".pyc") || name == ".DS_Store"):
		return true
	}
	return false
}

// packBundle writes dir as a gzipped tar to w: regular files and
// directories only, in lexical order, with zeroed times and owners, so the
// same tree always gives the same bytes (and the registry stores it once).
func packBundle(dir string, w io.Writer) (files int, err error) {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		if skipInBundle(d.Name(), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // symlinks, sockets, devices: not part of a code bundle
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			return tw.WriteHeader(hdr)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		files++
		_, err = io.CopyN(tw, f, fi.Size())
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("pack bundle %s: %w", dir, err)
	}
	return files, nil
}

// uploadBundle packs dir into a temporary tar.gz and streams it to the
// registry's UploadBundle: a header with the sha256, then the chunks.
func uploadBundle(ctx context.Context, cmd *cobra.Command, c *client, dir string) (*registryv1.Bundle, error) {
	tmp, err := os.CreateTemp("", "bmaas-bundle-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	files, err := packBundle(dir, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	lf, err := openUpload(tmp.Name(), cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	ctx, cancel := c.transfer(ctx, cmd)
	defer cancel()
	stream, err := c.UploadBundle(ctx)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(filepath.Clean(dir))
	err = stream.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Header{
		Header: &registryv1.UploadBundleHeader{Filename: base + ".tar.gz", Sha256: lf.sha256}}})
	if err == nil {
		err = lf.send(cmd.ErrOrStderr(), func(b []byte) error {
			return stream.Send(&registryv1.UploadBundleRequest{Payload: &registryv1.UploadBundleRequest_Chunk{Chunk: b}})
		})
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "bundle %s: %d files, %s, sha256 %s\n", dir, files, humanSize(lf.size), shortDigest(lf.sha256))
	return resp.GetBundle(), nil
}
