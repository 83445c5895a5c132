// Package policy evaluates the egress policy with OPA (v1 Go API). Policies
// are Rego modules plus a data document of thresholds; the defaults are
// embedded from policy/rego. An Engine prepares its queries once and
// evaluates many inputs; its version is the hash of its files, so every
// decision names the exact policy that made it. Rego decides; the Go
// detectors in package egress only compute evidence.
package policy
