//go:build integration

package registry

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/bmaas/bmaas/pkg/blob"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func countBlobs(t *testing.T, f *fixture) int {
	t.Helper()
	n := 0
	require.NoError(t, f.blobs.Walk(t.Context(), func(blob.Info) error { n++; return nil }))
	return n
}

func TestVersionUploadDownloadAliases(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxArtifactBytes = 1 << 20 })
	ctx := t.Context()
	_, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)

	a := randomBytes(100_000, 1)
	v1, err := f.upload(t, "m", a, digest(a), "")
	require.NoError(t, err)
	require.Equal(t, int64(1), v1.Version)
	require.Equal(t, registryv1.VersionStatus_VERSION_STATUS_READY, v1.Status)
	require.Equal(t, digest(a), v1.Sha256)

	b := randomBytes(50_000, 2)
	v2, err := f.upload(t, "m", b, "", digest(b)) // digest in the trailer
	require.NoError(t, err)
	require.Equal(t, int64(2), v2.Version)

	got, v, err := f.download(t, "m", "latest")
	require.NoError(t, err)
	require.Equal(t, int64(2), v.Version)
	require.True(t, bytes.Equal(b, got))

	// Aliases: set, resolve, move, compare-and-swap, unset.
	set, err := f.c.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "m", Alias: "production", Version: "1"})
	require.NoError(t, err)
	require.Equal(t, int64(0), set.PreviousVersion)
	got, v, err = f.download(t, "m", "production")
	require.NoError(t, err)
	require.Equal(t, int64(1), v.Version)
	require.Equal(t, []string{"production"}, v.Aliases)
	require.True(t, bytes.Equal(a, got))

	_, err = f.c.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "m", Alias: "production", Version: "2", ExpectedVersion: 2})
	requireCode(t, err, codes.Aborted, "points at version 1, not 2")
	moved, err := f.c.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "m", Alias: "production", Version: "latest", ExpectedVersion: 1})
	require.NoError(t, err)
	require.Equal(t, int64(1), moved.PreviousVersion)
	require.Equal(t, int64(2), moved.Model.Aliases["production"])

	_, err = f.c.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "m", Alias: "123", Version: "1"})
	requireCode(t, err, codes.InvalidArgument, "all digits")
	_, err = f.c.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "m", Version: "staging"})
	requireCode(t, err, codes.NotFound, "m@staging")
	_, err = f.c.SetAlias(ctx, &registryv1.SetAliasRequest{Model: "m", Alias: "x", Version: "9"})
	requireCode(t, err, codes.NotFound, "m@9")

	// An aliased version cannot be deleted; an unaliased one can.
	_, err = f.c.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: "m", Version: "2"})
	requireCode(t, err, codes.FailedPrecondition, `aliased as "production"`)
	_, err = f.c.DeleteAlias(ctx, &registryv1.DeleteAliasRequest{Model: "m", Alias: "production"})
	require.NoError(t, err)
	_, err = f.c.DeleteAlias(ctx, &registryv1.DeleteAliasRequest{Model: "m", Alias: "production"})
	requireCode(t, err, codes.NotFound, "m@production")
	_, err = f.c.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: "m", Version: "2"})
	require.NoError(t, err)
	list, err := f.c.ListModelVersions(ctx, &registryv1.ListModelVersionsRequest{Model: "m"})
	require.NoError(t, err)
	require.Len(t, list.Versions, 1)

	// The model refuses deletion while versions exist, unless forced.
	_, err = f.c.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: "m"})
	requireCode(t, err, codes.FailedPrecondition, "has 1 versions")
	_, err = f.c.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: "m", Force: true})
	require.NoError(t, err)
}

func TestBadUploadsWriteNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxArtifactBytes = 10_000 })
	ctx := t.Context()
	_, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	data := randomBytes(5000, 3)
	big := randomBytes(20_000, 4)

	tests := []struct {
		name      string
		model     string
		data      []byte
		sha, tail string
		code      codes.Code
		msg       string
	}{
		{"wrong sha", "m", data, digest([]byte("other")), "", codes.InvalidArgument, "sha256: the artifact hashes to"},
		{"bad sha format", "m", data, "xyz", "", codes.InvalidArgument, "header.sha256"},
		{"no sha", "m", data, "", "", codes.InvalidArgument, "sha256: required"},
		{"empty", "m", nil, digest(nil), "", codes.InvalidArgument, "empty upload"},
		{"over limit", "m", big, digest(big), "", codes.ResourceExhausted, "larger than the limit of 10000 bytes"},
		{"unknown model", "nope", data, digest(data), "", codes.NotFound, `model "nope"`},
		{"invalid model", "NOPE", data, digest(data), "", codes.InvalidArgument, "header.model"},
	}
	for _, tc := range tests {
		_, err := f.upload(t, tc.model, tc.data, tc.sha, tc.tail)
		requireCode(t, err, tc.code, tc.msg)
	}
	m, err := f.c.GetModel(ctx, &registryv1.GetModelRequest{Name: "m"})
	require.NoError(t, err)
	require.Equal(t, int64(0), m.Model.LatestVersion, "no version number was used")
	require.Equal(t, 0, countBlobs(t, f), "no blob was stored")
	_, err = f.c.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "m", Version: "latest"})
	requireCode(t, err, codes.NotFound, "no READY version")
}

