#!/usr/bin/env bash
# Sandbox start cost and throughput, side by side with bare containerd:
#  1. `sluice sandbox run` of /bin/true in busybox against `ctr run --rm
#     --read-only` of the same image (and, for reference, ctr with its own
#     default seccomp profile), N interleaved triples; the median of each,
#     their ratio (target <= 1.1x), and where sluice's time goes (the
#     phases its results record; the rest is process start, the containerd
#     connection, container deletion and workspace removal);
#  2. 8 jobs submitted at once, against 8 ctr runs at once: jobs per minute,
#     median of ROUNDS rounds;
#  3. start to exit of a python job that imports pandas.
# usage: bench/sandbox.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
N=${N:-30}
ROUNDS=${ROUNDS:-5}
NS=sluice
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now_ms() { date +%s%3N; }
# What earlier benchmarks wrote is flushed first: its writeback would slow
# every fsync here (sluice's records, containerd's metadata).
sync
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

: >"$WORK/sluice" && : >"$WORK/ctr" && : >"$WORK/ctr-seccomp"
# One run of each, timed, appending its milliseconds to $WORK/<name>.
run_sluice() { "$SLUICE" sandbox run --image busybox --out "$WORK/q$1" -o json -- /bin/true >"$WORK/r$1.json"; rm -rf "$WORK/q$1"; }
run_ctr() { ctr -n "$NS" run --rm --read-only busybox "bench-ctr-$1" /bin/true >/dev/null; }
run_ctr-seccomp() { ctr -n "$NS" run --rm --read-only --seccomp busybox "bench-ctrs-$1" /bin/true >/dev/null; }
timed() {
	local t0 t1
	t0=$(now_ms)
	"run_$1" "$2"
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$WORK/$1"
}
order=(sluice ctr ctr-seccomp)
for i in $(seq 1 "$N"); do
	# interleaved, so all three see the same machine state, and rotated, so
	# none always follows the same one (containerd's garbage collection,
	# which ctr's snapshots set off, lands on whoever comes next)
	for k in 0 1 2; do
		timed "${order[$(((i + k) % 3))]}" "$i"
	done
done
s=$(median <"$WORK/sluice")
c=$(median <"$WORK/ctr")
cs=$(median <"$WORK/ctr-seccomp")
echo
echo "== sandbox start cost: /bin/true in busybox, median of $N runs each, interleaved =="
printf "%-52s %8s ms\n" "sluice sandbox run (all protections, collect)" "$s"
printf "%-52s %8s ms\n" "ctr run --rm --read-only (bare containerd + runc)" "$c"
printf "%-52s %8s ms\n" "ctr run --rm --read-only --seccomp (reference)" "$cs"
printf "%-52s %8sx   (target <= 1.1x)\n" "ratio to bare ctr" "$(ratio "$s" "$c")"
printf "%-52s %8sx\n" "ratio to ctr with seccomp" "$(ratio "$s" "$cs")"
echo
echo "== where sluice's time goes (medians over the same runs, ms) =="
python3 - "$WORK" "$s" <<'EOF'
import glob, json, statistics, sys
work, wall = sys.argv[1], float(sys.argv[2])
phases = ["workspace_ms", "prepare_ms", "start_ms", "run_ms", "collect_ms"]
t = [json.load(open(p))["timings"] for p in glob.glob(work + "/r*.json")]
med = {k: statistics.median(x[k] for x in t) for k in phases}
for k in phases:
    print("%-52s %8.1f" % (k[:-3], med[k]))
print("%-52s %8.1f" % ("the rest: process start, connection, deletion", wall - sum(med.values())))
EOF

echo
echo "== 8 jobs submitted at once, $ROUNDS rounds: jobs per minute (median) =="
: >"$WORK/par-sluice" && : >"$WORK/par-ctr"
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now_ms)
	for j in $(seq 1 8); do
		"$SLUICE" sandbox run --image busybox --out "$WORK/p$r-$j" -- /bin/true >/dev/null &
	done
	wait
	t1=$(now_ms)
	for j in $(seq 1 8); do
		ctr -n "$NS" run --rm --read-only busybox "bench-par-$r-$j" /bin/true >/dev/null &
	done
	wait
	t2=$(now_ms)
	echo $((8 * 60000 / (t1 - t0))) >>"$WORK/par-sluice"
	echo $((8 * 60000 / (t2 - t1))) >>"$WORK/par-ctr"
	rm -rf "$WORK"/p"$r"-*
done
ps=$(median <"$WORK/par-sluice")
pc=$(median <"$WORK/par-ctr")
printf "%-52s %8s jobs/min\n" "8 x sluice sandbox run" "$ps"
printf "%-52s %8s jobs/min\n" "8 x ctr run --rm --read-only" "$pc"
printf "%-52s %8sx\n" "sluice / ctr" "$(ratio "$ps" "$pc")"

: >"$WORK/py"
for i in $(seq 1 5); do
	t0=$(now_ms)
	"$SLUICE" sandbox run --image python --out "$WORK/py$i" -- python3 -c "import pandas" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$WORK/py"
done
echo
echo "== python job that imports pandas, start to exit, median of 5 =="
printf "%-52s %8s ms\n" "sluice sandbox run python3 -c 'import pandas'" "$(median <"$WORK/py")"
