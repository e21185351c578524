package mlcli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// outputFormat is the global -o of bmaas (table, json or yaml); table
// when the ml command runs without it.
func outputFormat(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("output"); f != nil && f.Value.Type() == "string" {
		return f.Value.String()
	}
	return "table"
}

// printData writes v as JSON or YAML for -o json|yaml and reports
// whether it did; for a table the caller prints its own text.
func printData(cmd *cobra.Command, w io.Writer, v any) (bool, error) {
	switch outputFormat(cmd) {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return true, err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}

// isTerminal reports whether w is a character device (a terminal), where
// a progress bar redrawn with \r belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
