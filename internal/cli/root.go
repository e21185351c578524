// Package cli is the bmaas command-line interface: the cobra command tree
// for the registry (models, versions, aliases, datasets) and the mount
// points of the server and ml commands.
package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bmaas/bmaas/internal/cli/mlcli"
)

// DefaultServer is the registry address used when neither --server nor
// BMAAS_SERVER is set; it is where `bmaas up` listens by default.
const DefaultServer = "127.0.0.1:7070"

// globals holds the values of the persistent flags shared by every client
// command.
type globals struct {
	server  string
	token   string
	tls     tlsFlags
	output  string
	timeout time.Duration

	// project is sent as the bmaas-project header; contextName is
	// --context (config.go).
	project     string
	contextName string

	// dial, when set, replaces the network dial (tests use an in-memory
	// listener).
	dial dialFunc
	// getenv, when set, replaces os.Getenv (tests).
	getenv func(string) string

	// flags are the global flags; settle fills in what they did not give
	// from the environment and the selected context, once.
	flags     *pflag.FlagSet
	settled   bool
	settleErr error
	context   *clientContext
}

// Root builds the whole `bmaas` command tree.
func Root() *cobra.Command {
	return newRoot(&globals{})
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "bmaas",
		Short: "bmaas trains, registers and serves machine-learning models",
		Long: "bmaas trains, registers and serves machine-learning models.\n\n" +
			"Client commands talk to a bmaas server over gRPC (--server, or BMAAS_SERVER).\n" +
			"A model version is referenced as NAME@REF, where REF is a version number,\n" +
			"an alias (never all digits) or `latest` (the newest READY version).\n\n" +
			"Models, datasets, deployments, runtimes and alert rules belong to a project:\n" +
			"a bare NAME is in the project of --project (BMAAS_PROJECT, the context), else\n" +
			"in your only project, else in `default`; PROJECT/NAME says another:\n\n" +
			"  bmaas model get vision/fraud\n" +
			"  bmaas deploy create --model vision/fraud@production",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.validate()
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("BMAAS_SERVER", DefaultServer),
		"gRPC address of the bmaas server (env BMAAS_SERVER)")
	pf.StringVar(&g.token, "token", "", "bearer token sent with every call (env BMAAS_TOKEN)")
	pf.StringVar(&g.project, "project", "", "the project of the calls, sent as the bmaas-project header (env BMAAS_PROJECT)")
	pf.StringVar(&g.contextName, "context", "", "the context of the configuration file to use (env BMAAS_CONTEXT; see bmaas config)")
	g.flags = pf
	g.tls.register(pf)
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json, yaml, or id (only the IDs or names of what the command returns, for scripts)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second,
		"deadline of each request; uploads and downloads are bounded only when set explicitly (0: none)")

	root.AddCommand(modelCommand(g), datasetCommand(g), mlcli.Command())
	root.AddCommand(trainCommand(g), jobCommand(g), nodeCommand(g))
	root.AddCommand(evaluateCommand(g), experimentCommand(g))
	root.AddCommand(deployCommand(g), runtimeCommand(g), predictCommand(g), generateCommand(g), alertCommand(g))
	root.AddCommand(projectCommand(g), tokenCommand(g), whoamiCommand(g), auditCommand(g), configCommand(g), loginCommand(g))
	addServerCommands(root)
	renameFields(root)
	return root
}

// validate checks the persistent flags once per invocation.
func (g *globals) validate() error {
	switch g.output {
	case "table", "json", "yaml", "id":
	default:
		return usageErrorf("--output must be table, json, yaml or id, not %q", g.output)
	}
	if g.timeout < 0 {
		return usageErrorf("--timeout must not be negative")
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
