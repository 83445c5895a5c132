// Package server is sluice server: the platform's JSON API under /api/v1
// (described by /api/openapi.json, generated from the Go types by huma),
// authentication by bearer token and authorisation by role and tenant, the
// health, readiness and Prometheus endpoints, and the one place where the
// subsystems (metadata, and as the platform grows the scheduler, the
// sandbox and the gate) are wired together.
package server
