package cli

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/bmaas/bmaas/internal/app"
	"github.com/bmaas/bmaas/pkg/replica"
)

// addServerCommands mounts `bmaas up` and `bmaas serve`.
func addServerCommands(root *cobra.Command) {
	root.AddCommand(newUpCmd(), newServeCmd(), newReplicaCmd())
}

// newReplicaCmd is the model-server replica: the trainer agent runs it as
// a sandboxed child process with --config; a serving runtime runs it as
// an external server under the serving contract (--model-dir, --format,
// --name, --grpc-port, each defaulting to its BMAAS_* variable).
func newReplicaCmd() *cobra.Command {
	var config string
	var c replica.Contract
	cmd := &cobra.Command{
		Use:   "replica --config FILE | --format onnx|native [--model-dir DIR --name NAME --grpc-port PORT --token-env VAR]",
		Short: "Serve one model version as the trainer agent's replica process, or as a serving runtime's server",
		Long: "With --config, the trainer agent's replica process (users have no reason to run it).\n" +
			"With --format, KServe v2 gRPC (ServerReady included) on --grpc-port under the serving contract:\n" +
			"flags left out take BMAAS_MODEL_DIR, BMAAS_MODEL_NAME, BMAAS_MODEL_VERSION and BMAAS_GRPC_PORT;\n" +
			"BMAAS_PARAMS's max_batch_size and max_queue_delay_ms batch requests; every call but the health\n" +
			"service's must carry the bearer token in the variable --token-env names.",
		Example: "  bmaas replica --model-dir /models/bc --format onnx --name bc --grpc-port 9001 --token-env BMAAS_TOKEN",
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			contract := c.Format != ""
			switch {
			case config != "" && contract:
				return usageErrorf("give --config FILE or --format (the serving contract), not both")
			case config != "":
				return replica.Main(cmd.Context(), config, cmd.OutOrStdout())
			case contract:
				return replica.ServeContract(cmd.Context(), c, os.Getenv, cmd.OutOrStdout())
			}
			return usageErrorf("--config FILE or --format onnx|native is required")
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&config, "config", "", "the replica's configuration file, written by the agent")
	fl.StringVar(&c.Format, "format", "", "serve under the serving contract a model of this format: onnx or native")
	fl.StringVar(&c.ModelDir, "model-dir", "", "the model file, or a directory holding one (default $BMAAS_MODEL_DIR)")
	fl.StringVar(&c.Name, "name", "", "the model name clients use (default $BMAAS_MODEL_NAME)")
	fl.Int64Var(&c.Version, "version", 0, "the model version (default $BMAAS_MODEL_VERSION)")
	fl.IntVar(&c.GRPCPort, "grpc-port", 0, "the KServe v2 gRPC port (default $BMAAS_GRPC_PORT)")
	fl.StringVar(&c.Host, "host", "", "the address to bind (default every interface)")
	fl.StringVar(&c.TokenEnv, "token-env", "BMAAS_TOKEN", "the environment variable holding the bearer token callers must send")
	return cmd
}

func newUpCmd() *cobra.Command {
	var cfg app.Config
	var configFile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform in one process (embedded etcd and NATS, all five services)",
		Long: "Run every service, an embedded etcd and an embedded NATS with JetStream, the REST gateway,\n" +
			"/readyz and /metrics in one process. State lives in --data-dir; a restart finds it again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loadConfig(cmd.Flags(), &cfg, configFile); err != nil {
				return err
			}
			cfg.Embedded = true
			cfg.Targets = app.AllTargets
			return runApp(cmd, cfg)
		},
	}
	bindConfig(cmd, &cfg, &configFile)
	cmd.Flags().BoolVar(&cfg.DevTLS, "tls", false,
		"serve TLS with a development CA and certificates made in <data-dir>/tls (a client certificate for the CLI included)")
	cmd.Flags().BoolVar(&cfg.Auth, "auth", false,
		"ask a token on every call: a cluster-admin token for \"admin\" is made into <data-dir>/secrets/admin.token on the first start")
	return cmd
}

