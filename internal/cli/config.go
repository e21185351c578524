package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmaas/bmaas/pkg/iam"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// The client configuration file, shared with the Python SDK: named
// contexts, like kubectl's, each a server with the credentials and the
// project to use with it.
//
//	current-context: prod
//	contexts:
//	  - name: prod
//	    server: bmaas.example.com:7070
//	    url: https://bmaas.example.com:8080
//	    token-file: /etc/bmaas/token      # or token: bmaas_... (one of the two)
//	    project: vision
//	    ca-file: /etc/bmaas/ca.crt
//
// A value is taken from, highest first: its flag, its environment variable,
// the selected context (--context, BMAAS_CONTEXT, current-context), the
// built-in default.

// clientContext is one context of the file.
type clientContext struct {
	Name      string `yaml:"name" json:"name"`
	Server    string `yaml:"server,omitempty" json:"server,omitempty"`
	URL       string `yaml:"url,omitempty" json:"url,omitempty"`
	Token     string `yaml:"token,omitempty" json:"token,omitempty"`
	TokenFile string `yaml:"token-file,omitempty" json:"token-file,omitempty"`
	Project   string `yaml:"project,omitempty" json:"project,omitempty"`
	CAFile    string `yaml:"ca-file,omitempty" json:"ca-file,omitempty"`
	CertFile  string `yaml:"cert-file,omitempty" json:"cert-file,omitempty"`
	KeyFile   string `yaml:"key-file,omitempty" json:"key-file,omitempty"`
}

// clientConfig is the file; keys it does not know are ignored here and
// kept when the file is rewritten.
type clientConfig struct {
	CurrentContext string          `yaml:"current-context" json:"current-context"`
	Contexts       []clientContext `yaml:"contexts" json:"contexts"`
}

// redactedToken replaces a context's inline token in what is printed.
const redactedToken = "REDACTED"

// env reads an environment variable (tests replace the lookup).
func (g *globals) env(key string) string {
	if g.getenv != nil {
		return g.getenv(key)
	}
	return os.Getenv(key)
}

// configPath is where the file is: $BMAAS_CONFIG, else
// $XDG_CONFIG_HOME/bmaas/config.yaml, else ~/.config/bmaas/config.yaml.
func (g *globals) configPath() (string, error) {
	if p := g.env("BMAAS_CONFIG"); p != "" {
		return p, nil
	}
	if x := g.env("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "bmaas", "config.yaml"), nil
	}
	home := g.env("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("the configuration file: no home directory (set BMAAS_CONFIG): %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".config", "bmaas", "config.yaml"), nil
}

// readConfigNode reads the file as a YAML document; a missing or empty file
// is an empty mapping.
func readConfigNode(path string) (*yaml.Node, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the configuration file %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("the configuration file %s: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the configuration file %s: want a mapping with current-context and contexts", path)
	}
	return &doc, nil
}

// decodeConfig reads the file's known keys from its document and checks
// them: every context named, and no context with both token and
// token-file.
func decodeConfig(path string, doc *yaml.Node) (*clientConfig, error) {
	var cfg clientConfig
	if err := doc.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("the configuration file %s: %w", path, err)
	}
	for i, c := range cfg.Contexts {
		if c.Name == "" {
			return nil, fmt.Errorf("the configuration file %s: contexts[%d] has no name", path, i)
		}
		if c.Token != "" && c.TokenFile != "" {
			return nil, fmt.Errorf("the configuration file %s: context %q has both token and token-file: keep one", path, c.Name)
		}
	}
	return &cfg, nil
}

// loadConfig reads the configuration file; a missing file is an empty one.
func (g *globals) loadConfig() (string, *clientConfig, error) {
	path, err := g.configPath()
	if err != nil {
		return "", nil, err
	}
	doc, err := readConfigNode(path)
	if err != nil {
		return "", nil, err
	}
	cfg, err := decodeConfig(path, doc)
	return path, cfg, err
}

