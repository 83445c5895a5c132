package sandbox

import "errors"

// Error classes; test with errors.Is.
var (
	// ErrNotFound: no such job, container or image.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: a job specification that cannot run as given.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLimit: a requested limit above the configured maximum.
	ErrLimit = errors.New("limit above the configured maximum")
	// ErrBusy: another process drives the job.
	ErrBusy = errors.New("busy")
	// ErrUnavailable: the container runtime cannot be reached.
	ErrUnavailable = errors.New("container runtime unavailable")
)
