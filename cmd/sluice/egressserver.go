package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/server/client"
)

// newEgressServerCmds are the egress commands that talk to a server: the
// requests a finished prod job made and the gate's decision on each
// product.
func newEgressServerCmds() []*cobra.Command {
	var sf serverFlags
	list := &cobra.Command{
		Use: "list", Short: "List the egress requests you may see (a finished prod job's products)", Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) ([]metadata.EgressRequest, error) {
				return cl.ListEgress(ctx)
			},
				func(w *tabwriter.Writer, rs []metadata.EgressRequest) {
					fmt.Fprintln(w, "ID\tJOB\tSCENARIO\tSTATE\tCREATED")
					for _, r := range rs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.JobID, r.ScenarioID, r.State, r.CreatedAt.Format("2006-01-02 15:04:05"))
					}
				})
		},
	}
	sf.register(list)
	show := &cobra.Command{
		Use: "show ID", Short: "Show an egress request: each product's decision and reasons (never its content)", Args: exactArgs(1, "an egress request ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.EgressRequest, error) {
				return cl.Egress(ctx, args[0])
			},
				func(w *tabwriter.Writer, r metadata.EgressRequest) {
					fmt.Fprintf(w, "request\t%s (%s)\njob\t%s\nscenario\t%s\n", r.ID, r.State, r.JobID, r.ScenarioID)
					if r.Justification != "" {
						fmt.Fprintf(w, "justification\t%s\n", r.Justification)
					}
					for _, p := range r.Products {
						fmt.Fprintf(w, "%s\t%s  (%d bytes, policy %s)\n", p.Name, p.Decision, p.Size, p.Policy)
						var reasons []policy.Reason
						json.Unmarshal(p.Reasons, &reasons)
						for _, rs := range reasons {
							fmt.Fprintf(w, "\t  %s: %s\n", rs.Code, rs.Message)
						}
					}
				})
		},
	}
	sf.register(show)
	withdraw := &cobra.Command{
		Use: "withdraw ID", Short: "Take an egress request back (its scientist): nothing of it leaves", Args: exactArgs(1, "an egress request ID"),
		RunE: func(c *cobra.Command, args []string) error {
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.EgressRequest, error) {
				return cl.WithdrawEgress(ctx, args[0])
			},
				func(w *tabwriter.Writer, r metadata.EgressRequest) {
					fmt.Fprintf(w, "egress request %s: %s\n", r.ID, r.State)
				})
		},
	}
	sf.register(withdraw)
	var text string
	justify := &cobra.Command{
		Use: "justify ID --text TEXT", Short: "Tell the reviewers why the products should leave (its scientist)", Args: exactArgs(1, "an egress request ID"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireFlags(c, "text"); err != nil {
				return err
			}
			return ask(c, &sf, func(ctx context.Context, cl *client.Client) (metadata.EgressRequest, error) {
				return cl.JustifyEgress(ctx, args[0], text)
			},
				func(w *tabwriter.Writer, r metadata.EgressRequest) {
					fmt.Fprintf(w, "egress request %s: justified\n", r.ID)
				})
		},
	}
	justify.Flags().StringVar(&text, "text", "", "why the products should leave (shown to the reviewers)")
	sf.register(justify)
	return []*cobra.Command{list, show, withdraw, justify}
}
