package errcode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/images"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/sandbox"
)

func TestOf(t *testing.T) {
	tests := []struct {
		err  error
		code string
		http int
		exit int
	}{
		{fmt.Errorf("--rows: %w", ErrUsage), "usage", 400, ExitUsage},
		{&dataset.InputError{File: "a.csv", Msg: "ragged row"}, "invalid_input", 400, ExitUsage},
		{fmt.Errorf("x.csv: %w", dataset.ErrNotFound), "not_found", 404, ExitUsage},
		{fmt.Errorf("job x: %w", sandbox.ErrInvalidArgument), "invalid_argument", 400, ExitUsage},
		{fmt.Errorf("memory: %w", sandbox.ErrLimit), "limit_exceeded", 400, ExitUsage},
		{fmt.Errorf("image: %w", sandbox.ErrNotFound), "not_found", 404, ExitUsage},
		{fmt.Errorf("containerd: %w", sandbox.ErrUnavailable), "unavailable", 503, ExitFailed},
		{fmt.Errorf("a: %w", images.ErrInvalidDefinition), "invalid_image_definition", 400, ExitUsage},
		{fmt.Errorf("a: %w", images.ErrInvalidImage), "invalid_image", 400, ExitUsage},
		{fmt.Errorf("a: %w", images.ErrBuild), "image_build_failed", 500, ExitFailed},
		{fmt.Errorf("a: %w", policy.ErrInvalidPolicy), "invalid_policy", 400, ExitUsage},
		{fmt.Errorf("token: %w", metadata.ErrUnauthenticated), "unauthenticated", 401, ExitUsage},
		{fmt.Errorf("a: %w", metadata.ErrForbidden), "forbidden", 403, ExitNo},
		{fmt.Errorf("a: %w", metadata.ErrNotFound), "not_found", 404, ExitUsage},
		{fmt.Errorf("a: %w", metadata.ErrConflict), "conflict", 409, ExitUsage},
		{fmt.Errorf("a: %w", metadata.ErrInvalidArgument), "invalid_argument", 400, ExitUsage},
		{errors.New("disk full"), "internal", 500, ExitFailed},
	}
	for _, tc := range tests {
		c := Of(tc.err)
		if c.Code != tc.code || c.HTTP != tc.http || c.Exit != tc.exit {
			t.Errorf("Of(%v) = %+v, want %s/%d/%d", tc.err, c, tc.code, tc.http, tc.exit)
		}
	}
	if c := Of(nil); c != (Class{}) {
		t.Errorf("Of(nil) = %+v", c)
	}
}

func TestByCode(t *testing.T) {
	for _, code := range []string{"usage", "not_found", "forbidden", "conflict", "unauthenticated", "invalid_policy"} {
		if c := ByCode(code); c.Code != code {
			t.Errorf("ByCode(%s) = %+v", code, c)
		}
	}
	if ByCode("forbidden").Exit != ExitNo || ByCode("no_such_code") != Internal || ByCode("unavailable").Exit != ExitFailed {
		t.Error("ByCode maps exit codes wrongly")
	}
}
