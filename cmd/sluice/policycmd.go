package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/policy"
)

func newPolicyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Test, evaluate and replay egress policies (OPA Rego)",
		Long: `Egress policies are Rego modules (package sluice.egress, rule result) with a data
document of thresholds (data.sluice.thresholds). The default is embedded in sluice;
docs/policy-input.md documents the input. A policy's version is the hash of its files.`,
	}
	c.AddCommand(newPolicyTestCmd(), newPolicyEvalCmd(), newPolicyReplayCmd())
	return c
}

func newPolicyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "test [DIR]",
		Short:   "Run a policy's Rego unit tests (like opa test); default: the embedded policy",
		Example: "  sluice policy test policy/rego",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one DIR", c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			results, err := policy.Test(c.Context(), dir)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				status := "PASS"
				if !r.Pass {
					status = "FAIL"
					failed++
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s.%s", status, r.Package, r.Name)
				if r.Error != "" {
					fmt.Fprintf(c.OutOrStdout(), ": %s", r.Error)
				}
				fmt.Fprintln(c.OutOrStdout())
			}
			fmt.Fprintf(c.OutOrStdout(), "%d passed, %d failed\n", len(results)-failed, failed)
			if len(results) == 0 {
				return exitError{code: exitNo, msg: "no tests found"}
			}
			if failed > 0 {
				return exitError{code: exitNo}
			}
			return nil
		},
	}
}

func newPolicyEvalCmd() *cobra.Command {
	var dir, input string
	c := &cobra.Command{
		Use:     "eval [--policy DIR] --input FILE",
		Short:   "Evaluate a policy on one recorded input document",
		Example: "  sluice policy eval --policy policy/rego --input inputs/3f2a….json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "input"); err != nil {
				return err
			}
			eng, err := policy.Load(c.Context(), dir)
			if err != nil {
				return err
			}
			doc, err := readInput(input)
			if err != nil {
				return err
			}
			d, err := eng.Decide(c.Context(), doc)
			if err != nil {
				return err
			}
			return writeJSON(c.OutOrStdout(), d)
		},
	}
	c.Flags().StringVar(&dir, "policy", "", "policy directory (default: the embedded policy)")
	c.Flags().StringVar(&input, "input", "", "policy input document (JSON)")
	return c
}

func readInput(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--input: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, usagef("%s: not a JSON object: %v", path, err)
	}
	return doc, nil
}

func newPolicyReplayCmd() *cobra.Command {
	var dir, baseline, inputs, output string
	c := &cobra.Command{
		Use:   "replay --policy DIR --inputs DIR [--baseline DIR] [-o json]",
		Short: "Evaluate a candidate policy on recorded inputs and show the decisions that change",
		Long: `Evaluates the candidate policy (--policy) and the baseline (--baseline, default: the
embedded policy) on every recorded input (*.json in --inputs, as saved by
'sluice egress check --record-inputs') and prints the inputs whose decision changes,
so a security officer sees the effect of a change before activating it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "policy", "inputs"); err != nil {
				return err
			}
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			cand, err := policy.Load(c.Context(), dir)
			if err != nil {
				return fmt.Errorf("--policy: %w", err)
			}
			base, err := policy.Load(c.Context(), baseline)
			if err != nil {
				return fmt.Errorf("--baseline: %w", err)
			}
			files, err := filepath.Glob(filepath.Join(inputs, "*.json"))
			if err != nil || len(files) == 0 {
				return usagef("--inputs %s: no recorded inputs (*.json)", inputs)
			}
			sort.Strings(files)
			type change struct {
				Input     string          `json:"input"`
				Product   string          `json:"product"`
				Baseline  string          `json:"baseline"`
				Candidate string          `json:"candidate"`
				Reasons   []policy.Reason `json:"candidate_reasons"`
			}
			changes := []change{}
			for _, f := range files {
				doc, err := readInput(f)
				if err != nil {
					return err
				}
				b, err := base.Decide(c.Context(), doc)
				if err != nil {
					return fmt.Errorf("%s: baseline: %w", f, err)
				}
				d, err := cand.Decide(c.Context(), doc)
				if err != nil {
					return fmt.Errorf("%s: candidate: %w", f, err)
				}
				if b.Decision != d.Decision || b.Approvals != d.Approvals {
					prod := ""
					if p, ok := doc["product"].(map[string]any); ok {
						prod, _ = p["path"].(string)
					}
					changes = append(changes, change{Input: filepath.Base(f), Product: prod, Baseline: b.Decision, Candidate: d.Decision, Reasons: d.Reasons})
				}
			}
			if output == "json" {
				return writeJSON(c.OutOrStdout(), map[string]any{"baseline": base.Version(), "candidate": cand.Version(), "inputs": len(files), "changes": changes})
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "baseline %s, candidate %s: %d inputs, %d decisions change\n", base.Version(), cand.Version(), len(files), len(changes))
			for _, ch := range changes {
				var codes []string
				for _, r := range ch.Reasons {
					codes = append(codes, r.Code)
				}
				fmt.Fprintf(w, "  %s %s: %s -> %s %s\n", ch.Input, ch.Product, ch.Baseline, ch.Candidate, strings.Join(codes, ","))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "policy", "", "candidate policy directory")
	c.Flags().StringVar(&baseline, "baseline", "", "baseline policy directory (default: the embedded policy)")
	c.Flags().StringVar(&inputs, "inputs", "", "directory of recorded policy inputs")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}
