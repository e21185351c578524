package traineragent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// testLimits are generous limits for tests that do not test them.
var testLimits = extractLimits{bytes: 1 << 30, entries: 1000}

type entry struct {
	hdr  tar.Header
	size int // bytes of zeros after the header
}

func tarGz(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		h.Size = int64(e.size)
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write(make([]byte, e.size))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return &buf
}

// diskBytes sums the sizes of the regular files below dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	}))
	return n
}

// An archive is unpacked within the limits on bytes and entries, and
// nothing lands outside its directory: no traversal, no links, no path
// through a link that is already there. Over a limit, no more than the
// limit is written.
func TestExtractTarGzLimits(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	lim := extractLimits{bytes: mib, entries: 10}
	many := make([]entry, 11)
	for i := range many {
		many[i] = entry{hdr: tar.Header{Name: "f" + string(rune('a'+i))}}
	}
	for name, tc := range map[string]struct {
		entries []entry
		want    string
	}{
		"one big file": {[]entry{{hdr: tar.Header{Name: "zeros"}, size: 3 * mib}},
			"archive unpacks to more than 1048576 bytes (trainer-agent.max-extract-bytes)"},
		"files adding up": {[]entry{{hdr: tar.Header{Name: "a"}, size: mib / 2}, {hdr: tar.Header{Name: "b"}, size: mib / 2},
			{hdr: tar.Header{Name: "c"}, size: mib / 2}},
			"archive unpacks to more than 1048576 bytes (trainer-agent.max-extract-bytes)"},
		"the same file again": {[]entry{{hdr: tar.Header{Name: "a"}, size: mib / 2}, {hdr: tar.Header{Name: "a"}, size: mib / 2},
			{hdr: tar.Header{Name: "a"}, size: mib / 2}},
			"archive unpacks to more than 1048576 bytes (trainer-agent.max-extract-bytes)"},
		"too many entries": {many, "archive holds more than 10 entries (trainer-agent.max-extract-entries)"},
		"traversal":        {[]entry{{hdr: tar.Header{Name: "a/../../evil"}}}, "leaves the directory"},
		"absolute":         {[]entry{{hdr: tar.Header{Name: "/etc/evil"}}}, "leaves the directory"},
		"symlink":          {[]entry{{hdr: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}}, "only files and directories"},
		"hard link":        {[]entry{{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../x"}}}, "only files and directories"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := t.TempDir()
			require.ErrorContains(t, extractTarGz(tarGz(t, tc.entries...), dst, lim), tc.want)
			require.LessOrEqual(t, diskBytes(t, dst), lim.bytes)
		})
	}

	// A link already in the directory (a task left it) is not followed.
	dst, outside := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dst, "out")))
	err := extractTarGz(tarGz(t, entry{hdr: tar.Header{Name: "out/f"}, size: 10}), dst, lim)
	require.ErrorContains(t, err, `archive entry "out/f"`)
	left, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, left)

	// At the limits, all is unpacked.
	dst = t.TempDir()
	require.NoError(t, extractTarGz(tarGz(t, entry{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir}},
		entry{hdr: tar.Header{Name: "d/a"}, size: mib / 2}, entry{hdr: tar.Header{Name: "b"}, size: mib / 2}), dst, lim))
	require.Equal(t, int64(mib), diskBytes(t, dst))
}

// fetchArchive fails with the limit's message and leaves no partial
// extraction behind.
func TestFetchArchiveOverTheLimit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "code")
	bomb := tarGz(t, entry{hdr: tar.Header{Name: "zeros"}, size: 2 << 20})
	err := fetchArchive(dir, extractLimits{bytes: 1 << 20, entries: 10}, func(f *os.File) error {
		_, err := f.Write(bomb.Bytes())
		return err
	})
	require.ErrorContains(t, err, "more than 1048576 bytes")
	require.NoDirExists(t, dir)
}

func TestConfigValidateExtractLimits(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Node = "n1"
	require.Equal(t, int64(16<<30), c.MaxExtractBytes)
	c.MaxExtractBytes = 0
	require.ErrorContains(t, c.Validate(), "trainer-agent.max-extract-bytes")
	c = DefaultConfig()
	c.Node, c.MaxExtractEntries = "n1", -1
	require.ErrorContains(t, c.Validate(), "trainer-agent.max-extract-entries")
}
