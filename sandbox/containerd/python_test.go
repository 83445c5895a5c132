package containerd_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/mask"
	"github.com/sluicehq/sluice/sandbox"
)

// TestPythonAggregate runs a pandas job on the python image over the masked
// corpus residents and collects its aggregate with its hash.
func TestPythonAggregate(t *testing.T) {
	e := newExecutor(t)
	ensureImage(t, e, "python")

	// Mask the raw corpus the way the platform does before any job sees it.
	masked := filepath.Join(t.TempDir(), "residents.masked.arrow")
	cls, err := dataset.LoadClasses("../../../shared/egress-corpus/sources/residents.classes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := mask.Builtin("prod")
	key, _ := mask.NewKey()
	if _, err := mask.File(context.Background(), "../../../shared/egress-corpus/sources/residents.csv", masked, mask.Options{Profile: prof, Classes: cls, Key: key}); err != nil {
		t.Fatal(err)
	}
	code := t.TempDir()
	os.WriteFile(filepath.Join(code, "main.py"), []byte(`import json
import pandas as pd
df = pd.read_csv("/data/in/residents/data.csv")
agg = df.groupby("district_code").agg(n=("monthly_income", "size"), mean_income=("monthly_income", "mean")).reset_index()
agg.to_csv("/data/out/income_by_city.csv", index=False)
manifest = json.load(open("/data/in/manifest.json"))
print(manifest["datasets"][0]["rows"], len(agg))
`), 0o644)
	res, q := run(t, e, sandbox.Job{ID: "pandas-agg", Image: "python", Runtime: sandbox.RuntimeRunc,
		Inputs: []sandbox.Input{{Name: "residents", Path: masked}}, Code: code,
		Command: []string{"python3", "/code/main.py"}, Limits: sandbox.Limits{Memory: 1 << 30, Timeout: 5 * time.Minute}})
	if res.Reason != sandbox.ReasonExited || res.ExitCode != 0 {
		t.Fatalf("job ended %s/%d: %s\n%s", res.Reason, res.ExitCode, res.Error, readLog(t, q, res.Stderr))
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Path != "income_by_city.csv" {
		t.Fatalf("outputs: %+v", res.Outputs)
	}
	data, err := os.ReadFile(filepath.Join(q, "out", "income_by_city.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := res.Outputs[0].SHA256; got != hex.EncodeToString(sum[:]) || res.Outputs[0].Size != int64(len(data)) {
		t.Errorf("recorded sha256 %s / size %d do not match the collected file", got, res.Outputs[0].Size)
	}
	rows, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range rows[1:] {
		n, _ := strconv.Atoi(r[1])
		total += n
	}
	if total != 6000 {
		t.Errorf("aggregate counts add up to %d, want 6000", total)
	}
	if got := strings.Fields(readLog(t, q, res.Stdout)); len(got) != 2 || got[0] != "6000" {
		t.Errorf("job printed %q, want the manifest's 6000 rows", got)
	}
}
