package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/policy"
)

func newEgressCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "egress",
		Short: "Decide whether output products may leave (the egress gate)",
	}
	c.AddCommand(newEgressCheckCmd())
	c.AddCommand(newEgressServerCmds()...)
	return c
}

// checkReport is the JSON output of `sluice egress check` (docs/egress.md).
type checkReport struct {
	Policy  string           `json:"policy"`
	Source  checkSource      `json:"source"`
	Results []*egress.Result `json:"results"`
}

type checkSource struct {
	Path    string `json:"path"`
	Rows    int    `json:"rows"`
	Classes string `json:"classes"` // the file, or "inferred"
}

func newEgressCheckCmd() *cobra.Command {
	var (
		source, classes, policyDir, output, record, scenario string
		released                                             []string
		verbose                                              bool
	)
	c := &cobra.Command{
		Use:   "check --source FILE [--classes FILE] [--released PATH]... [--policy DIR] [-o text|json] PRODUCT...",
		Short: "Check products against their raw source and the egress policy",
		Long: `Builds an index of the raw source (keyed hashes of identifiers and their digests,
row bitmaps of every categorical value), runs every reversibility detector on each
product and asks the OPA policy for a decision: allow, review or deny, with reasons.

Without --classes the source is classified with the dataset detectors. --released
takes files or directories of products already released from the same source, for
the differencing detector. --scenario-thresholds is a JSON object of thresholds the
scenario asks for; the policy keeps whichever is stricter. --record-inputs saves each
policy input (no data values) for 'sluice policy replay'.

Exit code: 0 every product allowed; 3 at least one needs review and none is denied;
1 at least one denied; 2 usage or input error.`,
		Example: "  sluice egress check --source residents.csv --classes residents.classes.yaml out/by_district.csv\n" +
			"  sluice egress check --source residents.csv --released released/ -o json product.csv",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("give at least one PRODUCT (see '%s --help')", c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "source"); err != nil {
				return err
			}
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			for _, p := range append(append([]string{}, args...), released...) {
				if _, err := os.Stat(p); err != nil {
					return usagef("%s: %v", p, err)
				}
			}
			var scenarioTh map[string]any
			if scenario != "" {
				data, err := os.ReadFile(scenario)
				if err != nil {
					return usagef("--scenario-thresholds: %v", err)
				}
				if err := json.Unmarshal(data, &scenarioTh); err != nil {
					return usagef("--scenario-thresholds %s: not a JSON object: %v", scenario, err)
				}
			}
			ctx := c.Context()
			pol, err := policy.Load(ctx, policyDir)
			if err != nil {
				return fmt.Errorf("--policy: %w", err)
			}
			var cls *dataset.Classes
			clsName := "inferred"
			if classes != "" {
				if cls, err = dataset.LoadClasses(classes); err != nil {
					return err
				}
				clsName = classes
			}
			log := (&runtimeFlags{verbose: verbose}).logger(c.ErrOrStderr())
			start := time.Now()
			ix, err := egress.BuildIndex(ctx, source, cls, dataset.Options{})
			if err != nil {
				return err
			}
			log.Info("index built", "source", source, "rows", ix.Rows(), "seconds", time.Since(start).Seconds())
			gate := egress.NewGate(ix, pol).WithScenarioThresholds(scenarioTh)
			if err := gate.AddReleased(ctx, released...); err != nil {
				return err
			}
			rep := checkReport{Policy: pol.Version(), Source: checkSource{Path: source, Rows: ix.Rows(), Classes: clsName}}
			for _, p := range args {
				start := time.Now()
				res, err := gate.Check(ctx, p)
				if err != nil {
					return err
				}
				log.Info("checked", "product", p, "rows", res.Product.Rows, "decision", res.Decision.Decision, "seconds", time.Since(start).Seconds(),
					"parse_ms", res.Timing.ParseMS, "detect_ms", res.Timing.DetectMS, "policy_ms", res.Timing.PolicyMS)
				rep.Results = append(rep.Results, res)
				if record != "" {
					if err := recordInput(record, res.Input); err != nil {
						return err
					}
				}
			}
			if output == "json" {
				if err := writeJSON(c.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printCheck(c.OutOrStdout(), &rep)
			}
			worst := "allow"
			for _, r := range rep.Results {
				switch {
				case r.Decision.Decision == "deny":
					worst = "deny"
				case r.Decision.Decision == "review" && worst == "allow":
					worst = "review"
				}
			}
			switch worst {
			case "deny":
				return exitError{code: exitNo}
			case "review":
				return exitError{code: exitReview}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&source, "source", "", "raw source dataset the products were computed from")
	f.StringVar(&classes, "classes", "", "classification of the source (default: inferred)")
	f.StringArrayVar(&released, "released", nil, "product file or directory already released from the source (repeatable)")
	f.StringVar(&policyDir, "policy", "", "policy directory (default: the embedded policy)")
	f.StringVar(&scenario, "scenario-thresholds", "", "JSON file of thresholds the scenario asks for (can only tighten)")
	f.StringVar(&record, "record-inputs", "", "directory to save each policy input to, for replay")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVarP(&verbose, "verbose", "v", false, "log timings to standard error")
	return c
}

func recordInput(dir string, in *egress.Input) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	return os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:8])+".json"), data, 0o600)
}

func printCheck(w io.Writer, rep *checkReport) {
	for _, r := range rep.Results {
		d := r.Decision
		fmt.Fprintf(w, "%s: %s", r.Product.Path, strings.ToUpper(d.Decision))
		if d.Decision == "review" {
			fmt.Fprintf(w, " (%d approval(s) needed)", d.Approvals)
		}
		fmt.Fprintf(w, "  [%s, %s, %d rows; policy %s]\n", r.Product.Kind, r.Product.Format, r.Product.Rows, d.Policy)
		for _, rs := range d.Reasons {
			fmt.Fprintf(w, "  reason  %s: %s\n", rs.Code, rs.Message)
		}
		for _, f := range r.Findings {
			where := []string{}
			if f.Column != "" {
				where = append(where, "column "+f.Column)
			}
			if f.Location != "" {
				where = append(where, f.Location)
			}
			loc := ""
			if len(where) > 0 {
				loc = " (" + strings.Join(where, ", ") + ")"
			}
			fmt.Fprintf(w, "  %-6s  %s%s: %s\n", f.Severity, f.Detector, loc, f.Message)
		}
	}
}
