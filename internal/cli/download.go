package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
)

// outputFileFlag defines the download commands' -o/--output FILE. It has
// the global flag's name on purpose: a local flag of the same name shadows
// the persistent -o/--output (format), which a download does not use.
func outputFileFlag(cmd *cobra.Command, out *string, def string) {
	cmd.Flags().StringVarP(out, "output", "o", "", "file to write, or - for stdout (default "+def+")")
}

func versionDownloadCommand(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download NAME[@REF] -o FILE",
		Short: "Download a version's artifact (streamed, sha256-verified)",
		Long: "Download a version's artifact. The bytes go to FILE.partial, which is renamed\n" +
			"to FILE only when their sha256 matches the version's.",
		Args: args("NAME[@REF]", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, ref, err := refArg(a[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.transfer(ctx, cmd)
				defer cancel()
				stream, err := c.DownloadModelVersion(ctx, &registryv1.DownloadModelVersionRequest{Model: name, Version: ref})
				if err != nil {
					return err
				}
				first, err := stream.Recv()
				if err != nil {
					return eofIsError(err)
				}
				v := first.GetVersion()
				if v == nil {
					return errMissingHeader
				}
				path := out
				if path == "" {
					path = fmt.Sprintf("%s-v%d%s", v.GetModel(), v.GetVersion(), formatExt(v.GetFormat()))
				}
				return receive(cmd, path, v.GetSha256(), v.GetSizeBytes(), func() ([]byte, error) {
					msg, err := stream.Recv()
					return msg.GetChunk(), err
				}, fmt.Sprintf("%s@%d", v.GetModel(), v.GetVersion()))
			})
		},
	}
	outputFileFlag(cmd, &out, "NAME-vVERSION.EXT")
	return cmd
}

// receive writes the chunks next returns until io.EOF through a sink,
// verifies them and reports what was written.
func receive(cmd *cobra.Command, path, sha string, size int64, next func() ([]byte, error), what string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageErrorf("-o %s is a directory; name the file to write", path)
	}
	s, err := openSink(path, cmd.OutOrStdout(), cmd.ErrOrStderr(), size)
	if err != nil {
		return err
	}
	for {
		chunk, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.abort()
			return err
		}
		if _, err := s.Write(chunk); err != nil {
			s.abort()
			return err
		}
	}
	if err := s.commit(sha, size); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if path == "-" {
		w = cmd.ErrOrStderr()
	}
	check := "sha256 " + shortDigest(sha) + " verified"
	if sha == "" {
		check = "not verified: the server sent no sha256"
	}
	_, err = fmt.Fprintf(w, "%s: %s written to %s (%s)\n", what, humanSize(s.n), s.display(), check)
	return err
}

// eofIsError turns an early end of a download stream into an error.
func eofIsError(err error) error {
	if err == io.EOF {
		return fmt.Errorf("the server ended the download before sending anything")
	}
	return err
}
