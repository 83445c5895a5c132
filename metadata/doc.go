// Package metadata keeps what the platform knows about its tenants, users
// and API tokens (and, as the server grows, datasets, scenarios, jobs and
// the audit trail). Store is the interface; SQLite, pure Go, is the
// embedded default, and PostgreSQL will implement the same interface.
// Tokens are random, shown once, and kept only as hashes.
package metadata
