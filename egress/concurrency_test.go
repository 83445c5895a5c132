package egress_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/egress"
)

// TestConcurrentChecks: one gate, shared by checks that run at the same
// time (as a server runs them) against the same released products, gives
// each product the verdict and findings a check of it alone gives. Run
// with -race (make test does), it also shows that the memos of released
// tables, columns and the index are safe to share.
func TestConcurrentChecks(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	count := func(rows [][]string) string { return strconv.Itoa(len(rows)) }
	released := f.write(t, "released.csv", table("education,gender,people", f.groupBy([]string{"education", "gender"}, count)))
	products := []string{
		f.write(t, "by_education.csv", table("education,people", f.groupBy([]string{"education"}, count))),
		f.write(t, "by_district.csv", table("district,occupation,people", f.groupBy([]string{"district", "occupation"}, count))),
		f.write(t, "by_gender.csv", table("gender,people", f.groupBy([]string{"gender"}, count))),
		f.write(t, "rows.csv", table("education,gender,monthly_income", f.rows[1:200])),
	}
	verdict := func(res *egress.Result) string {
		b, _ := json.Marshal(struct {
			D any
			F []egress.Finding
		}{res.Decision.Decision, res.Findings})
		return string(b)
	}
	want := map[string]string{}
	for _, p := range products {
		g := egress.NewGate(f.ix, f.pol)
		if err := g.AddReleased(ctx, released); err != nil {
			t.Fatal(err)
		}
		res, err := g.Check(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = verdict(res)
	}
	shared := egress.NewGate(f.ix, f.pol)
	if err := shared.AddReleased(ctx, released); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(products))
	for i := range 8 {
		for _, p := range products {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := shared.Check(ctx, p)
				if err != nil {
					errs <- err
					return
				}
				if got := verdict(res); got != want[p] {
					errs <- fmt.Errorf("check %d of %s: %s, alone: %s", i, p, got, want[p])
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
