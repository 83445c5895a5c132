package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/demodata"
)

func newDemoDataCmd() *cobra.Command {
	var (
		rows   int
		out    string
		seed   uint64
		format string
	)
	c := &cobra.Command{
		Use:   "demo-data --rows N --out DIR [--seed S]",
		Short: "Write deterministic synthetic residents and enterprises datasets",
		Long: `Writes residents.<fmt> (N rows) and enterprises.<fmt> (N/10 rows) into DIR.

Residents have valid 18-digit resident IDs, mobiles, UnionPay cards with Luhn
digits, Chinese names, birth dates consistent with the IDs, districts,
education, occupation, income, diagnosis and insurance paid. Enterprises have
valid unified social credit codes, names, legal representatives with resident
IDs, industry, district, registered capital, employees and tax. Everyone is
invented; the same seed always gives the same bytes.`,
		Example: "  sluice demo-data --rows 100000 --out /tmp/demo\n  sluice demo-data --rows 1000 --out /tmp/demo --format parquet --seed 7",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "rows", "out"); err != nil {
				return err
			}
			if rows < 1 {
				return usagef("--rows must be at least 1")
			}
			f := dataset.Format(format)
			switch f {
			case dataset.CSV, dataset.Parquet, dataset.ArrowFile:
			default:
				return usagef("--format %q: use csv, parquet or arrow", format)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("--out %s: %w", out, err)
			}
			if err := demodata.Write(c.Context(), out, rows, seed, f); err != nil {
				return err
			}
			r, e := demodata.Files(out, f)
			fmt.Fprintf(c.OutOrStdout(), "wrote %s (%d rows) and %s (%d rows)\n", r, rows, e, max(1, rows/10))
			return nil
		},
	}
	c.Flags().IntVar(&rows, "rows", 0, "number of residents (enterprises: a tenth)")
	c.Flags().StringVar(&out, "out", "", "output directory (created if missing)")
	c.Flags().Uint64Var(&seed, "seed", 1, "random seed")
	c.Flags().StringVar(&format, "format", "csv", "file format: csv, parquet or arrow")
	return c
}
