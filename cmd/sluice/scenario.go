package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/server/client"
)

func newScenarioCmd() *cobra.Command {
	var sf serverFlags
	c := &cobra.Command{
		Use:   "scenario",
		Short: "Scenarios: one scenario, one data list, one review (一场景一清单一审核)",
		Long: `A scenario authorises a tenant to use exact columns of registered datasets for a
stated purpose until a date (at most three years). A scientist applies; an
administrator approves or rejects, suspends (rectification: access closes at
once) and resumes, and terminates (the scenario's keys and views are destroyed,
and the destruction is recorded).`,
	}
	sf.register(c)
	var a client.Application
	var datasets []string
	var until string
	apply := &cobra.Command{
		Use:   "apply --name NAME --purpose TEXT --dataset NAME[@VERSION]:COL,COL… --until DATE",
		Short: "Apply for a scenario (scientist)",
		Example: `  sluice scenario apply --name income-by-city --purpose "income by city for the labour bureau" \
      --dataset residents:district_code,monthly_income --until 2027-06-30`,
		Args: exactArgs(0, "no arguments: use the flags"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlags(c, "name", "purpose", "dataset", "until"); err != nil {
				return err
			}
			t, err := time.Parse("2006-01-02", until)
			if err != nil {
				if t, err = time.Parse(time.RFC3339, until); err != nil {
					return usagef("--until %q: give a date (2027-06-30) or an RFC 3339 time", until)
				}
			}
			a.Until = t
			a.Datasets = nil
			for _, d := range datasets {
				sd, err := parseScenarioDataset(d)
				if err != nil {
					return usagef("--dataset %q: %v", d, err)
				}
				a.Datasets = append(a.Datasets, sd)
			}
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.Scenario, error) {
				return cl.ApplyScenario(ctx, a)
			},
				func(w *tabwriter.Writer, sc metadata.Scenario) {
					fmt.Fprintf(w, "scenario %s applied for: %s (%s)\n", sc.Name, sc.ID, sc.State)
				})
		},
	}
	f := apply.Flags()
	f.StringVar(&a.Name, "name", "", "the scenario's name")
	f.StringVar(&a.Purpose, "purpose", "", "what the data is for")
	f.StringArrayVar(&datasets, "dataset", nil, "a dataset and the exact columns needed: NAME[@VERSION]:COL,COL (repeatable)")
	f.StringSliceVar(&a.Products, "product", nil, "expected product types (table, report, model, …)")
	f.StringVar(&until, "until", "", "end of the period (at most three years)")
	c.AddCommand(apply)

	for _, d := range metadata.ScenarioDecisions {
		var comment string
		dc := &cobra.Command{
			Use:   d.Verb + " ID [--comment TEXT]",
			Short: strings.ToUpper(d.Verb[:1]) + d.Verb[1:] + " a scenario (admin)",
			Args:  exactArgs(1, "a scenario ID"),
			RunE: func(c *cobra.Command, args []string) error {
				return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.Scenario, error) {
					return cl.DecideScenario(ctx, args[0], d.Verb, comment)
				},
					func(w *tabwriter.Writer, sc metadata.Scenario) { fmt.Fprintf(w, "scenario %s: %s\n", sc.ID, sc.State) })
			},
		}
		dc.Flags().StringVar(&comment, "comment", "", "why (kept with the decision)")
		c.AddCommand(dc)
	}
	var amendDatasets []string
	amend := &cobra.Command{
		Use:   "amend ID --dataset NAME[@VERSION]:COL,COL…",
		Short: "Propose a new data list for a scenario (scientist): a new version, approved again",
		Long: `Proposes the whole new data list of an active or suspended scenario. It is a new
version of the scenario, which an administrator approves (approve-amendment) or
rejects (reject-amendment); until then the scenario keeps the list it has.`,
		Args: exactArgs(1, "a scenario ID"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "dataset"); err != nil {
				return err
			}
			var ds []metadata.ScenarioDataset
			for _, d := range amendDatasets {
				sd, err := parseScenarioDataset(d)
				if err != nil {
					return usagef("--dataset %q: %v", d, err)
				}
				ds = append(ds, sd)
			}
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.Amendment, error) {
				return cl.AmendScenario(ctx, args[0], ds)
			},
				func(w *tabwriter.Writer, a metadata.Amendment) {
					fmt.Fprintf(w, "scenario %s: amendment %d proposed (%s)\n", a.ScenarioID, a.Version, a.State)
				})
		},
	}
	amend.Flags().StringArrayVar(&amendDatasets, "dataset", nil, "a dataset and the exact columns needed: NAME[@VERSION]:COL,COL (repeatable; the whole new list)")
	c.AddCommand(amend)
	c.AddCommand(&cobra.Command{
		Use: "amendments ID", Short: "List a scenario's amendments", Args: exactArgs(1, "a scenario ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) ([]metadata.Amendment, error) {
				return cl.Amendments(ctx, args[0])
			}, func(w *tabwriter.Writer, as []metadata.Amendment) {
				fmt.Fprintln(w, "VERSION\tSTATE\tPROPOSED BY\tDATASETS")
				for _, a := range as {
					var ds []string
					for _, d := range a.Datasets {
						ds = append(ds, fmt.Sprintf("%s@%d:%s", d.Name, d.Version, strings.Join(d.Columns, ",")))
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", a.Version, a.State, a.ProposedBy, strings.Join(ds, " "))
				}
			})
		},
	})
	for _, verb := range []string{"approve", "reject"} {
		var comment string
		dc := &cobra.Command{
			Use:   verb + "-amendment ID VERSION [--comment TEXT]",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " an amendment of a scenario's data list (admin)",
			Args:  exactArgs(2, "a scenario ID and an amendment's version"),
			RunE: func(c *cobra.Command, args []string) error {
				var version int
				if _, err := fmt.Sscanf(args[1], "%d", &version); err != nil || version < 2 {
					return usagef("VERSION %q: an amendment's version, a number from 2", args[1])
				}
				return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.Scenario, error) {
					return cl.DecideAmendment(ctx, args[0], version, verb, comment)
				}, func(w *tabwriter.Writer, sc metadata.Scenario) {
					fmt.Fprintf(w, "scenario %s: version %d (%s)\n", sc.ID, sc.Version, sc.State)
				})
			},
		}
		dc.Flags().StringVar(&comment, "comment", "", "why (kept with the decision)")
		c.AddCommand(dc)
	}
	c.AddCommand(&cobra.Command{
		Use: "list", Short: "List the scenarios you may see", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) ([]metadata.Scenario, error) {
				return cl.ListScenarios(ctx)
			},
				func(w *tabwriter.Writer, scs []metadata.Scenario) {
					fmt.Fprintln(w, "ID\tNAME\tTENANT\tSTATE\tUNTIL")
					for _, sc := range scs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", sc.ID, sc.Name, sc.TenantID, sc.State, sc.Until.Format("2006-01-02"))
					}
				})
		},
	}, &cobra.Command{
		Use: "show ID", Short: "Show a scenario", Args: exactArgs(1, "a scenario ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.Scenario, error) {
				return cl.Scenario(ctx, args[0])
			},
				func(w *tabwriter.Writer, sc metadata.Scenario) {
					fmt.Fprintf(w, "scenario\t%s (%s)\nversion\t%d\ntenant\t%s\nstate\t%s\npurpose\t%s\nuntil\t%s\n", sc.Name, sc.ID, sc.Version, sc.TenantID, sc.State, sc.Purpose, sc.Until.Format("2006-01-02"))
					for _, d := range sc.Datasets {
						fmt.Fprintf(w, "dataset\t%s version %d: %s\n", d.Name, d.Version, strings.Join(d.Columns, ", "))
					}
					if sc.Comment != "" {
						fmt.Fprintf(w, "decision\t%s\n", sc.Comment)
					}
					if sc.Destroyed != "" {
						fmt.Fprintf(w, "destroyed\t%s\n", sc.Destroyed)
					}
				})
		},
	})
	return c
}

// parseScenarioDataset reads NAME[@VERSION]:COL,COL.
func parseScenarioDataset(s string) (metadata.ScenarioDataset, error) {
	var d metadata.ScenarioDataset
	name, cols, ok := strings.Cut(s, ":")
	if !ok || cols == "" {
		return d, fmt.Errorf("use NAME[@VERSION]:COL,COL")
	}
	if n, v, ok := strings.Cut(name, "@"); ok {
		if _, err := fmt.Sscanf(v, "%d", &d.Version); err != nil || d.Version < 1 {
			return d, fmt.Errorf("version %q: use a number from 1", v)
		}
		name = n
	}
	d.Name, d.Columns = name, strings.Split(cols, ",")
	return d, nil
}
