package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/internal/atomicfile"
)

func newDatasetCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dataset",
		Short: "Inspect, classify and mask datasets (CSV, Parquet, Arrow IPC); register them on a server",
	}
	c.AddCommand(newInspectCmd(), newClassifyCmd(), newMaskCmd())
	c.AddCommand(newDatasetServerCmds()...)
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newInspectCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a dataset's format, schema, row count, nulls, distinct values and PII",
		Long: `Reads the whole dataset once, in batches, and reports per column its type,
nulls, approximate distinct count (HyperLogLog) and the identifier kinds found
by structural validation (resident IDs with their check character, credit
codes, mobiles, bank cards with Luhn, e-mails, names, passports) with their
match rate. No value of the dataset is printed.`,
		Example: "  sluice dataset inspect residents.csv\n  sluice dataset inspect residents.parquet -o json",
		Args:    exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			p, err := dataset.Inspect(c.Context(), args[0], dataset.Options{})
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(c.OutOrStdout(), p)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "file:    %s\nformat:  %s\nrows:    %d\ncolumns: %d\n\n", p.File, p.Format, p.Rows, len(p.Columns))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COLUMN\tTYPE\tNULLS\tDISTINCT\tPII")
			for _, col := range p.Columns {
				var kinds []string
				for _, m := range col.PII {
					kinds = append(kinds, fmt.Sprintf("%s %.1f%%", m.Kind, 100*m.Rate))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t~%d\t%s\n", col.Name, col.Type, col.Nulls, col.Distinct, strings.Join(kinds, ", "))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

func newClassifyCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "classify FILE",
		Short: "Suggest a column classification (identifier, quasi_identifier, sensitive, other)",
		Long: `Profiles the dataset and prints a suggested classification in the YAML format
that 'sluice dataset mask --classes' reads, with a comment per column saying why.

Identifiers come from PII detection (a kind matched by most values) or from
uniqueness (a text column with a distinct value per row); sensitive columns and
quasi-identifiers from column names (income, diagnosis, birth, district, …),
types (dates) and values (region codes); everything else is other. Grades
follow GB/T 43697-2024 (1 lowest … 4 highest). An administrator reviews and
edits the file before using it.`,
		Example: "  sluice dataset classify residents.csv > residents.classes.yaml",
		Args:    exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := dataset.Inspect(c.Context(), args[0], dataset.Options{})
			if err != nil {
				return err
			}
			s := dataset.Classify(p)
			if out == "" {
				return s.WriteYAML(c.OutOrStdout())
			}
			return atomicfile.Write(out, 0o644, s.WriteYAML)
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the classification to this file instead of standard output")
	return c
}

func newMaskCmd() *cobra.Command {
	var (
		source, classes, profile, keyFile, out, output string
		sample                                         float64
		seed                                           uint64
	)
	c := &cobra.Command{
		Use:   "mask --source FILE --classes FILE [--profile FILE] [--sample F --seed N] [--key FILE] --out FILE",
		Short: "Write a masked copy of a dataset",
		Long: `Masks a dataset column by column according to a profile and a classification,
streaming in batches, and writes the result in the format of --out's extension
(.arrow, .arrows, .parquet, .csv). Nothing is written at --out unless the whole
run succeeds.

--profile is a YAML file or a built-in profile: prod (default: identifiers
pseudonymised, names dropped, quasi-identifiers generalised, sensitive values
kept) or dev (prod plus Laplace noise on sensitive numbers, rare sensitive
categories suppressed, 10% sample). See docs/masking.md.

--key is the pseudonymisation key (64+ hex digits or 32+ raw bytes); in
production it is per scenario. Without it a random key is used and the
pseudonyms match nothing else.`,
		Example: "  sluice dataset mask --source residents.csv --classes residents.classes.yaml --key scenario.key --out residents.masked.arrow\n" +
			"  sluice dataset mask --source residents.csv --classes residents.classes.yaml --profile dev --seed 7 --out dev.parquet",
		Args: exactArgs(0, "no arguments (use --source and --out)"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "source", "classes", "out"); err != nil {
				return err
			}
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			if c.Flags().Changed("sample") && (sample <= 0 || sample > 1) {
				return usagef("--sample %v: use a fraction in (0, 1]", sample)
			}
			if _, err := dataset.FormatFromExt(out); err != nil {
				return usagef("--out %s: use a .csv, .parquet, .arrow or .arrows file name", out)
			}
			if abs(source) == abs(out) {
				return usagef("--out must not be the --source file")
			}
			cls, err := dataset.LoadClasses(classes)
			if err != nil {
				return err
			}
			prof, err := mask.LoadProfile(profile)
			if err != nil {
				return err
			}
			var key mask.Key
			if keyFile != "" {
				key, err = mask.LoadKey(keyFile)
			} else {
				key, err = mask.NewKey()
			}
			if err != nil {
				return err
			}
			rep, err := mask.File(c.Context(), source, out, mask.Options{Profile: prof, Classes: cls, Key: key, Sample: sample, Seed: seed})
			if err != nil {
				return err
			}
			if keyFile == "" {
				fmt.Fprintln(c.ErrOrStderr(), "sluice: warning: no --key given: a random key was used; these pseudonyms match no other run")
			}
			if output == "json" {
				return writeJSON(c.OutOrStdout(), rep)
			}
			printMaskReport(c.OutOrStdout(), rep)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&source, "source", "", "raw dataset (CSV, Parquet or Arrow IPC)")
	f.StringVar(&classes, "classes", "", "classification YAML (see 'sluice dataset classify')")
	f.StringVar(&profile, "profile", "prod", "masking profile: a YAML file, or prod or dev")
	f.Float64Var(&sample, "sample", 0, "keep this fraction of rows (overrides the profile)")
	f.Uint64Var(&seed, "seed", 1, "seed for row sampling")
	f.StringVar(&keyFile, "key", "", "pseudonymisation key file")
	f.StringVar(&out, "out", "", "masked dataset to write (.arrow, .arrows, .parquet or .csv)")
	f.StringVarP(&output, "output", "o", "text", "report format: text or json")
	return c
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func printMaskReport(w io.Writer, rep *mask.Report) {
	fmt.Fprintf(w, "masked %s -> %s with profile %s: %d rows in, %d rows out", rep.Source, rep.Output, rep.Profile, rep.RowsIn, rep.RowsOut)
	if rep.Sample > 0 {
		fmt.Fprintf(w, " (sample %.3g)", rep.Sample)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tCLASS\tPII\tOPERATOR\tTYPE\tCHANGED")
	for _, col := range rep.Columns {
		typ := col.Type
		if col.OutType != "" && col.OutType != col.Type {
			typ += " -> " + col.OutType
		}
		pii := col.PII
		if pii == "" {
			pii = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", col.Name, col.Class, pii, col.Op, typ, col.Changed)
	}
	tw.Flush()
}
