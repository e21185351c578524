//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmaas/bmaas/tests/harness"
)

// readmeSkip starts a shell block that the README test does not run (a
// server that runs until Ctrl-C, a GPU), with the reason after it.
const readmeSkip = "# not run by the README test:"

// readmeFiles are the documents whose shell blocks run, in this order.
func readmeFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "examples", "*", "README.md"))
	require.NoError(t, err)
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	return files
}

// shellBlock is one ```sh block of a document.
type shellBlock struct {
	file string
	line int // of its first command
	text string
}

// shellBlocks extracts the ```sh (or ```bash) blocks of a document.
func shellBlocks(file string, doc []byte) []shellBlock {
	var out []shellBlock
	var cur *shellBlock
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && (trimmed == "```sh" || trimmed == "```bash"):
			cur = &shellBlock{file: file, line: n + 1}
			text.Reset()
		case cur != nil && trimmed == "```":
			cur.text = text.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line + "\n")
		}
	}
	return out
}

// TestShellBlocksParse: the extraction the README test relies on.
func TestShellBlocksParse(t *testing.T) {
	t.Parallel()
	doc := "# T\n```sh\na\nb\n```\ntext\n```yaml\nk: v\n```\n```bash\n" + readmeSkip + " why\nc\n```\n"
	bs := shellBlocks("R.md", []byte(doc))
	require.Len(t, bs, 2)
	require.Equal(t, shellBlock{file: "R.md", line: 3, text: "a\nb\n"}, bs[0])
	require.True(t, strings.HasPrefix(bs[1].text, readmeSkip))
	require.Equal(t, 11, bs[1].line)
}

// TestREADME runs the shell blocks of README.md and then of each
// examples/*/README.md, in order, as a new user would: in a copy of the
// repository, against `bin/bmaas up` started as `make run` starts it, on
// free ports (the commands' localhost:8080 and 127.0.0.1:7070 are
// rewritten to them). The first command that fails fails the test.
// Blocks that begin with readmeSkip are not run.
func TestREADME(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the README test runs the whole walkthrough")
	}
	root := repoRoot(t)
	clone := copyRepo(t, root)
	bin := filepath.Join(clone, "bin", "bmaas")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	copyFile(t, harness.Binary(t), bin, 0o755)

	grpcAddr, httpAddr := harness.FreeAddr(t), harness.FreeAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	// As `make run` starts it, on other ports.
	server := exec.CommandContext(ctx, bin, "up", "--registry.import-roots="+filepath.Join(clone, "examples"),
		"--grpc-addr", grpcAddr, "--http-addr", httpAddr)
	server.Dir = clone
	var serverOut bytes.Buffer
	server.Stdout, server.Stderr = &serverOut, &serverOut
	server.Cancel = func() error { return server.Process.Signal(os.Interrupt) }
	server.WaitDelay = 10 * time.Second
	require.NoError(t, server.Start())
	t.Cleanup(func() {
		cancel()
		_ = server.Wait()
		if t.Failed() {
			t.Logf("bmaas up:\n%s", tail(serverOut.String(), 8000))
		}
	})
	eventually(t, time.Minute, "bmaas up ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	script := readmeScript(t, root, grpcAddr, httpAddr)
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(clone, "bin")+":/usr/bin:"+os.Getenv("PATH"),
		"BMAAS_SERVER="+grpcAddr, "BMAAS_URL=http://"+httpAddr, "TERM=dumb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// From the block that failed on.
		at := strings.LastIndex(string(out), "\n::: ")
		t.Fatalf("README walkthrough: %v\n%s", err, tail(string(out[max(at, 0):]), 12000))
	}
	t.Logf("README walkthrough ran:\n%s", tail(string(out), 3000))
}

// readmeScript joins the blocks into one bash script that stops at the
// first failing command and says where it stands in the documents.
func readmeScript(t *testing.T, root, grpcAddr, httpAddr string) string {
	t.Helper()
	ports := strings.NewReplacer("localhost:8080", httpAddr, "127.0.0.1:8080", httpAddr,
		"localhost:7070", grpcAddr, "127.0.0.1:7070", grpcAddr)
	var s strings.Builder
	s.WriteString("set -euo pipefail\nset -o errtrace\ntrap 'echo \"::: failed: $BASH_COMMAND\" >&2' ERR\n")
	run, skipped := 0, 0
	for _, f := range readmeFiles(t, root) {
		doc, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		// Each document in a subshell of its own, from the repository's
		// root: its cd and its variables stay in it.
		s.WriteString("(\n:\n")
		for _, b := range shellBlocks(f, doc) {
			if strings.HasPrefix(b.text, readmeSkip) {
				skipped++
				continue
			}
			run++
			fmt.Fprintf(&s, "echo '::: %s:%d'\n%s\n", b.file, b.line, ports.Replace(b.text))
		}
		s.WriteString(")\n")
	}
	require.Positive(t, run)
	require.LessOrEqual(t, skipped, 4, "few blocks may be skipped")
	return s.String()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	return root
}

// copyRepo copies the files git tracks (and the new ones it does not
// ignore) into a temporary directory: a fresh clone of the working tree.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	require.NoError(t, err, "git ls-files")
	dst := t.TempDir()
	require.NoError(t, os.Chmod(dst, 0o755))
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755))
		copyFile(t, src, filepath.Join(dst, rel), fi.Mode().Perm())
	}
	return dst
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(o, in)
	require.NoError(t, err)
	require.NoError(t, o.Close())
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
