#!/usr/bin/env bash
# Installs what the Makefile targets need on a fresh Debian 12 machine, saying
# what it does. Usage: hack/deps.sh go|staticcheck|opa|bench|containerd ...
# Tools and caches live outside the repository, under /var/cache/sluice.
set -euo pipefail

CACHE=${SLUICE_CACHE:-/var/cache/sluice}
GOBIN_DIR="$CACHE/bin"
say() { echo "deps: $*" >&2; }

apt_install() {
	local missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		say "need Debian packages ${missing[*]}: run as root or install them"; exit 1
	fi
	say "installing Debian packages: ${missing[*]}"
	if [ ! -f "$CACHE/.apt-updated" ] || [ -n "$(find "$CACHE/.apt-updated" -mmin +1440 2>/dev/null)" ]; then
		mkdir -p "$CACHE"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		touch "$CACHE/.apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [ -x /usr/local/go/bin/go ]; then
			say "go is at /usr/local/go/bin; add it to PATH"; exit 1
		fi
		say "Go 1.26 or newer is required (https://go.dev/dl); Debian 12's golang package is too old"; exit 1
	fi
	local v
	v=$(go env GOVERSION | sed 's/^go//')
	case "$v" in
	1.2[6-9]* | 1.[3-9][0-9]* | [2-9].*) ;;
	*) say "Go $v found; go.mod needs 1.26 (GOTOOLCHAIN=auto can fetch it through the module proxy)" ;;
	esac
}

need_staticcheck() {
	if [ ! -x "$GOBIN_DIR/staticcheck" ]; then
		say "installing staticcheck into $GOBIN_DIR (go install)"
		mkdir -p "$GOBIN_DIR"
		GOBIN="$GOBIN_DIR" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2 >&2
	fi
}

need_opa() {
	if [ ! -x "$GOBIN_DIR/opa" ]; then
		say "installing the OPA CLI into $GOBIN_DIR (go install, about two minutes the first time)"
		mkdir -p "$GOBIN_DIR"
		GOBIN="$GOBIN_DIR" go install github.com/open-policy-agent/opa@v1.22.2 >&2
	fi
}

need_bench() {
	# gcc and the C library headers: bench/duckdb is cgo (DuckDB).
	apt_install python3 python3-pandas time gcc libc6-dev
}

# gVisor, built from the Go module proxy: Debian 12's runsc (release
# 20221219) runs every sandbox as host nobody, a newer one in the
# container's user namespace, as the job's own sandbox uid. Static (cgo off):
# the sandbox re-executes itself inside a chroot without a C library.
GVISOR_VERSION=v0.0.0-20260905035102-160fafc42237

need_runsc() {
	local stamp="$GOBIN_DIR/.runsc-$GVISOR_VERSION"
	if [ -x "$GOBIN_DIR/runsc" ] && [ -f "$stamp" ]; then
		return 0
	fi
	need_go
	say "building gVisor's runsc $GVISOR_VERSION into $GOBIN_DIR (go install, about a minute the first time)"
	mkdir -p "$GOBIN_DIR"
	if CGO_ENABLED=0 GOBIN="$GOBIN_DIR" GOFLAGS=-mod=mod go install "gvisor.dev/gvisor/runsc@$GVISOR_VERSION" >&2; then
		rm -f "$GOBIN_DIR"/.runsc-*
		touch "$stamp"
	else
		say "runsc (gVisor) could not be built: gVisor jobs cannot run here, and make test will fail on the gVisor tests"
	fi
}

# containerd + runc run the jobs; busybox-static and debootstrap build the
# job images; runsc (gVisor) is the optional stronger runtime.
need_containerd() {
	apt_install containerd runc busybox-static debootstrap tar
	need_runsc
	local addr=${SLUICE_CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
	if ctr --address "$addr" version >/dev/null 2>&1; then
		return 0
	fi
	if [ "$addr" != /run/containerd/containerd.sock ]; then
		say "no containerd answers at $addr"; exit 1
	fi
	mkdir -p /var/log/sluice
	if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
		say "starting containerd (systemctl start containerd)"
		systemctl start containerd
	else
		say "starting containerd in the background (log: /var/log/sluice/containerd.log)"
		setsid nohup containerd >>/var/log/sluice/containerd.log 2>&1 < /dev/null &
	fi
	for _ in $(seq 1 60); do
		ctr --address "$addr" version >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	say "containerd did not start: see /var/log/sluice/containerd.log"; exit 1
}

for what in "$@"; do
	case "$what" in
	go) need_go ;;
	staticcheck) need_go; need_staticcheck ;;
	bench) need_bench ;;
	containerd) need_containerd ;;
	opa) need_go; need_opa ;;
	*) say "unknown dependency '$what'"; exit 2 ;;
	esac
done