func TestImportAndGC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := newFixture(t, func(c *Config) { c.GCGrace = 0; c.ImportRoots = []string{dir} })
	ctx := t.Context()
	_, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	path := filepath.Join(dir, "net.onnx")
	data := randomBytes(3000, 5)
	require.NoError(t, os.WriteFile(path, data, 0o600))

	imp, err := f.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: path})
	require.NoError(t, err)
	require.Equal(t, registryv1.ModelFormat_MODEL_FORMAT_ONNX, imp.Version.Format)
	require.Equal(t, "net.onnx", imp.Version.Filename)
	require.Equal(t, digest(data), imp.Version.Sha256)
	_, err = f.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: "rel/path"})
	requireCode(t, err, codes.InvalidArgument, "source_path")
	_, err = f.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: path + ".missing"})
	requireCode(t, err, codes.InvalidArgument, "does not exist")

	// An orphan blob (an upload whose version never committed) is swept;
	// referenced blobs stay.
	w, err := f.blobs.NewWriter(ctx, 0)
	require.NoError(t, err)
	_, err = w.Write([]byte("orphan"))
	require.NoError(t, err)
	_, err = w.Commit(ctx, "")
	require.NoError(t, err)
	require.Equal(t, 2, countBlobs(t, f))
	f.svc.reg.now = func() time.Time { return time.Now().Add(time.Second) }
	n, err := f.svc.Registry().CollectGarbage(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, _, err := f.download(t, "m", "1")
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// TestImportRoots: the registry reads no file of its host unless
// --registry.import-roots allows its directory, and no path, symlink or
// ".." leads out of an allowed one.
func TestImportRoots(t *testing.T) {
	t.Parallel()
	off := newFixture(t, nil)
	ctx := t.Context()
	_, err := off.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	_, err = off.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: "/etc/passwd"})
	requireCode(t, err, codes.InvalidArgument, "--registry.import-roots")

	base := t.TempDir()
	root := filepath.Join(base, "models")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "sub", "net.onnx"), []byte("onnx"), 0o600))
	secret := filepath.Join(base, "token")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "token-link")))
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "etc-link")))
	require.NoError(t, os.Symlink(filepath.Join(root, "sub"), filepath.Join(base, "via-link")))
	on := newFixture(t, func(c *Config) { c.ImportRoots = []string{root} })
	_, err = on.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	for _, tc := range []struct{ path, msg string }{
		{"/etc/passwd", "outside the import roots"},
		{"/proc/self/environ", "outside the import roots"},
		{secret, "outside the import roots"},
		{filepath.Join(root, "token-link"), "outside the import roots"},
		{filepath.Join(root, "etc-link", "passwd"), "outside the import roots"},
		{filepath.Join(root, "..", "token"), "outside the import roots"},
		{filepath.Join(root, "sub"), "not a regular file"},
		{root, "outside the import roots"},
		{filepath.Join(root, "missing.onnx"), "does not exist"},
	} {
		_, err := on.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: tc.path})
		requireCode(t, err, codes.InvalidArgument, tc.msg)
		require.Contains(t, status.Convert(err).Message(), "source_path", tc.path)
	}
	// Inside the root, also through a symlink that resolves into it.
	for i, p := range []string{filepath.Join(root, "sub", "net.onnx"), filepath.Join(base, "via-link", "net.onnx")} {
		v, err := on.c.ImportModelVersion(ctx, &registryv1.ImportModelVersionRequest{Model: "m", SourcePath: p})
		require.NoError(t, err, p)
		require.Equal(t, int64(i+1), v.Version.Version)
	}
}

// TestLatestFollowsDeletes: a model's latest_version is the version
// `latest` names, also after the newest one is deleted; its version count
// is the versions it has; numbers are never handed out twice.
func TestLatestFollowsDeletes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	_, err := f.c.CreateModel(ctx, &registryv1.CreateModelRequest{Model: &registryv1.Model{Name: "m"}})
	require.NoError(t, err)
	for i := range 5 {
		data := []byte{byte(i), 1, 2}
		_, err := f.upload(t, "m", data, digest(data), "")
		require.NoError(t, err)
	}
	model := func() *registryv1.Model {
		m, err := f.c.GetModel(ctx, &registryv1.GetModelRequest{Name: "m"})
		require.NoError(t, err)
		l, err := f.c.ListModels(ctx, &registryv1.ListModelsRequest{})
		require.NoError(t, err)
		require.Len(t, l.Models, 1)
		require.Equal(t, m.Model.LatestVersion, l.Models[0].LatestVersion)
		require.Equal(t, m.Model.VersionCount, l.Models[0].VersionCount)
		return m.Model
	}
	latest := func() int64 {
		v, err := f.c.GetModelVersion(ctx, &registryv1.GetModelVersionRequest{Model: "m", Version: "latest"})
		require.NoError(t, err)
		return v.Version.Version
	}
	require.Equal(t, int64(5), model().LatestVersion)
	require.Equal(t, int64(5), model().VersionCount)

	_, err = f.c.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: "m", Version: "5"})
	require.NoError(t, err)
	require.Equal(t, int64(4), latest())
	require.Equal(t, int64(4), model().LatestVersion)
	require.Equal(t, int64(4), model().VersionCount)

	// A deleted number is not handed out again.
	data := []byte("six")
	v, err := f.upload(t, "m", data, digest(data), "")
	require.NoError(t, err)
	require.Equal(t, int64(6), v.Version)
	require.Equal(t, int64(6), model().LatestVersion)
	require.Equal(t, int64(5), model().VersionCount)

	for _, n := range []string{"2", "6", "4", "3", "1"} {
		_, err = f.c.DeleteModelVersion(ctx, &registryv1.DeleteModelVersionRequest{Model: "m", Version: n})
		require.NoError(t, err)
	}
	require.Equal(t, int64(0), model().LatestVersion)
	require.Equal(t, int64(0), model().VersionCount)
	v, err = f.upload(t, "m", data, digest(data), "")
	require.NoError(t, err)
	require.Equal(t, int64(7), v.Version)
}
