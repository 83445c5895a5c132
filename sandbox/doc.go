// Package sandbox runs analysis jobs in isolation. It defines the Executor
// interface (implemented over containerd in sandbox/containerd), the job
// specification with its limits, the job workspace (masked inputs at
// /data/in, code at /code, a size-capped /data/out) and the Runner that takes
// a job through prepare → start → wait → collect → cleanup, writes its
// result, and recovers jobs left behind by a crashed process.
//
// Isolation is not configurable: no network, read-only root, a host uid
// leased to the job alone (UIDRange; a second one for a gVisor sandbox's
// own processes), no capabilities, no-new-privileges,
// seccomp, masked /proc paths and resource limits are applied by every
// executor to every job, and per-job limits can never exceed the configured
// maximums. Outputs are collected within the output cap by apparent size,
// and code bundles within their limits.
package sandbox
