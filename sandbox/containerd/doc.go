// Package containerd implements sandbox.Executor over containerd (client
// v1.7, daemon 1.6 as in Debian 12) with runc, or gVisor's runsc through the
// runc v2 shim. Every job container gets the same hardened OCI spec: own
// network namespace with loopback only, read-only root, uid/gid 65534, no
// capabilities, no-new-privileges, the default seccomp profile, masked /proc
// paths, memory, memory+swap, CPU and pids limits, a size-capped /tmp, and
// read-only /data/in and /code. Nothing in a job specification can turn any
// of it off.
package containerd
