package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	ctrd "github.com/sluicehq/sluice/sandbox/containerd"
	"github.com/sluicehq/sluice/server"
)

func newServerCmd() *cobra.Command {
	var configFile, ctrdAddress, ctrdNamespace, cacheDir string
	flags := map[string]*string{"data-dir": new(string), "listen": new(string), "token-ttl": new(string), "import-dir": new(string)}
	c := &cobra.Command{
		Use:   "server [--data-dir DIR] [--listen ADDR] [--config FILE]",
		Short: "Run the Sluice platform: the JSON API, the job scheduler and its sandbox",
		Long: `Runs sluice server: the JSON API under /api/v1 (described at /api/openapi.json),
/healthz, /readyz and /metrics (Prometheus), and the scheduler that runs jobs in
containerd (at most max_jobs at once; a restarted server takes on the jobs it
left running). Without containerd the server still starts, and refuses jobs.

Configuration comes from --config (YAML: data_dir, listen, token_ttl,
shutdown_grace, master_key, store, import_dir, state_dir, max_jobs,
allowed_images), then the SLUICE_* variables of the same names
(SLUICE_DATA_DIR, …), then flags: each overrides the one before.

The first start creates the administrator and writes its API token to
DATA_DIR/admin.token (mode 0600). SIGINT or SIGTERM stops the server after
the requests in flight.`,
		Example: `  sluice server --data-dir /var/lib/sluice/server
  SLUICE_LISTEN=0.0.0.0:8420 sluice server --config /etc/sluice/server.yaml`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := server.LoadConfig(configFile, os.Getenv)
			if err != nil {
				return usageError{err}
			}
			for name, key := range map[string]string{"data-dir": "data_dir", "listen": "listen", "token-ttl": "token_ttl", "import-dir": "import_dir"} {
				if c.Flags().Changed(name) {
					if err := cfg.Set(key, *flags[name]); err != nil {
						return usagef("--%s: %v", name, err)
					}
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), nil))
			var opts []server.Option
			ctrdOpts := []ctrd.Option{ctrd.WithNamespace(ctrdNamespace)}
			if runsc := ctrd.LookRunsc(cacheDir); runsc != "" {
				ctrdOpts = append(ctrdOpts, ctrd.WithRunsc(runsc, filepath.Join(cfg.WithDefaults().StateDir, "bin")))
			}
			if exe, err := ctrd.New(c.Context(), ctrdAddress, ctrdOpts...); err != nil {
				log.Warn("containerd is not reachable: this server runs no jobs", "address", ctrdAddress, "err", err)
			} else {
				defer exe.Close()
				opts = append(opts, server.WithExecutor(exe))
			}
			srv, err := server.New(c.Context(), cfg, log, opts...)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return usagef("--listen %s: %v", cfg.Listen, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "sluice server: listening on http://%s (plain HTTP), data in %s\n", ln.Addr(), cfg.DataDir)
			if _, err := os.Stat(filepath.Join(cfg.DataDir, server.AdminTokenFile)); err == nil {
				fmt.Fprintf(c.OutOrStdout(), "sluice server: the administrator's token is in %s\n", filepath.Join(cfg.DataDir, server.AdminTokenFile))
			}
			return srv.Serve(c.Context(), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(flags["data-dir"], "data-dir", "", "data directory (metadata database, admin.token)")
	f.StringVar(flags["listen"], "listen", "", "address to serve on (default "+server.DefaultConfig.Listen+")")
	f.StringVar(flags["import-dir"], "import-dir", "", "the only directory datasets are registered from by path (outside --data-dir)")
	f.StringVar(flags["token-ttl"], "token-ttl", "", "default lifetime of API tokens (default "+server.DefaultConfig.TokenTTL.String()+")")
	f.StringVar(&ctrdAddress, "containerd-address", ctrd.DefaultAddress, "containerd socket jobs run through")
	f.StringVar(&ctrdNamespace, "namespace", ctrd.DefaultNamespace, "containerd namespace of the images and jobs")
	f.StringVar(&cacheDir, "cache-dir", "/var/cache/sluice", "where hack/deps.sh put gVisor's runsc (bin/runsc)")
	return c
}
