#!/usr/bin/env bash
# Sandbox overhead: `sluice sandbox run` of /bin/true against a bare `ctr run`
# of the same image, side by side, and start-to-exit of a pandas import.
# usage: bench/sandbox.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
N=${N:-15}
NS=sluice
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now_ms() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$WORK/sluice" && : >"$WORK/ctr"
for i in $(seq 1 "$N"); do
	# interleaved, so both see the same machine state
	t0=$(now_ms)
	"$SLUICE" sandbox run --image busybox --out "$WORK/q$i" -- /bin/true >/dev/null
	t1=$(now_ms)
	ctr -n "$NS" run --rm --read-only busybox "bench-ctr-$i" /bin/true >/dev/null
	t2=$(now_ms)
	echo $((t1 - t0)) >>"$WORK/sluice"
	echo $((t2 - t1)) >>"$WORK/ctr"
done
s=$(median <"$WORK/sluice")
c=$(median <"$WORK/ctr")
echo
echo "== sandbox overhead: /bin/true in busybox, median of $N runs each, interleaved =="
printf "%-44s %8s ms\n" "sluice sandbox run (workspace, limits, collect)" "$s"
printf "%-44s %8s ms\n" "ctr run --rm (bare containerd + runc)" "$c"
printf "%-44s %8sx   (target <= 1.3x)\n" "ratio" "$(awk -v a="$s" -v b="$c" 'BEGIN { printf "%.2f", a / b }')"

: >"$WORK/py"
for i in $(seq 1 5); do
	t0=$(now_ms)
	"$SLUICE" sandbox run --image python --out "$WORK/p$i" -- python3 -c "import pandas" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$WORK/py"
done
echo
echo "== python job that imports pandas, start to exit, median of 5 =="
printf "%-44s %8s ms\n" "sluice sandbox run python3 -c 'import pandas'" "$(median <"$WORK/py")"