// find returns the context named name, or nil.
func (c *clientConfig) find(name string) *clientContext {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// unknownContext is the error for a context name the file lacks.
func (c *clientConfig) unknownContext(name, path string) error {
	names := make([]string, 0, len(c.Contexts))
	for _, x := range c.Contexts {
		names = append(names, x.Name)
	}
	known := "none"
	if len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	return usageErrorf("no context %q in %s (known: %s)", name, path, known)
}

// selectedContext is the context --context, BMAAS_CONTEXT or the file's
// current-context names, with relative file paths made relative to the
// file's directory; nil when none is named.
func (g *globals) selectedContext() (*clientContext, error) {
	path, cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	name := g.contextName
	if !g.changed("context") {
		name = g.env("BMAAS_CONTEXT")
	}
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil, nil
	}
	c := cfg.find(name)
	if c == nil {
		return nil, cfg.unknownContext(name, path)
	}
	out := *c
	dir := filepath.Dir(path)
	for _, p := range []*string{&out.TokenFile, &out.CAFile, &out.CertFile, &out.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &out, nil
}

// changed reports whether the global flag name was given on the command
// line.
func (g *globals) changed(name string) bool {
	if g.flags == nil {
		return false
	}
	f := g.flags.Lookup(name)
	return f != nil && f.Changed
}

// settle fills the connection settings a flag did not give from the
// environment, then the selected context, then the defaults. It runs once,
// before the first call, so that commands making no call never read the
// file.
func (g *globals) settle() error {
	if g.settled {
		return g.settleErr
	}
	g.settled = true
	g.settleErr = g.settleOnce()
	return g.settleErr
}

func (g *globals) settleOnce() error {
	c, err := g.selectedContext()
	if err != nil {
		return err
	}
	if c == nil {
		c = &clientContext{}
	}
	g.context = c
	// pick sets *dst and returns where its value came from.
	pick := func(dst *string, flag, env, fromContext, def string) string {
		switch {
		case g.changed(flag):
			return "--" + flag
		case g.env(env) != "":
			*dst = g.env(env)
			return env
		case fromContext != "":
			*dst = fromContext
			return fmt.Sprintf("context %q", c.Name)
		}
		*dst = def
		return ""
	}
	pick(&g.server, "server", "BMAAS_SERVER", c.Server, DefaultServer)
	if from := pick(&g.project, "project", "BMAAS_PROJECT", c.Project, ""); g.project != "" && !iam.ProjectName.MatchString(g.project) {
		return usageErrorf("project %q (%s): must match [a-z0-9][a-z0-9-]{0,62}", g.project, from)
	}
	pick(&g.tls.ca, "tls-ca", "BMAAS_TLS_CA", c.CAFile, "")
	pick(&g.tls.cert, "tls-cert", "BMAAS_TLS_CERT", c.CertFile, "")
	pick(&g.tls.key, "tls-key", "BMAAS_TLS_KEY", c.KeyFile, "")
	token := c.Token
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil && !g.changed("token") && g.env("BMAAS_TOKEN") == "" {
			return usageErrorf("context %q: token-file: %v", c.Name, err)
		}
		token = strings.TrimSpace(string(b))
	}
	pick(&g.token, "token", "BMAAS_TOKEN", token, "")
	return nil
}

// url is the HTTP address of the gateway: urlFlag when given, else
// BMAAS_URL, else the context's url, else the default.
func (g *globals) url(cmd *cobra.Command, urlFlag string) string {
	switch {
	case cmd.Flags().Changed("url"):
		return urlFlag
	case g.env("BMAAS_URL") != "":
		return g.env("BMAAS_URL")
	case g.context != nil && g.context.URL != "":
		return g.context.URL
	}
	return DefaultURL
}

func configCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Contexts: the servers, credentials and projects of the configuration file",
		Long: "The configuration file ($BMAAS_CONFIG, else $XDG_CONFIG_HOME/bmaas/config.yaml, else\n" +
			"~/.config/bmaas/config.yaml; shared with the Python SDK) holds named contexts: a server (gRPC),\n" +
			"a url (HTTP), a token or token-file, a project and TLS files. The context used is --context,\n" +
			"else BMAAS_CONTEXT, else the file's current-context. A flag or an environment variable\n" +
			"(BMAAS_SERVER, BMAAS_URL, BMAAS_TOKEN, BMAAS_PROJECT, BMAAS_TLS_CA/CERT/KEY) wins over the\n" +
			"context's value.",
	}
	cmd.AddCommand(configGetContextsCommand(g), configUseContextCommand(g), configSetContextCommand(g),
		configCurrentContextCommand(g))
	return cmd
}

// printConfigValue prints v as json or yaml (-o id: ids, one a line).
func printConfigValue(w io.Writer, format string, v any, ids []string) error {
	if format != "id" {
		return printValue(w, format, v)
	}
	for _, id := range ids {
		if _, err := fmt.Fprintln(w, id); err != nil {
			return err
		}
	}
	return nil
}

