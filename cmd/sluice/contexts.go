package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/internal/atomicfile"
)

// clientConfig is the CLI's file of named contexts: which server, with which
// token, so that an operator who works with several need not export
// SLUICE_SERVER and SLUICE_TOKEN each time.
//
//	current: prod
//	contexts:
//	  prod: {server: "https://sluice.example:8420", token_file: /home/me/.config/sluice/prod.token}
type clientConfig struct {
	Current  string                   `yaml:"current,omitempty"`
	Contexts map[string]clientContext `yaml:"contexts,omitempty"`
}

type clientContext struct {
	Server    string `yaml:"server"`
	TokenFile string `yaml:"token_file,omitempty"`
}

// clientConfigPath is $SLUICE_CONFIG, else ~/.config/sluice/config.yaml.
func clientConfigPath() string {
	if p := os.Getenv("SLUICE_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sluice", "config.yaml")
}

// loadClientConfig reads the file; a missing one is empty.
func loadClientConfig() (clientConfig, string, error) {
	var c clientConfig
	path := clientConfigPath()
	if path == "" {
		return c, path, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, path, usagef("%s: %v", path, err)
	}
	return c, path, nil
}

func (c clientConfig) save(path string) error {
	if path == "" {
		return usagef("no place for the client configuration: set SLUICE_CONFIG")
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// context is the named context (the current one for ""), or false.
func (c clientConfig) context(name string) (clientContext, string, bool) {
	if name == "" {
		name = c.Current
	}
	cc, ok := c.Contexts[name]
	return cc, name, ok && name != ""
}

func newContextCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "context",
		Short: "Named servers and tokens for the commands that talk to a server",
		Long: `Keeps named contexts — a server address and the file of a token — in
$SLUICE_CONFIG (default ~/.config/sluice/config.yaml, mode 0600). A command takes
its server and token from --server and --token-file, then SLUICE_SERVER and
SLUICE_TOKEN, then the context named by --context or SLUICE_CONTEXT, then the
current context.`,
	}
	var server, tokenFile string
	set := &cobra.Command{
		Use: "set NAME --server URL [--token-file FILE]", Short: "Add or change a context", Args: exactArgs(1, "a context NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "server"); err != nil {
				return err
			}
			if tokenFile != "" {
				abs, err := filepath.Abs(tokenFile)
				if err != nil {
					return usagef("--token-file: %v", err)
				}
				tokenFile = abs
			}
			cfg, path, err := loadClientConfig()
			if err != nil {
				return err
			}
			if cfg.Contexts == nil {
				cfg.Contexts = map[string]clientContext{}
			}
			cfg.Contexts[args[0]] = clientContext{Server: server, TokenFile: tokenFile}
			if cfg.Current == "" {
				cfg.Current = args[0]
			}
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "context %s: %s (in %s)\n", args[0], server, path)
			return nil
		},
	}
	set.Flags().StringVar(&server, "server", "", "the server's address, e.g. https://sluice.example:8420")
	set.Flags().StringVar(&tokenFile, "token-file", "", "the file holding the API token")
	use := &cobra.Command{
		Use: "use NAME", Short: "Make a context the current one", Args: exactArgs(1, "a context NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, path, err := loadClientConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return usagef("no context %q in %s (sluice context set %s --server URL)", args[0], path, args[0])
			}
			cfg.Current = args[0]
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "current context: %s\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List the contexts", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, _, err := loadClientConfig()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Contexts))
			for n := range cfg.Contexts {
				names = append(names, n)
			}
			slices.Sort(names)
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tTOKEN FILE")
			for _, n := range names {
				mark := ""
				if n == cfg.Current {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, n, cfg.Contexts[n].Server, cfg.Contexts[n].TokenFile)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(set, use, list)
	return c
}
