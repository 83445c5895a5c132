// Package errcode is the one table from the error classes Sluice's
// packages declare (their errors.go) to what the edges show: a stable error
// code for clients, the HTTP status of the API and the exit code of the
// CLI. Packages return their classes wrapped with context; only the edges
// map them, and only through Of.
package errcode

import (
	"errors"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/images"
	"github.com/sluicehq/sluice/metadata"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/sandbox"
	"github.com/sluicehq/sluice/storage"
)

// Exit codes of the CLI.
const (
	ExitOK     = 0 // success
	ExitNo     = 1 // the operation ran and said no (a denied product, a failed job)
	ExitUsage  = 2 // usage or input error: the message names what is at fault
	ExitReview = 3 // a product needs human review
	ExitFailed = 4 // any other failure
)

// Class is what an edge shows for an error.
type Class struct {
	Code string `json:"code"` // stable: clients may switch on it
	HTTP int    `json:"-"`
	Exit int    `json:"-"`
}

// ErrUsage is the class of a mistake in how an edge was called: a flag, an
// argument, a request field. Edges wrap their own such errors with it.
var ErrUsage = errors.New("usage")

// Internal is the class of every error that has none of the table's.
var Internal = Class{Code: "internal", HTTP: 500, Exit: ExitFailed}

// table: the first class an error is (errors.Is) decides.
var table = []struct {
	err   error
	class Class
}{
	{ErrUsage, Class{"usage", 400, ExitUsage}},
	{dataset.ErrInvalidInput, Class{"invalid_input", 400, ExitUsage}},
	{dataset.ErrNotFound, Class{"not_found", 404, ExitUsage}},
	{sandbox.ErrInvalidArgument, Class{"invalid_argument", 400, ExitUsage}},
	{sandbox.ErrLimit, Class{"limit_exceeded", 400, ExitUsage}},
	{sandbox.ErrNotFound, Class{"not_found", 404, ExitUsage}},
	{sandbox.ErrBusy, Class{"busy", 409, ExitFailed}},
	{sandbox.ErrUnavailable, Class{"unavailable", 503, ExitFailed}},
	{images.ErrInvalidDefinition, Class{"invalid_image_definition", 400, ExitUsage}},
	{images.ErrInvalidImage, Class{"invalid_image", 400, ExitUsage}},
	{images.ErrBuild, Class{"image_build_failed", 500, ExitFailed}},
	{policy.ErrInvalidPolicy, Class{"invalid_policy", 400, ExitUsage}},
	{policy.ErrDenied, Class{"denied", 403, ExitNo}},
	{metadata.ErrUnauthenticated, Class{"unauthenticated", 401, ExitUsage}},
	{metadata.ErrForbidden, Class{"forbidden", 403, ExitNo}},
	{metadata.ErrNotFound, Class{"not_found", 404, ExitUsage}},
	{metadata.ErrConflict, Class{"conflict", 409, ExitUsage}},
	{metadata.ErrInvalidArgument, Class{"invalid_argument", 400, ExitUsage}},
	{storage.ErrNotFound, Class{"not_found", 404, ExitUsage}},
	{storage.ErrInvalidArgument, Class{"invalid_argument", 400, ExitUsage}},
	{storage.ErrKey, Class{"unusable_key", 500, ExitFailed}},
}

// Of returns the class of err: the first of the table it is, else
// Internal. A nil error has no class (the zero Class).
func Of(err error) Class {
	if err == nil {
		return Class{}
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return e.class
		}
	}
	return Internal
}

// ByCode is the class of a stable code, as a client of the API receives
// it; an unknown code is Internal.
func ByCode(code string) Class {
	for _, e := range table {
		if e.class.Code == code {
			return e.class
		}
	}
	if code == "unavailable" {
		return Class{Code: code, HTTP: 503, Exit: ExitFailed}
	}
	return Internal
}