// redacted is c without its inline token's value.
func redacted(c clientContext) clientContext {
	if c.Token != "" {
		c.Token = redactedToken
	}
	return c
}

func configGetContextsCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts of the configuration file; * marks the current one",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			out := clientConfig{CurrentContext: cfg.CurrentContext, Contexts: []clientContext{}}
			names := []string{}
			for _, c := range cfg.Contexts {
				out.Contexts = append(out.Contexts, redacted(c))
				names = append(names, c.Name)
			}
			if g.output != "table" {
				return printConfigValue(cmd.OutOrStdout(), g.output, out, names)
			}
			t := newTable(cmd.OutOrStdout())
			t.row("CURRENT", "NAME", "SERVER", "PROJECT")
			for _, c := range cfg.Contexts {
				mark := ""
				if c.Name == cfg.CurrentContext {
					mark = "*"
				}
				t.row(mark, c.Name, orDash(c.Server), orDash(c.Project))
			}
			return t.flush()
		},
	}
}

// currentContext is what use-context and current-context print.
type currentContext struct {
	CurrentContext string `yaml:"current-context" json:"current-context"`
}

func configCurrentContextCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the name of the current context",
		Args:  args("no arguments", 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return usageErrorf("no current context in %s: choose one with bmaas config use-context NAME", path)
			}
			if g.output != "table" {
				return printConfigValue(cmd.OutOrStdout(), g.output, currentContext{cfg.CurrentContext}, []string{cfg.CurrentContext})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), cfg.CurrentContext)
			return err
		},
	}
}

func configUseContextCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make NAME the current context",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, err := g.configPath()
			if err != nil {
				return err
			}
			doc, err := readConfigNode(path)
			if err != nil {
				return err
			}
			cfg, err := decodeConfig(path, doc)
			if err != nil {
				return err
			}
			if cfg.find(a[0]) == nil {
				return cfg.unknownContext(a[0], path)
			}
			setScalar(doc.Content[0], "current-context", a[0])
			if err := writeConfig(path, doc); err != nil {
				return err
			}
			if g.output != "table" {
				return printConfigValue(cmd.OutOrStdout(), g.output, currentContext{a[0]}, []string{a[0]})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "switched to context %q\n", a[0])
			return err
		},
	}
}

// contextKeys are set-context's flags, in the order of the file's keys.
var contextKeys = []string{"server", "url", "token-file", "project", "ca-file", "cert-file", "key-file"}

