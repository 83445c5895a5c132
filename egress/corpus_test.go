package egress_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/egress"
	"github.com/sluicehq/sluice/policy"
)

const corpus = "../../shared/egress-corpus"

type caseSpec struct {
	Source  string `yaml:"source"`
	Classes string `yaml:"classes"`
	Expect  string `yaml:"expect"`
	Why     string `yaml:"why"`
}

// TestCorpus runs every labelled case of the shared egress corpus through
// the gate with the default policy: allow cases must be allowed with no
// finding above informational severity; block cases denied or sent to review.
// Each case runs as labelled (with the classification file when the case
// says so) and once more with the classification inferred from the source.
func TestCorpus(t *testing.T) {
	for _, inferred := range []bool{false, true} {
		name := "as-labelled"
		if inferred {
			name = "classes-inferred"
		}
		t.Run(name, func(t *testing.T) { corpusCases(t, inferred) })
	}
}

func corpusCases(t *testing.T, inferred bool) {
	ctx := context.Background()
	pol, err := policy.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := os.ReadDir(filepath.Join(corpus, "cases"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("empty corpus")
	}
	indexes := map[string]*egress.Index{}
	for _, c := range cases {
		dir := filepath.Join(corpus, "cases", c.Name())
		t.Run(c.Name(), func(t *testing.T) {
			var spec caseSpec
			data, err := os.ReadFile(filepath.Join(dir, "case.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(data, &spec); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(corpus, "sources", spec.Source+".csv")
			key := fmt.Sprintf("%s|%s|%v", src, spec.Classes, inferred)
			ix := indexes[key]
			if ix == nil {
				var cls *dataset.Classes
				if (spec.Classes == "yes" || spec.Classes == "true") && !inferred {
					if cls, err = dataset.LoadClasses(filepath.Join(corpus, "sources", spec.Source+".classes.yaml")); err != nil {
						t.Fatal(err)
					}
				}
				if ix, err = egress.BuildIndex(ctx, src, cls, dataset.Options{}); err != nil {
					t.Fatal(err)
				}
				indexes[key] = ix
			}
			gate := egress.NewGate(ix, pol)
			if _, err := os.Stat(filepath.Join(dir, "released")); err == nil {
				if err := gate.AddReleased(ctx, filepath.Join(dir, "released")); err != nil {
					t.Fatal(err)
				}
			}
			products, _ := filepath.Glob(filepath.Join(dir, "product.*"))
			if len(products) != 1 {
				t.Fatalf("case has %d products", len(products))
			}
			res, err := gate.Check(ctx, products[0])
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, f := range res.Findings {
				lines = append(lines, f.String())
			}
			report := strings.Join(lines, "\n  ")
			switch spec.Expect {
			case "allow":
				if res.Decision.Decision != "allow" {
					t.Errorf("%s: decision %s, want allow (%s)\n  %s", c.Name(), res.Decision.Decision, spec.Why, report)
				}
				for _, f := range res.Findings {
					if f.Severity != egress.Info {
						t.Errorf("allow case has a %s finding: %s", f.Severity, f)
					}
				}
			case "block":
				if res.Decision.Decision != "deny" && res.Decision.Decision != "review" {
					t.Errorf("%s: decision %s, want deny or review (%s)\n  %s", c.Name(), res.Decision.Decision, spec.Why, report)
				}
			default:
				t.Fatalf("unknown expectation %q", spec.Expect)
			}
			t.Logf("%s → %s\n  %s", c.Name(), res.Decision.Decision, report)
		})
	}
}
