package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/audit"
	"github.com/sluicehq/sluice/server"
)

func newAuditCmd() *cobra.Command {
	var dataDir, pubKey string
	c := &cobra.Command{
		Use:   "audit",
		Short: "Verify and export the audit trail",
		Long: `The audit trail records every API call (its attempt before it, its outcome after)
and every state change, in a hash chain whose head the server signs every 64
records and when it stops. These commands read a server's data directory.`,
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", "", "the server's data directory")
	c.PersistentFlags().StringVar(&pubKey, "pubkey", "", "the server's public key (default DATA_DIR/server.pub)")
	open := func(ctx context.Context) (*audit.Log, error) {
		if dataDir == "" {
			return nil, usagef("--data-dir is required")
		}
		if _, err := os.Stat(filepath.Join(dataDir, "audit.db")); err != nil {
			return nil, usagef("--data-dir %s: no audit trail there: %v", dataDir, err)
		}
		return audit.Open(ctx, filepath.Join(dataDir, "audit.db"), nil)
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that no record was edited, deleted, inserted or reordered",
		Long: `Recomputes the whole chain and checks every signed checkpoint with the server's
public key. Exit 0: intact; 1: tampered with (the first record at fault is named).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := open(c.Context())
			if err != nil {
				return err
			}
			defer l.Close()
			if pubKey == "" {
				pubKey = filepath.Join(dataDir, server.PubKeyFile)
			}
			pub, err := server.LoadPublicKey(pubKey)
			if err != nil {
				return usagef("--pubkey: %v", err)
			}
			n, err := l.Verify(c.Context(), pub)
			if errors.Is(err, audit.ErrTampered) {
				return exitError{code: exitNo, msg: fmt.Sprintf("audit trail: %v (%d records checked before it)", err, n-1)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "audit trail intact: %d records, every checkpoint signed by %s\n", n, pubKey)
			return nil
		},
	}
	var since string
	export := &cobra.Command{
		Use:   "export [--since TIME]",
		Short: "Write the records as JSON lines",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			var t time.Time
			if since != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, since); err != nil {
					if d, derr := time.ParseDuration(since); derr == nil {
						t = time.Now().Add(-d)
					} else {
						return usagef("--since %q: give an RFC 3339 time or a duration such as 24h", since)
					}
				}
			}
			l, err := open(c.Context())
			if err != nil {
				return err
			}
			defer l.Close()
			return l.Export(c.Context(), t, c.OutOrStdout())
		},
	}
	export.Flags().StringVar(&since, "since", "", "only records at or after this time (RFC 3339) or this long ago (24h)")
	c.AddCommand(verify, export)
	return c
}