func configSetContextCommand(g *globals) *cobra.Command {
	values := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "set-context NAME [--server ADDR] [--url URL] [--token-file F] [--project P] [--ca-file F] [--cert-file F] [--key-file F]",
		Short: "Create a context, or change the values of one (other contexts and keys are kept)",
		Long: "Create the context NAME, or change the values the flags give (an empty value removes the key).\n" +
			"Files are stored as absolute paths. --token-file replaces an inline token. The file is written\n" +
			"with mode 0600; its other contexts and keys stay. The current context is not changed: see\n" +
			"bmaas config use-context.",
		Example: "  bmaas config set-context prod --server bmaas.example.com:7070 --url https://bmaas.example.com:8080 \\\n" +
			"      --token-file ~/.bmaas/prod-token --project vision --ca-file /etc/bmaas/ca.crt\n" +
			"  bmaas config use-context prod",
		Args: args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			name := a[0]
			if strings.TrimSpace(name) != name || name == "" {
				return usageErrorf("NAME %q: a context's name must not be empty or start or end with spaces", name)
			}
			set := map[string]string{}
			for _, k := range contextKeys {
				if !cmd.Flags().Changed(k) {
					continue
				}
				v := *values[k]
				if err := checkContextValue(k, v); err != nil {
					return err
				}
				if strings.HasSuffix(k, "-file") && v != "" {
					abs, err := filepath.Abs(expandHome(g, v))
					if err != nil {
						return usageErrorf("--%s %s: %v", k, v, err)
					}
					v = abs
				}
				set[k] = v
			}
			path, err := g.configPath()
			if err != nil {
				return err
			}
			doc, err := readConfigNode(path)
			if err != nil {
				return err
			}
			if _, err := decodeConfig(path, doc); err != nil {
				return err
			}
			ctx, err := contextNode(doc.Content[0], name)
			if err != nil {
				return fmt.Errorf("the configuration file %s: %w", path, err)
			}
			for _, k := range contextKeys {
				v, ok := set[k]
				switch {
				case !ok:
				case v == "":
					deleteKey(ctx, k)
				default:
					setScalar(ctx, k, v)
				}
			}
			if set["token-file"] != "" {
				deleteKey(ctx, "token")
			}
			cfg, err := decodeConfig(path, doc)
			if err != nil {
				return err
			}
			if err := writeConfig(path, doc); err != nil {
				return err
			}
			c := redacted(*cfg.find(name))
			if g.output != "table" {
				return printConfigValue(cmd.OutOrStdout(), g.output, c, []string{name})
			}
			t := newTable(cmd.OutOrStdout())
			t.row("NAME", c.Name)
			t.row("SERVER", orDash(c.Server))
			t.row("URL", orDash(c.URL))
			t.row("PROJECT", orDash(c.Project))
			switch {
			case c.TokenFile != "":
				t.row("TOKEN", "from "+c.TokenFile)
			case c.Token != "":
				t.row("TOKEN", "inline (in the file)")
			default:
				t.row("TOKEN", "-")
			}
			t.row("CA FILE", orDash(c.CAFile))
			t.row("CERT FILE", orDash(c.CertFile))
			t.row("KEY FILE", orDash(c.KeyFile))
			t.row("")
			t.row("written to " + path)
			return t.flush()
		},
	}
	help := map[string]string{
		"server":     "gRPC address of the server (host:port, https://host:port for TLS)",
		"url":        "HTTP address of the gateway (http://host:port or https://host:port)",
		"token-file": "a file that holds the bearer token",
		"project":    "the project sent with every call (the bmaas-project header)",
		"ca-file":    "CA certificate (PEM) that issued the server's",
		"cert-file":  "client certificate (PEM)",
		"key-file":   "private key (PEM) of --cert-file",
	}
	for _, k := range contextKeys {
		values[k] = new(string)
		cmd.Flags().StringVar(values[k], k, "", help[k])
	}
	return cmd
}

// checkContextValue refuses a value the CLI or the SDK could not use.
func checkContextValue(key, v string) error {
	if v != strings.TrimSpace(v) {
		return usageErrorf("--%s %q: no spaces around the value", key, v)
	}
	if v == "" {
		return nil
	}
	switch key {
	case "url":
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return usageErrorf("--url %s: must start with http:// or https://", v)
		}
	case "project":
		if !iam.ProjectName.MatchString(v) {
			return usageErrorf("--project %s: must match [a-z0-9][a-z0-9-]{0,62}", v)
		}
	case "server":
		if strings.ContainsAny(v, " \t") {
			return usageErrorf("--server %q: an address has no spaces", v)
		}
	}
	return nil
}

// expandHome replaces a leading ~/ with the home directory.
func expandHome(g *globals, p string) string {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p
	}
	home := g.env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, rest)
}

// contextNode returns the mapping of the context named name in the
// file's root mapping, appending a new one when there is none.
func contextNode(root *yaml.Node, name string) (*yaml.Node, error) {
	list := valueOf(root, "contexts")
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		list = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		deleteKey(root, "contexts")
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "contexts"}, list)
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errors.New("contexts must be a list")
	}
	for _, item := range list.Content {
		if n := valueOf(item, "name"); item.Kind == yaml.MappingNode && n != nil && n.Value == name {
			return item, nil
		}
	}
	item := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	setScalar(item, "name", name)
	list.Content = append(list.Content, item)
	return item, nil
}

// valueOf returns the value node of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets key to the string value in mapping m, in place when it
// is there (its comments kept), appended otherwise.
func setScalar(m *yaml.Node, key, value string) {
	if v := valueOf(m, key); v != nil {
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, LineComment: v.LineComment,
			HeadComment: v.HeadComment, FootComment: v.FootComment}
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// deleteKey removes key from mapping m.
func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = slices.Delete(m.Content, i, i+2)
			return
		}
	}
}

// writeConfig writes doc to path with mode 0600, through a temporary file
// renamed over it, creating the directory (0700) when needed.
func writeConfig(path string, doc *yaml.Node) error {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the configuration file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("the configuration file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("the configuration file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("the configuration file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("the configuration file %s: %w", path, err)
	}
	return nil
}
