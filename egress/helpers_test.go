package egress_test

import (
	"context"

	"github.com/sluicehq/sluice/dataset"
)

// copyAs rewrites a dataset in the format of dst's extension.
func copyAs(src, dst string) error {
	return dataset.Stream(context.Background(), src, dataset.Options{}, func(r dataset.Reader, _ dataset.Format) error {
		w, err := dataset.Create(dst, r.Schema())
		if err != nil {
			return err
		}
		defer w.Abort()
		for r.Next() {
			if err := w.Write(r.Record()); err != nil {
				return err
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		return w.Commit()
	})
}