func newServeCmd() *cobra.Command {
	var cfg app.Config
	var configFile, targets string
	cmd := &cobra.Command{
		Use:   "serve --target=registry[,scheduler,...] --etcd-endpoints=URL --nats-url=URL",
		Short: "Run some services against an external etcd and NATS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loadConfig(cmd.Flags(), &cfg, configFile); err != nil {
				return err
			}
			t, err := app.ParseTargets(targets)
			if err != nil {
				return err
			}
			cfg.Targets = t
			return runApp(cmd, cfg)
		},
	}
	bindConfig(cmd, &cfg, &configFile)
	cmd.Flags().StringVar(&targets, "target", "all", "services to run: "+strings.Join(app.AllTargets, ",")+" or all")
	return cmd
}

// bindConfig registers the process flags (whose defaults live in each
// Config's RegisterFlags) on the command.
func bindConfig(cmd *cobra.Command, cfg *app.Config, configFile *string) {
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	cmd.Flags().AddGoFlagSet(fs)
	cmd.Flags().StringVar(configFile, "config", "", "YAML configuration file (flags and BMAAS_* variables override it)")
}

// loadConfig applies, over the defaults, the config file, then BMAAS_*
// environment variables, then the flags given on the command line.
func loadConfig(flags *pflag.FlagSet, cfg *app.Config, file string) error {
	set := map[string]string{}
	flags.Visit(func(f *pflag.Flag) { set[f.Name] = f.Value.String() })
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			return fmt.Errorf("config %s: %w", file, err)
		}
	}
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if _, ok := set[f.Name]; ok || err != nil || f.Name == "config" {
			return
		}
		env := "BMAAS_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(f.Name))
		if v, ok := os.LookupEnv(env); ok {
			if serr := flags.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", env, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	for name, v := range set {
		if err := flags.Set(name, v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// printReady says where the process listens and, for what it made
// itself, where the credentials are.
func printReady(w io.Writer, cfg app.Config, ad app.Addrs) {
	scheme := "http"
	if ad.TLS.Enabled() {
		scheme = "https"
	}
	fmt.Fprintf(w, "bmaas is ready: services %s\n  gRPC  %s\n  HTTP  %s://%s\n", strings.Join(cfg.Targets, ","), ad.GRPC, scheme, ad.HTTP)
	fmt.Fprintf(w, "  Console  %s://%s/ui/\n", scheme, browsable(ad.HTTP))
	if cfg.Embedded {
		fmt.Fprintf(w, "  etcd  %s (user %s, password in %s)\n  NATS  %s (user %s, password in %s)\n",
			strings.Join(ad.EtcdEndpoints, ","), ad.Etcd.Username, ad.Etcd.PasswordFile, ad.NATSURL, ad.NATS.User, ad.NATS.PasswordFile)
	}
	if cfg.DevTLS {
		dir, _ := filepath.Abs(cfg.DataDir)
		f := app.DevTLS(dir)
		fmt.Fprintf(w, "  TLS   development CA %s; for the CLI:\n        export BMAAS_TLS_CA=%s BMAAS_TLS_CERT=%s BMAAS_TLS_KEY=%s\n",
			f.CA, f.CA, f.ClientCert, f.ClientKey)
	}
}

// browsable turns a wildcard listen address (0.0.0.0:8080, [::]:8080)
// into one a browser on this machine can open.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && (host == "" || (ip != nil && ip.IsUnspecified())) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func runApp(cmd *cobra.Command, cfg app.Config) error {
	// Model-server replicas are this binary run as sandboxed processes.
	if cfg.TrainerAgent.ReplicaBinary == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.TrainerAgent.ReplicaBinary = exe
		}
	}
	logger, err := cfg.Telemetry.NewLogger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	a, err := app.New(cfg, logger)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	setExitBound(ctx, a.ShutdownBound)
	go func() {
		select {
		case <-a.Ready():
			printReady(cmd.OutOrStdout(), cfg, a.Addrs())
		case <-ctx.Done():
		}
	}()
	return a.Run(ctx)
}
