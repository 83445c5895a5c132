package metadata

import "errors"

// Error classes; test with errors.Is. The edges map them through
// internal/errcode.
var (
	// ErrNotFound: no such tenant, user or token (or one the caller may
	// not see).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a name already taken.
	ErrConflict = errors.New("already exists")
	// ErrInvalidArgument: a request that cannot be done as given.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthenticated: no token, or one that is unknown, expired or
	// revoked.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller's role does not allow the action.
	ErrForbidden = errors.New("permission denied")
)
